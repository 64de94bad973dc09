"""What the OCR tasks return: :class:`Reading` (one crop), :class:`TextLine` (one line of a photo),
:class:`Timings`, :class:`OcrResult` and :class:`CropsResult` (frozen sequences), and the reading
order of a photo's boxes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

import numpy as np
import numpy.typing as npt

from edgevl.text.respace import respace

Floats = npt.NDArray[np.float32]
Quad = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]


@dataclass(frozen=True)
class Reading:
    """A recognised word crop: text, mean character confidence, per-character confidences."""

    text: str
    score: float
    char_scores: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "score": round(self.score, 4),
                "char_scores": [round(s, 4) for s in self.char_scores]}


@dataclass(frozen=True)
class TextLine:
    """A line of text in a photo: its quad (TL, TR, BR, BL in image pixels), text and score.

    ``vertical`` tells that the box was taller than wide and was read rotated (a book spine).
    """

    quad: Quad
    text: str
    score: float
    vertical: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"quad": [[round(x, 1), round(y, 1)] for x, y in self.quad], "text": self.text,
                "score": round(self.score, 4), "vertical": self.vertical}


def respaced(r: Reading, spaced: str) -> Reading:
    """``r`` with the word spaces of another reading of the same crop (:func:`respace`); an inserted
    space gets the lower confidence of its two neighbours."""
    text = respace(r.text, spaced)
    if text == r.text:
        return r
    scores: list[float] = []
    k = 0
    for c in text:
        if c == " ":
            inside = 0 < k < len(r.char_scores)
            scores.append(min(r.char_scores[k - 1], r.char_scores[k]) if inside else r.score)
        else:
            scores.append(r.char_scores[k] if k < len(r.char_scores) else r.score)
            k += 1
    return Reading(text, r.score, tuple(scores))


def strip_spaces(r: Reading) -> Reading:
    """Drop leading/trailing spaces (and their confidences): a crop's edges are not words."""
    text = r.text.strip(" ")
    if text == r.text:
        return r
    start = len(r.text) - len(r.text.lstrip(" "))
    cs = r.char_scores[start : start + len(text)]
    return Reading(text, float(np.mean(cs)) if cs else 0.0, cs)


@dataclass(frozen=True)
class Timings:
    """Seconds spent per stage of one pipeline call, and the work done: detected boxes, recogniser
    reads (crops read, second directions included) and padded recogniser input columns."""

    det: float = 0.0
    cls: float = 0.0
    rec: float = 0.0
    total: float = 0.0
    boxes: int = 0
    reads: int = 0
    crop: float = 0.0
    rec_columns: int = 0
    cascaded: int = 0  # crops re-read by the cascade recogniser
    cascade: float = 0.0  # seconds it spent

    def to_dict(self) -> dict[str, float | int]:
        return {"det": round(self.det, 4), "cls": round(self.cls, 4), "rec": round(self.rec, 4),
                "total": round(self.total, 4), "boxes": self.boxes, "reads": self.reads,
                "crop": round(self.crop, 4), "rec_columns": self.rec_columns,
                "cascaded": self.cascaded, "cascade": round(self.cascade, 4)}


@dataclass
class Clock:
    """Mutable accumulator behind one call's :class:`Timings`."""

    cls: float = 0.0
    rec: float = 0.0
    reads: int = 0
    columns: int = 0
    cascaded: int = 0
    cascade_time: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


T = TypeVar("T")


class _TupleSequence(Sequence[T]):
    """Sequence behaviour of a result over one of its tuple fields (named by :meth:`_items`)."""

    def _items(self) -> tuple[T, ...]:
        raise NotImplementedError

    @overload
    def __getitem__(self, i: int) -> T: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[T]: ...
    def __getitem__(self, i: int | slice) -> T | Sequence[T]:
        return self._items()[i]

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[T]:
        return iter(self._items())


@dataclass(frozen=True)
class OcrResult(_TupleSequence[TextLine]):
    """What :class:`OcrPipeline` read in one photo: the lines in reading order, and its timings.

    It is a sequence of :class:`TextLine` (``for line in result``, ``len(result)``)."""

    lines: tuple[TextLine, ...]
    timings: Timings

    def _items(self) -> tuple[TextLine, ...]:
        return self.lines

    def to_dict(self) -> dict[str, Any]:
        return {"lines": [ln.to_dict() for ln in self.lines], "timings": self.timings.to_dict()}


@dataclass(frozen=True)
class CropsResult(_TupleSequence[Reading]):
    """What :meth:`OcrPipeline.read_crops` read: one :class:`Reading` per crop, and its timings."""

    readings: tuple[Reading, ...]
    timings: Timings

    def _items(self) -> tuple[Reading, ...]:
        return self.readings


def reading_order(quads: Floats) -> list[int]:
    """Indices of quads in reading order: rows top to bottom (boxes whose vertical extents overlap
    by more than half the smaller height share a row), left to right inside a row."""
    n = len(quads)
    if n == 0:
        return []
    y0 = quads[:, :, 1].min(1)
    y1 = quads[:, :, 1].max(1)
    x0 = quads[:, :, 0].min(1)
    rows: list[list[int]] = []
    spans: list[tuple[float, float]] = []
    for i in sorted(range(n), key=lambda k: (float(y0[k]), float(x0[k]))):
        placed = False
        for r, (a, b) in enumerate(spans):
            ov = min(b, float(y1[i])) - max(a, float(y0[i]))
            if ov > 0.5 * min(b - a, float(y1[i] - y0[i])):
                rows[r].append(i)
                spans[r] = (min(a, float(y0[i])), max(b, float(y1[i])))
                placed = True
                break
        if not placed:
            rows.append([i])
            spans.append((float(y0[i]), float(y1[i])))
    out: list[int] = []
    for r in sorted(range(len(rows)), key=lambda k: spans[k][0]):
        out.extend(sorted(rows[r], key=lambda k: float(x0[k])))
    return out
