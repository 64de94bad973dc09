"""Seeded generator of distorted word crops for scene-text-recognition (STR) evaluation.

Each crop is one word rendered with Pillow in a TrueType font from Debian's font packages
(DejaVu always; Liberation and FreeFont when ``fonts-liberation`` / ``fonts-freefont-ttf`` are
installed; the generator uses whatever of them exists), then distorted with numpy/OpenCV:

============== ===============================================================================
clean          the rendered word, tight box with a small random margin
rotate         rotated by a small angle (3° to 12°, either sign), axis-aligned box around it
vertical_down  rotated 90° clockwise: reads top to bottom (English-style book spine)
vertical_up    rotated 90° counter-clockwise: reads bottom to top (Spanish/French-style spine)
blur           Gaussian blur, sigma 1.2 to 2.2 (at a 26 to 44 px font size)
noise          additive Gaussian noise, sigma 18 to 35 grey levels
perspective    the four corners moved independently (a photographed, slanted label)
lowres         downscaled to an x-height of a few pixels (crop height 9 to 13 px); not upscaled
============== ===============================================================================

Words are a mix of real words (a built-in English/Spanish list, in lower, Title or UPPER case)
and random alphanumeric strings (up to 25 characters, without the glyphs I/l/O that many fonts draw
like 1/0), so a recogniser's language prior is not enough. Vertical crops are at least 1.5 times
taller than wide (a word too short for that is redrawn), like a spine word's detected box.

Everything is deterministic for a seed: crop ``i`` of a distortion draws from its own
random stream ``(seed, distortion, i)``, so asking for a subset of distortions or more crops never
changes the crops already generated. Crops are HxWx3 uint8 BGR arrays (OpenCV's, edgevl's order).

    python benchmarks/strgen.py --out /tmp/words --n 10 --seed 0   # writes PNGs + labels.tsv
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

DISTORTIONS: tuple[str, ...] = (
    "clean", "rotate", "vertical_down", "vertical_up", "blur", "noise", "perspective", "lowres",
)
MAX_LEN = 25
FONT_DIRS: tuple[str, ...] = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/truetype/liberation",
    "/usr/share/fonts/truetype/freefont",
)
# symbol / maths fonts and hairline weights are not word fonts
_FONT_SKIP = ("math", "extralight", "symbol")

# Real words (English and Spanish, as on the library's spines); accents are kept out of the
# rendered text so that the label is exactly what is drawn in the [0-9a-zA-Z] alphabet.
_WORD_TEXT = """
library history science nature world story stories garden music theatre museum mountain river
ocean island winter summer autumn spring family friends children animals kitchen cooking health
medicine physics chemistry biology geography economy politics language grammar dictionary poetry
novel letters journey travel adventure mystery detective shadow silence memory window castle
forest desert village city street market bridge station harbour machine engine computer network
energy climate weather planet galaxy universe mathematics algebra geometry statistics painting
drawing sculpture architecture photography cinema football basketball tennis swimming running
walking climbing cycling chess puzzle games

libro historia ciencia naturaleza mundo cuento cuentos jardin musica teatro museo montana rio
oceano isla invierno verano otono primavera familia amigos animales cocina salud medicina fisica
quimica biologia geografia economia politica lengua gramatica diccionario poesia novela cartas
viaje aventura misterio sombra silencio memoria ventana castillo bosque desierto pueblo ciudad
calle mercado puente estacion maquina energia clima planeta universo matematicas pintura dibujo
escultura arquitectura fotografia deportes futbol baloncesto natacion ajedrez juegos esports
investigar alumnado pseudociencias coleccion teorema guia manual
"""
WORDS: tuple[str, ...] = tuple(_WORD_TEXT.split())
# random strings leave out I, l and O: in many fonts they are drawn exactly like l/1, I/1 and 0, so no
# reader could tell them apart (real words keep them: there the context decides)
_ALNUM = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
# a vertical crop must be clearly taller than wide, as a spine word's box is; shorter words are redrawn
VERTICAL_MIN_ASPECT = 1.5


@dataclass(frozen=True)
class WordCrop:
    """One generated crop: BGR image, the exact rendered text, and how it was made."""

    image: np.ndarray = field(repr=False)
    label: str
    distortion: str
    font: str
    params: dict[str, Any] = field(default_factory=dict, compare=False)


def find_fonts(dirs: Sequence[str | Path] = FONT_DIRS) -> list[Path]:
    """TrueType fonts usable for words, sorted (deterministic); falls back to any .ttf under
    /usr/share/fonts when none of ``dirs`` exists. Raises FileNotFoundError when there is none."""
    found: list[Path] = []
    for d in dirs:
        p = Path(d)
        if p.is_dir():
            found += sorted(f for f in p.rglob("*.ttf") if not any(s in f.name.lower() for s in _FONT_SKIP))
    if not found:
        root = Path("/usr/share/fonts")
        if root.is_dir():
            found = sorted(f for f in root.rglob("*.ttf") if not any(s in f.name.lower() for s in _FONT_SKIP))
    if not found:
        raise FileNotFoundError(
            "no TrueType font found under /usr/share/fonts; install Debian's fonts-dejavu-core "
            "(apt-get install fonts-dejavu-core)"
        )
    return found


def random_word(rng: np.random.Generator) -> str:
    """A real word in lower/Title/UPPER case (60%) or a random alphanumeric string (40%), ≤ 25 chars."""
    if rng.random() < 0.6:
        w = str(WORDS[int(rng.integers(len(WORDS)))])
        style = int(rng.integers(3))
        w = w.lower() if style == 0 else w.title() if style == 1 else w.upper()
        return w[:MAX_LEN]
    n = int(rng.choice([3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 18, 25]))
    return "".join(_ALNUM[int(i)] for i in rng.integers(len(_ALNUM), size=n))


@lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def render_word(text: str, font: str | Path, size: int, fg: tuple[int, int, int] = (0, 0, 0),
                bg: tuple[int, int, int] = (255, 255, 255),
                margin: tuple[int, int, int, int] = (4, 4, 4, 4)) -> np.ndarray:
    """Render ``text`` on one line, horizontal, as a BGR uint8 array: the ink's bounding box plus
    ``margin`` (left, top, right, bottom) pixels."""
    if not text:
        raise ValueError("empty word")
    f = _font(str(font), int(size))
    x0, y0, x1, y1 = f.getbbox(text)
    ml, mt, mr, mb = margin
    w, h = (x1 - x0) + ml + mr, (y1 - y0) + mt + mb
    canvas = Image.new("RGB", (max(w, 1), max(h, 1)), bg)
    ImageDraw.Draw(canvas).text((ml - x0, mt - y0), text, font=f, fill=fg)
    rgb = np.asarray(canvas, dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _colours(rng: np.random.Generator) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """A foreground/background pair with strong contrast; dark-on-light three times in four."""
    dark = tuple(int(v) for v in rng.integers(0, 70, size=3))
    light = tuple(int(v) for v in rng.integers(185, 256, size=3))
    if rng.random() < 0.75:
        return dark, light  # type: ignore[return-value]
    return light, dark  # type: ignore[return-value]


def _rotate(img: np.ndarray, angle: float, bg: tuple[int, int, int]) -> np.ndarray:
    """Rotate by ``angle`` degrees (counter-clockwise), expanding the canvas to keep every pixel."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = math.ceil(h * s + w * c), math.ceil(h * c + w * s)
    m[0, 2] += nw / 2.0 - w / 2.0
    m[1, 2] += nh / 2.0 - h / 2.0
    bgr = tuple(float(v) for v in bg[::-1])
    return cv2.warpAffine(img, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=bgr)


def _perspective(img: np.ndarray, rng: np.random.Generator,
                 bg: tuple[int, int, int]) -> tuple[np.ndarray, Any]:
    h, w = img.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    jx, jy = 0.35 * h, 0.18 * h
    dst = src + np.stack([rng.uniform(-jx, jx, 4), rng.uniform(-jy, jy, 4)], axis=1).astype(np.float32)
    dst -= dst.min(axis=0)
    ow, oh = math.ceil(float(dst[:, 0].max())) + 1, math.ceil(float(dst[:, 1].max())) + 1
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    bgr = tuple(float(v) for v in bg[::-1])
    out = cv2.warpPerspective(img, m, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=bgr)
    return out, np.round(dst, 1).tolist()


def distort(img: np.ndarray, kind: str, rng: np.random.Generator,
            bg: tuple[int, int, int] = (255, 255, 255)) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply one named distortion to a horizontal word crop; returns the crop and its parameters."""
    if kind == "clean":
        return img, {}
    if kind == "rotate":
        angle = float(rng.uniform(3.0, 12.0)) * (1 if rng.random() < 0.5 else -1)
        return _rotate(img, angle, bg), {"angle": round(angle, 2)}
    if kind == "vertical_down":
        return cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE), {"angle": -90}
    if kind == "vertical_up":
        return cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE), {"angle": 90}
    if kind == "blur":
        sigma = float(rng.uniform(1.2, 2.2))
        return cv2.GaussianBlur(img, (0, 0), sigma), {"sigma": round(sigma, 2)}
    if kind == "noise":
        sigma = float(rng.uniform(18.0, 35.0))
        noisy = img.astype(np.float32) + rng.normal(0.0, sigma, img.shape).astype(np.float32)
        return np.clip(noisy, 0, 255).astype(np.uint8), {"sigma": round(sigma, 1)}
    if kind == "perspective":
        out, corners = _perspective(img, rng, bg)
        return out, {"corners": corners}
    if kind == "lowres":
        target_h = int(rng.integers(9, 14))
        scale = target_h / img.shape[0]
        nw = max(2, round(img.shape[1] * scale))
        return cv2.resize(img, (nw, target_h), interpolation=cv2.INTER_AREA), {"height": target_h}
    raise ValueError(f"unknown distortion {kind!r}; expected one of {', '.join(DISTORTIONS)}")


def make_crop(seed: int, distortion: str, index: int, fonts: Sequence[Path]) -> WordCrop:
    """Crop ``index`` of ``distortion`` for ``seed``: independent of every other crop."""
    if distortion not in DISTORTIONS:
        raise ValueError(f"unknown distortion {distortion!r}; expected one of {', '.join(DISTORTIONS)}")
    rng = np.random.default_rng([seed, DISTORTIONS.index(distortion), index])
    for _ in range(100):
        label = random_word(rng)
        font = fonts[int(rng.integers(len(fonts)))]
        size = int(rng.integers(26, 45))
        fg, bg = _colours(rng)
        margin = tuple(int(v) for v in rng.integers(2, 9, size=4))
        img = render_word(label, font, size, fg, bg, margin)  # type: ignore[arg-type]
        if not distortion.startswith("vertical") or img.shape[1] >= VERTICAL_MIN_ASPECT * img.shape[0]:
            break
    out, params = distort(img, distortion, rng, bg)
    params = {"size": size, "fg": fg, "bg": bg, "margin": margin, "font_path": str(font), **params}
    return WordCrop(np.ascontiguousarray(out), label, distortion, font.name, params)


def generate(n_per_distortion: int, seed: int = 0, distortions: Sequence[str] = DISTORTIONS,
             fonts: Sequence[Path] | None = None) -> list[WordCrop]:
    """``n_per_distortion`` crops for each distortion, in distortion order."""
    fonts = list(fonts) if fonts is not None else find_fonts()
    if not fonts:
        raise ValueError("no font to render with: pass at least one .ttf path (see find_fonts())")
    return [make_crop(seed, d, i, fonts) for d in distortions for i in range(n_per_distortion)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for the PNG crops and labels.tsv")
    ap.add_argument("--n", type=int, default=10, help="crops per distortion")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--distortions", default=",".join(DISTORTIONS))
    args = ap.parse_args(argv)
    crops = generate(args.n, args.seed, [d for d in args.distortions.split(",") if d])
    args.out.mkdir(parents=True, exist_ok=True)
    rows = ["file\tlabel\tdistortion\tfont"]
    for i, c in enumerate(crops):
        name = f"{i:05d}_{c.distortion}.png"
        cv2.imwrite(str(args.out / name), c.image)
        rows.append(f"{name}\t{c.label}\t{c.distortion}\t{c.font}")
    (args.out / "labels.tsv").write_text("\n".join(rows) + "\n")
    print(f"wrote {len(crops)} crops to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
