"""End to end on a shelf photo: OCR lines -> spines -> one-to-one catalogue matches -> drawing."""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from edgevl.books.layout import ShelfRow, shelf_layout
from edgevl.books.matcher import BookMatch, BookMatcher
from edgevl.books.spines import group_spines, line_geometry, spine_polygon
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
        found = read_shelf(lines, self.matcher, img)
        t2 = time.perf_counter()
        src = str(photo) if isinstance(photo, (str, Path)) else "<array>"
        return ShelfResult(src, found.spines, len(lines), {"ocr": t1 - t0, "match": t2 - t1}, found.rows,
                           found.signs)


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text)
    return "".join(c for c in folded if not unicodedata.combining(c)).encode("ascii", "replace").decode()


def draw_spines(image: npt.NDArray[Any], spines: Sequence[Spine], max_side: int = 0) -> npt.NDArray[np.uint8]:
    """Outline each spine (green: matched, red: no match) and write its matched title along it.

    ``max_side`` > 0 downscales the result so its longer side is at most that many pixels.
    """
    out = np.ascontiguousarray(as_image(image).copy())
    h, w = out.shape[:2]
    thick = max(2, round(max(h, w) / 800))
    for s in spines:
        poly = np.array(s.polygon, dtype=np.float32)
        colour = (40, 200, 40) if s.match.matched else (40, 40, 220)
        cv2.polylines(out, [poly.astype(np.int32)], True, colour, thick)
        if not s.match.matched:
            continue
        _write_along(out, poly, _ascii(s.match.title.split(" : ")[0])[:60], thick)
    if max_side and max(h, w) > max_side:
        f = max_side / max(h, w)
        return np.asarray(cv2.resize(out, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA),
                          dtype=np.uint8)
    return np.asarray(out, dtype=np.uint8)


def _write_along(img: npt.NDArray[Any], poly: npt.NDArray[np.float32], text: str, thick: int) -> None:
    """Write ``text`` on a label rotated along the polygon's long side, centred on it."""
    rect = cv2.minAreaRect(poly)
    (cx, cy), (rw, rh), _ = rect
    length = max(rw, rh)
    scale = 1.0
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    target = max(8.0, 0.9 * length)
    scale = min(2.5, target / max(tw, 1), max(0.4, 0.8 * min(rw, rh) / max(th, 1)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, thick // 2))
    label: npt.NDArray[Any] = np.full((th + base + 6, tw + 6, 3), 255, np.uint8)
    cv2.putText(label, text, (3, th + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), max(1, thick // 2),
                cv2.LINE_AA)
    # spines stand upright: write bottom-to-top like most spines (rotate the label 90 degrees CCW)
    pts = np.asarray(poly)
    upright = np.ptp(pts[:, 1]) > np.ptp(pts[:, 0])
    if upright:
        label = cv2.rotate(label, cv2.ROTATE_90_COUNTERCLOCKWISE)
    lh, lw = label.shape[:2]
    x0, y0 = round(cx - lw / 2), round(cy - lh / 2)
    H, W = img.shape[:2]
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(W, x0 + lw), min(H, y0 + lh)
    if xb <= xa or yb <= ya:
        return
    crop = label[ya - y0: yb - y0, xa - x0: xb - x0]
    region = img[ya:yb, xa:xb]
    img[ya:yb, xa:xb] = cv2.addWeighted(region, 0.25, crop, 0.75, 0.0)
