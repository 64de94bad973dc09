"""``ppocrv6-int8``: PP-OCRv6 small's recogniser quantised to int8 (QDQ) on this machine, for the CPU
engines that run int8 convolutions and MatMuls on VNNI (OpenVINO's CPU plugin; ONNX Runtime's CPU
provider runs it slower than fp32, docs/ocr.md).

Nothing is downloaded: the fp32 ``ppocrv6-rec`` bundle (from the rapidocr wheel) is calibrated on
word lines this module renders in Noto Sans (the ``fontpkg-noto-sans`` wheel edgevl depends on:
its variable weight and width axes, upright and italic), with the distortions a detector's crop
shows (small rotations, blur, noise, low resolution). ``edgevl_export.quantize.quantize_bundle``
quantises behind its accuracy guard (at most 1 point of word accuracy lost on held-out rendered
lines against fp32, or nothing is written). The lines are Latin script, digits and punctuation, as on
the shelves this project reads; text in other scripts is not calibrated for (docs/ocr.md).
"""

from __future__ import annotations

import contextlib
import importlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgevl.bundle import Bundle, load_bundle
from edgevl.errors import BundleError
from edgevl.models.staging import staged_bundle, wheel_version

NAME = "ppocrv6-int8"
TITLE = "PP-OCRv6 small recogniser, int8 QDQ calibrated on rendered lines (fastest on OpenVINO)"
BASE_MODEL = "ppocrv6"
DISTRIBUTION = "rapidocr"
VERSION = "3.10.0"
LICENCE = "Apache-2.0"
BUNDLE_NAME = f"{NAME}-rec"
#: names the generator below; a change to it must change this so that cached bundles are rebuilt
CALIBRATION = "edgevl-rendered-lines-v1"
SAMPLES = 128
HOLDOUT = 64
#: the recogniser's stem, kept in float from the start: the guard's own sweep on this model kept
#: exactly these four convolutions (6.25 points lost with them in int8), and OpenVINO's int8 kernels
#: go wrong on stem convolutions (the detector loses most of its boxes with them in int8,
#: docs/int8.md). Starting here skips the sweep (seconds instead of minutes); the guard still judges
#: the result and the sweep still keeps more nodes float if it fails.
STEM_FLOAT = ("Conv.1", "Conv.2", "Conv.3", "Conv.5")
SEED = 20261207

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()
_DIGITS = "0123456789"
_PUNCT = ".,:;-'()/&"


@dataclass(frozen=True)
class LineStyle:
    """How one calibration line is drawn."""

    px: int
    weight: int
    width: int
    italic: bool
    fg: tuple[int, int, int]
    bg: tuple[int, int, int]


def _word(rng: np.random.Generator) -> str:
    kind = int(rng.integers(5))
    n = int(rng.integers(2, 11))
    if kind == 0:  # a call number: 796.4 / 82-31
        return f"{rng.integers(1, 1000)}{rng.choice(['.', '-', ''])}{rng.integers(0, 100)}"
    if kind == 1:
        return "".join(rng.choice(list(_UPPER), n))
    if kind == 2:
        return str(rng.choice(list(_UPPER))) + "".join(rng.choice(list(_LOWER), n - 1))
    if kind == 3:
        return "".join(rng.choice(list(_LOWER), n))
    return "".join(rng.choice(list(_LOWER + _UPPER + _DIGITS), n))


def calibration_text(rng: np.random.Generator) -> str:
    """One line of 1 to 4 random words (call numbers, UPPER, Title, lower, mixed), sometimes with
    punctuation: letters at random, so no language prior helps the guard."""
    words = [_word(rng) for _ in range(int(rng.integers(1, 5)))]
    if rng.random() < 0.3:
        k = int(rng.integers(len(words)))
        words[k] += str(rng.choice(list(_PUNCT)))
    return " ".join(words)


def _style(rng: np.random.Generator) -> LineStyle:
    dark = tuple(int(v) for v in rng.integers(0, 90, 3))
    light = tuple(int(v) for v in rng.integers(170, 256, 3))
    fg, bg = (dark, light) if rng.random() < 0.75 else (light, dark)
    return LineStyle(px=int(rng.integers(22, 50)), weight=int(rng.integers(300, 900)),
                     width=int(rng.integers(70, 101)), italic=bool(rng.random() < 0.2),
                     fg=(fg[0], fg[1], fg[2]), bg=(bg[0], bg[1], bg[2]))


def _font(style: LineStyle) -> Any:
    from PIL import ImageFont

    from edgevl.vision.draw import noto_sans_path

    path = noto_sans_path()
    if path is None:
        raise BundleError("Noto Sans (the fontpkg-noto-sans wheel) is not installed: it renders the "
                          f"{NAME} calibration lines; pip install fontpkg-noto-sans")
    if style.italic:
        path = str(Path(path).with_name(Path(path).name.replace("NotoSans[", "NotoSans-Italic[")))
    font = ImageFont.truetype(path, style.px)
    # a FreeType without variation support draws the default instance
    with contextlib.suppress(OSError, ValueError):
        font.set_variation_by_axes([style.width, style.weight])
    return font


def render_line(text: str, style: LineStyle) -> np.ndarray:
    """``text`` drawn on a tight box with a small margin: an HxWx3 uint8 BGR array."""
    from PIL import Image, ImageDraw

    font = _font(style)
    x0, y0, x1, y1 = font.getbbox(text)
    m = max(2, style.px // 6)
    img = Image.new("RGB", (x1 - x0 + 2 * m, y1 - y0 + 2 * m), style.bg[::-1])
    ImageDraw.Draw(img).text((m - x0, m - y0), text, font=font, fill=style.fg[::-1])
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])


def distort(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One of: unchanged, a small rotation, blur, noise, or low resolution (a far, small label)."""
    kind = int(rng.integers(5))
    h, w = img.shape[:2]
    if kind == 1:
        angle = float(rng.uniform(-4, 4))
        mat = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        edge = tuple(int(v) for v in np.median(img[0], axis=0))
        return np.asarray(cv2.warpAffine(img, mat, (w, h), borderValue=edge), np.uint8)
    if kind == 2:
        return np.asarray(cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.8, 1.8))), np.uint8)
    if kind == 3:
        noise = rng.normal(0, float(rng.uniform(8, 25)), img.shape)
        return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if kind == 4:
        f = float(rng.uniform(0.3, 0.6))
        small = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        return np.asarray(small, np.uint8)
    return img


def calibration_lines(n: int, seed: int = SEED) -> Iterator[tuple[str, np.ndarray]]:
    """``n`` (text, BGR crop) pairs, deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        text = calibration_text(rng)
        yield text, distort(render_line(text, _style(rng)), rng)


def write_calibration(folder: Path, n: int, seed: int = SEED) -> Path:
    """Write ``n`` rendered lines as PNGs with a ``labels.tsv`` (file<TAB>label) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["file\tlabel"]
    for i, (text, img) in enumerate(calibration_lines(n, seed)):
        name = f"{i:04d}.png"
        if not cv2.imwrite(str(folder / name), img):
            raise BundleError(f"{folder / name}: could not write a calibration image")
        rows.append(f"{name}\t{text}")
    (folder / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def installed_version() -> str:
    return wheel_version(DISTRIBUTION)


def _fp32() -> Bundle:
    from edgevl.models.ppocr import ensure_bundle

    return ensure_bundle("rec", BASE_MODEL)


def build_bundle(root: Path | str, *, samples: int = SAMPLES, holdout: int = HOLDOUT) -> Bundle:
    """Quantise the fp32 ``ppocrv6-rec`` bundle into ``root/ppocrv6-int8-rec`` and return it loaded:
    ``samples`` rendered lines calibrate, ``holdout`` others are the guard's. About 20 s on two cores
    with the stem in float from the start (:data:`STEM_FLOAT`); minutes when the guard's sweep must
    keep more nodes float. QuantizationError when the guard fails (nothing is written)."""
    quantize_bundle = importlib.import_module("edgevl_export.quantize").quantize_bundle

    base = Path(root)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BundleError(f"{base}: cannot create the bundle folder ({e})") from e
    src = _fp32()
    with staged_bundle(base, BUNDLE_NAME) as (tmp, work), \
            tempfile.TemporaryDirectory(dir=work) as scratch:
        data = write_calibration(Path(scratch) / CALIBRATION, samples + holdout)
        quantize_bundle(src.path, data, tmp, samples=samples, holdout=holdout, keep_float=STEM_FLOAT)
    return load_bundle(base / BUNDLE_NAME)


def is_current(b: Bundle) -> bool:
    """A cached bundle is reused only when it was quantised from the current fp32 bundle with this
    calibration generator."""
    q = b.manifest.extra.get("quantization")
    if b.manifest.precision != "int8" or b.manifest.task != "text-recognition" or not isinstance(q, dict):
        return False
    data, source = q.get("data"), q.get("source_bundle")
    if not isinstance(data, dict) or data.get("path") != CALIBRATION or not isinstance(source, dict):
        return False
    try:
        return bool(source.get("digest") == _fp32().digest)
    except BundleError:
        return False
