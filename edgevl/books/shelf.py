"""End to end on a shelf photo: OCR lines -> spines -> one-to-one catalogue matches -> drawing."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from edgevl.books.layout import ShelfRow, shelf_layout
from edgevl.books.matcher import BookMatch, BookMatcher
from edgevl.books.spines import group_spines, line_geometry, spine_polygon
from edgevl.vision.io import as_image

if TYPE_CHECKING:
    from edgevl.backends import EngineOptions
    from edgevl.tasks.ocr import OcrPipeline


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
    row: int = -1  # the shelf row (ShelfResult.rows) it stands in; -1: none found

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {"spine": self.index, "row": self.row,
                "polygon": [[round(x, 1), round(y, 1)] for x, y in self.polygon],
                "ocr": self.text, **{k: v for k, v in self.match.to_dict().items() if k != "text"}}


@dataclass(frozen=True)
class Sign:
    """Text on a shelf board running across several spines (a sign, a classification strip):
    never matched as a book."""

    polygon: tuple[tuple[float, float], ...]
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"polygon": [[round(x, 1), round(y, 1)] for x, y in self.polygon], "ocr": self.text}


@dataclass(frozen=True)
class ShelfResult:
    """All spines of one photo."""

    source: str
    spines: tuple[Spine, ...]
    n_lines: int
    seconds: dict[str, float] = field(default_factory=dict)
    rows: tuple[ShelfRow, ...] = ()  # shelf rows found (bands between boards), top to bottom
    signs: tuple[Sign, ...] = ()  # shelf signs / classification strips (never matched)

    @property
    def matched(self) -> int:
        return sum(s.match.matched for s in self.spines)

    @property
    def labels_read(self) -> bool:
        """Whether any spine shows a library label (False: none does, or there is no spine); the
        photo was then matched with the calibration for unlabelled shelves."""
        return bool(self.spines) and self.spines[0].match.labels_read

    @property
    def condition(self) -> str:
        """'labels', 'no labels' (spines but no library label read) or 'no spines'."""
        if not self.spines:
            return "no spines"
        return "labels" if self.labels_read else "no labels"

    @property
    def found(self) -> str:
        """One sentence saying what was found on the photo."""
        if not self.n_lines:
            return "no text found: no shelf, no spine"
        if not self.spines:
            return f"{self.n_lines} text lines, no spine"
        rows = f"{len(self.rows)} shelf row{'s' * (len(self.rows) != 1)}" if self.rows else "no shelf row"
        signs = f", {len(self.signs)} sign{'s' * (len(self.signs) != 1)}" if self.signs else ""
        labels = ("library labels read" if self.labels_read
                  else "no library label read (matched with the calibration for unlabelled shelves)")
        return (f"{self.n_lines} text lines: {rows}{signs}, {len(self.spines)} spines, {self.matched} "
                f"matched; {labels}")

    def to_dict(self) -> dict[str, Any]:
        return {"photo": self.source, "lines": self.n_lines, "spines_found": len(self.spines),
                "spines_matched": self.matched, "condition": self.condition, "found": self.found,
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                "rows": [r.to_dict() for r in self.rows], "signs": [g.to_dict() for g in self.signs],
                "spines": [s.to_dict() for s in self.spines]}


@dataclass(frozen=True)
class ShelfSpines:
    """What :func:`read_shelf` finds on a photo: spines (matched), shelf rows and signs."""

    spines: tuple[Spine, ...]
    rows: tuple[ShelfRow, ...]
    signs: tuple[Sign, ...]


def read_shelf(lines: Sequence[LineLike], matcher: BookMatcher,
               image: npt.NDArray[Any] | None = None) -> ShelfSpines:
    """Find the shelf rows and signs, group the other OCR lines into spines (never across a board)
    and match them, all spines of the photo at once (one-to-one)."""
    quads = [np.asarray(ln.quad, dtype=np.float64) for ln in lines]
    texts = [ln.text for ln in lines]
    layout = shelf_layout([line_geometry(q, ln.vertical) for q, ln in zip(quads, lines, strict=True)], texts)
    keep = [k for k in range(len(lines)) if not layout.sign[k]]
    sub = group_spines([quads[k] for k in keep], [lines[k].vertical for k in keep], image,
                       [texts[k] for k in keep], rows=[layout.row_of[k] for k in keep])
    groups = [[keep[k] for k in g] for g in sub]
    spine_texts = [" ".join(texts[k] for k in g) for g in groups]
    matches = matcher.match(spine_texts) if spine_texts else []
    spines = tuple(Spine(i, tuple(spine_polygon([quads[k] for k in g])), tuple(texts[k] for k in g), m,
                         max(layout.row_of[k] for k in g))
                   for i, (g, m) in enumerate(zip(groups, matches, strict=True)))
    signs = tuple(Sign(tuple(spine_polygon([quads[k]])), texts[k])
                  for k in range(len(lines)) if layout.sign[k])
    return ShelfSpines(spines, layout.rows, signs)


def match_lines(lines: Sequence[LineLike], matcher: BookMatcher,
                image: npt.NDArray[Any] | None = None) -> list[Spine]:
    """The spines of :func:`read_shelf` (shelf signs left out, no spine across a board)."""
    return list(read_shelf(lines, matcher, image).spines)


#: the detector's input for shelf photos: full resolution (0; the detector runs in 1280-px tiles).
#: Spine text is small and an inventory wants every spine, where `edgevl ocr`'s 1792-px default is
#: chosen for speed; measured on the two shelf photos (docs/books.md, results/books_photos.md against
#: results/books_photos_1792.md): 75 books found and 77 of 78 matches right instead of 65 and 69 of 71
SHELF_LIMIT_SIDE = 0


def shelf_ocr(options: EngineOptions | None = None, model: str | None = None,
              limit_side: int = SHELF_LIMIT_SIDE) -> OcrPipeline:
    """The OCR pipeline a shelf photo is read with (PP-OCR, detector at ``limit_side``)."""
    from edgevl.tasks.ocr import OcrPipeline, TextDetector

    return OcrPipeline(TextDetector(options=options, limit_side=limit_side, model=model), options=options,
                       model=model)


class ShelfMatcher:
    """``ShelfMatcher(matcher)(photo) -> ShelfResult``: OCR (edgevl's PP-OCR pipeline at
    :data:`SHELF_LIMIT_SIDE` by default), spine grouping and per-photo one-to-one matching."""

    def __init__(self, matcher: BookMatcher, ocr: Any | None = None) -> None:
        self.matcher = matcher
        self.ocr = ocr if ocr is not None else shelf_ocr()

    def __call__(self, photo: str | Path | npt.NDArray[Any]) -> ShelfResult:
        img = as_image(photo)
        t0 = time.perf_counter()
        lines = self.ocr(img)
        t1 = time.perf_counter()
        found = read_shelf(lines, self.matcher, img)
        t2 = time.perf_counter()
        src = str(photo) if isinstance(photo, (str, Path)) else "<array>"
        return ShelfResult(src, found.spines, len(lines), {"ocr": t1 - t0, "match": t2 - t1}, found.rows,
                           found.signs)


def draw_spines(image: npt.NDArray[Any], spines: Sequence[Spine], max_side: int = 0, *,
                rows: Sequence[ShelfRow] = (), signs: Sequence[Sign] = ()) -> npt.NDArray[np.uint8]:
    """The photo with each spine outlined (green: matched, red: rejected), numbered, its matched
    title written along it (accents kept), shelf rows and signs in blue, and a legend of every
    spine's match and every sign below it (:func:`edgevl.vision.draw.draw_spines`). ``max_side`` > 0
    bounds the longer side of the result.
    """
    from edgevl.vision.draw import draw_spines as draw

    return draw(as_image(image), spines, max_side, rows=rows, signs=signs)
