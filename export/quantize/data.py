"""Calibration data: the user's files → model feeds, produced by the runtime's own preprocessing.

The feeds are recorded from the runtime tasks themselves (``TextEncoder``, ``ImageEncoder``,
``TextDetector``, ``TextRecognizer``) through :class:`RecordingEngine`, so calibration sees exactly
the tensors the runtime will feed the int8 model (same tokeniser, resize, normalisation, padding).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from edgevl.backends import Array, Engine
from edgevl.bundle import TensorSpec
from edgevl.errors import CalibrationError

Feeds = dict[str, Array]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
TEXT_SUFFIXES = (".txt", ".text", ".lst")
LABEL_FILES = ("labels.tsv", "labels.txt", "gt.txt")


class FeedReader(CalibrationDataReader):  # type: ignore[misc]
    """ORT's calibration reader interface over a list of recorded feed dicts."""

    def __init__(self, feeds: Sequence[Mapping[str, Array]]) -> None:
        self.feeds = [dict(f) for f in feeds]
        self._it: Iterator[Feeds] = iter(self.feeds)

    def get_next(self) -> Feeds | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self.feeds)


class RecordingEngine:
    """An Engine that records every feed it is given, then runs the wrapped engine."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.feeds: list[Feeds] = []

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self.inner.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self.inner.outputs

    def run(self, feeds: Mapping[str, Array]) -> dict[str, Array]:
        self.feeds.append({k: np.array(v, copy=True) for k, v in feeds.items()})
        return self.inner.run(feeds)


def pad_to_common_shape(feeds: Sequence[Mapping[str, Array]],
                        pad_values: Mapping[str, int | float]) -> list[Feeds]:
    """Every feed padded to the largest shape among them (per input).

    ORT's histogram calibrators (percentile, entropy) stack each tensor's outputs over all batches
    and fail on batches of different shapes (sentences padded to their batch's longest text, a
    smaller last batch). The batch axis is padded by repeating the last item; the other axes with
    ``pad_values[name]`` (0 when not given): the tokeniser's pad id with attention mask 0 is what
    the runtime itself feeds for shorter texts.
    """
    if not feeds:
        return []
    shapes = {k: np.max([np.shape(f[k]) for f in feeds], axis=0) for k in feeds[0]}
    out: list[Feeds] = []
    for f in feeds:
        g: Feeds = {}
        for k, v in f.items():
            a = np.asarray(v)
            extra = [int(m) - d for m, d in zip(shapes[k], a.shape, strict=True)]
            if extra[0]:
                a = np.concatenate([a, np.repeat(a[-1:], extra[0], axis=0)])
            if any(extra[1:]):
                a = np.pad(a, [(0, 0)] + [(0, e) for e in extra[1:]], constant_values=pad_values.get(k, 0))
            g[k] = a
        out.append(g)
    return out


@dataclass(frozen=True)
class Split:
    """Calibration items and the held-out items the accuracy guard compares on."""

    calibration: tuple[int, ...]
    holdout: tuple[int, ...]


def split(n: int, samples: int, holdout: int, seed: int = 0) -> Split:
    """Disjoint calibration / held-out indices (shuffled with ``seed``)."""
    if n < 2:
        raise CalibrationError(
            f"calibration data has {n} item(s); need at least 2 (one to calibrate on, one held out "
            "for the accuracy guard), ideally a few hundred"
        )
    order = np.random.default_rng(seed).permutation(n)
    h = max(1, min(holdout, n // 4 if n >= 8 else 1))
    c = max(1, min(samples, n - h))
    return Split(tuple(int(i) for i in order[:c]), tuple(int(i) for i in order[c : c + h]))


def read_texts(path: Path) -> list[str]:
    """One sentence a line (blank lines skipped)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise CalibrationError(
                f"{path}: a text encoder is calibrated on a text file (one sentence a line); "
                f"this folder has no {'/'.join(TEXT_SUFFIXES)} file"
            )
        return [t for f in files for t in read_texts(f)]
    if not path.is_file():
        raise CalibrationError(f"{path}: calibration file not found "
                               "(expected a text file, one sentence a line)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise CalibrationError(f"{path}: this is an image; a text encoder is calibrated on a text file "
                               "(one sentence a line)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise CalibrationError(f"{path}: not UTF-8 text ({e}); expected one sentence a line") from e
    texts = [s.strip() for s in lines if s.strip()]
    if not texts:
        raise CalibrationError(f"{path}: no sentences (expected one sentence a line)")
    return texts


def list_images(path: Path, what: str = "images") -> list[Path]:
    """Image files of a folder (sorted); CalibrationError when it is not a folder or has none."""
    if not path.exists():
        raise CalibrationError(f"{path}: calibration folder not found (expected a folder of {what})")
    if not path.is_dir():
        raise CalibrationError(f"{path}: expected a folder of {what} ({', '.join(IMAGE_SUFFIXES)}), "
                               "got a file")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise CalibrationError(f"{path}: no {what} in this folder (looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


def read_word_crops(path: Path) -> tuple[list[Path], list[str] | None]:
    """A folder of word crops and, when a ``labels.tsv`` (``file<TAB>label``) is there, their words.

    The label file may have a header row ``file<TAB>label…`` (the STR generator's form).
    """
    files = list_images(path, "word crops")
    for name in LABEL_FILES:
        lab = path / name
        if lab.is_file():
            break
    else:
        return files, None
    labels: dict[str, str] = {}
    with open(lab, encoding="utf-8", newline="") as f:
        for i, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)):
            if not row or (i == 0 and row[0] == "file"):
                continue
            if len(row) < 2:
                raise CalibrationError(f"{lab}: line {i + 1} is not 'file<TAB>label': {row!r}")
            labels[row[0]] = row[1]
    missing = [n for n in labels if not (path / n).is_file()]
    if missing:
        raise CalibrationError(f"{lab}: {len(missing)} labelled file(s) are not in {path} "
                               f"(e.g. {missing[0]})")
    kept = [p for p in files if p.name in labels]
    if not kept:
        raise CalibrationError(f"{lab}: none of the crops in {path} has a label")
    return kept, [labels[p.name] for p in kept]
