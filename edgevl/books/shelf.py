"""End to end on a shelf photo: OCR lines -> spines -> one-to-one catalogue matches -> drawing."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edgevl.books.matcher import BookMatch, BookMatcher
from edgevl.books.spines import group_spines, spine_polygon
from edgevl.vision.io import as_image


class LineLike(Protocol):
    """What the OCR pipeline returns per text line (``edgevl.tasks.ocr.TextLine``)."""

    @property
    def quad(self) -> Any: ...

    @property
    def text(self) -> str: ...

    @property
    def vertical(self) -> bool: ...


@dataclass(frozen=True)
class Spine:
    """One spine: its outline (4 points), the OCR lines read on it and its catalogue match."""

    index: int
    polygon: tuple[tuple[float, float], ...]
    lines: tuple[str, ...]
    match: BookMatch

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {"spine": self.index, "polygon": [[round(x, 1), round(y, 1)] for x, y in self.polygon],
                "ocr": self.text, **{k: v for k, v in self.match.to_dict().items() if k != "text"}}


@dataclass(frozen=True)
class ShelfResult:
    """All spines of one photo."""

    source: str
    spines: tuple[Spine, ...]
    n_lines: int
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def matched(self) -> int:
        return sum(s.match.matched for s in self.spines)

    def to_dict(self) -> dict[str, Any]:
        return {"photo": self.source, "lines": self.n_lines, "spines_found": len(self.spines),
                "spines_matched": self.matched, "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                "spines": [s.to_dict() for s in self.spines]}


def match_lines(lines: Sequence[LineLike], matcher: BookMatcher,
                image: npt.NDArray[Any] | None = None) -> list[Spine]:
    """Group OCR lines into spines and match them, all spines of the photo at once (one-to-one)."""
    quads = [np.asarray(ln.quad, dtype=np.float64) for ln in lines]
    groups = group_spines(quads, [ln.vertical for ln in lines], image, [ln.text for ln in lines])
    texts = [" ".join(lines[k].text for k in g) for g in groups]
    matches = matcher.match(texts) if texts else []
    return [Spine(i, tuple(spine_polygon([quads[k] for k in g])), tuple(lines[k].text for k in g), m)
            for i, (g, m) in enumerate(zip(groups, matches, strict=True))]


class ShelfMatcher:
    """``ShelfMatcher(matcher)(photo) -> ShelfResult``: OCR (edgevl's PP-OCR pipeline by default),
    spine grouping and per-photo one-to-one matching."""

    def __init__(self, matcher: BookMatcher, ocr: Any | None = None) -> None:
        self.matcher = matcher
        if ocr is None:
            from edgevl.tasks.ocr import OcrPipeline

            ocr = OcrPipeline()
        self.ocr = ocr

    def __call__(self, photo: str | Path | npt.NDArray[Any]) -> ShelfResult:
        img = as_image(photo)
        t0 = time.perf_counter()
        lines = self.ocr(img)
        t1 = time.perf_counter()
        spines = match_lines(lines, self.matcher, img)
        t2 = time.perf_counter()
        src = str(photo) if isinstance(photo, (str, Path)) else "<array>"
        return ShelfResult(src, tuple(spines), len(lines), {"ocr": t1 - t0, "match": t2 - t1})


def draw_spines(image: npt.NDArray[Any], spines: Sequence[Spine], max_side: int = 0) -> npt.NDArray[np.uint8]:
    """The photo with each spine outlined (green: matched, red: rejected), numbered, its matched
    title written along it (accents kept), and a legend of every spine's match below it
    (:func:`edgevl.vision.draw.draw_spines`). ``max_side`` > 0 bounds the longer side of the result.
    """
    from edgevl.vision.draw import draw_spines as draw

    return draw(as_image(image), spines, max_side)
