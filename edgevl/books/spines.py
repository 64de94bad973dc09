"""Group the OCR lines of a shelf photo into book spines.

Books stand side by side, so a spine's text lines share its long (vertical) axis: lines whose
horizontal extents overlap and that are close vertically belong to one spine (title, author and the
call-number label near its foot). Two lines side by side with a small gap can be one wide spine
(two text columns) or two thin books; the image decides: a consistent vertical edge in the gap (the
boundary between two books) keeps them apart. Horizontal lines (shelf labels, books lying flat) are
grouped with horizontal neighbours on the same text row.

Pure functions on quads (and the image for the edge test); no model involved.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
QuadLike = Sequence[Sequence[float]] | npt.NDArray[Any]

# a call-number label: optional section letters, a class number, a 1-4 letter author/title code
# ("796.332 Luc", "N Oz", "P 834 Gar", "91(026)(43.7) Di D"); the label is the foot of its spine
_TAG = re.compile(r"^\s*([A-Z]{1,3}\*{0,3}\s*)?[0-9][0-9.,()\-:/ IlO]*\s*[A-Z][A-Za-z]{0,3}(\s[A-Z])?\s*$"
                  r"|^\s*[A-Z]{1,3}\*{0,3}\s*[A-Z][a-z]{1,3}\s*$")


# side-by-side lines further apart than this (in text heights) are on different spines
SIDE_GAP = 0.25


def looks_like_tag(text: str) -> bool:
    """Whether an OCR line has the shape of a library call number (the label at a spine's foot)."""
    return bool(_TAG.match(text))


@dataclass(frozen=True)
class LineGeom:
    """A text line reduced to its spine geometry: axis end points, width across the axis."""

    top: tuple[float, float]  # axis point with the smaller y
    bottom: tuple[float, float]
    width: float  # extent across the long axis
    vertical: bool

    @property
    def y0(self) -> float:
        return self.top[1]

    @property
    def y1(self) -> float:
        return self.bottom[1]

    def x_at(self, y: float) -> float:
        """x of the axis at height y (extrapolated along the axis)."""
        (xa, ya), (xb, yb) = self.top, self.bottom
        if abs(yb - ya) < 1e-6:
            return 0.5 * (xa + xb)
        return xa + (xb - xa) * (y - ya) / (yb - ya)


def line_geometry(quad: QuadLike, vertical: bool | None = None) -> LineGeom:
    """Axis and width of a quad (TL, TR, BR, BL): the long side's direction is the axis."""
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    e01 = np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])
    e12 = np.linalg.norm(q[2] - q[1]) + np.linalg.norm(q[3] - q[0])
    if e12 >= e01:  # edges 1-2 / 3-0 are the long ones: axis joins mid(0,1) and mid(2,3)
        a, b, width = (q[0] + q[1]) / 2, (q[2] + q[3]) / 2, e01 / 2
    else:
        a, b, width = (q[0] + q[3]) / 2, (q[1] + q[2]) / 2, e12 / 2
    if a[1] > b[1]:
        a, b = b, a
    dx, dy = abs(b[0] - a[0]), abs(b[1] - a[1])
    is_vertical = bool(dy >= dx) if vertical is None else vertical
    if not is_vertical:
        return LineGeom((float(a[0]), float(a[1])), (float(b[0]), float(b[1])), float(width), False)
    return LineGeom((float(a[0]), float(a[1])), (float(b[0]), float(b[1])), float(width), True)


def edge_strength(grad_x: npt.NDArray[np.float32], left: LineGeom, right: LineGeom) -> float:
    """Median over the shared height of the strongest vertical edge in the gap between two lines,
    relative to the image's typical edge strength (1 = typical, > ~3 = a clear boundary)."""
    y0 = max(left.y0, right.y0)
    y1 = min(left.y1, right.y1)
    if y1 - y0 < 4:  # no shared height: compare at the nearer ends
        y0, y1 = min(left.y1, right.y1), max(left.y0, right.y0)
        y0, y1 = min(y0, y1), max(y0, y1)
    h, w = grad_x.shape
    ys = np.linspace(max(0.0, y0), min(h - 1.0, y1), num=24)
    vals = []
    for y in ys:
        xa = left.x_at(y) + left.width / 2 + 2
        xb = right.x_at(y) - right.width / 2 - 2
        lo, hi = int(max(0, min(xa, xb))), int(min(w - 1, max(xa, xb)))
        if hi <= lo:
            lo, hi = max(0, lo - 2), min(w - 1, hi + 2)
        vals.append(float(grad_x[int(y), lo: hi + 1].max()) if hi >= lo else 0.0)
    return float(np.median(vals)) / _edge_scale(grad_x)


def _edge_scale(grad_x: npt.NDArray[np.float32]) -> float:
    """The image's typical gradient (at least 8 grey levels per pixel, so flat images split only at
    real edges)."""
    return max(float(grad_x[::4, ::4].mean()), 8.0)


def vertical_gradient(image: npt.NDArray[Any] | None) -> npt.NDArray[np.float32] | None:
    """|d/dx| of the smoothed grey image (vertical edges), or None without an image."""
    if image is None:
        return None
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    grey = cv2.GaussianBlur(grey, (5, 5), 0)
    g = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3))
    # favour long vertical edges over text strokes
    return np.asarray(cv2.blur(g, (1, 9)), dtype=np.float32)


def group_spines(quads: Sequence[QuadLike], vertical: Sequence[bool] | None = None,
                 image: npt.NDArray[Any] | None = None, texts: Sequence[str] | None = None, *,
                 edge_thresh: float = 1.5, max_gap: float = 0.6,
                 rows: Sequence[int] | None = None) -> list[list[int]]:
    """Group text lines (their quads) into spines; returns lists of line indices, left to right.

    ``max_gap``: largest vertical gap between two lines of one spine, as a fraction of the longer
    line (at least 6 text heights, so a short title still reaches the label at the spine's foot).
    ``texts``: the lines' OCR text; a call-number label ends its spine (nothing below it joins).
    ``edge_thresh``: edge strength (see :func:`edge_strength`) above which two side-by-side lines
    are split. Without an image, side-by-side lines are split when they do not overlap.
    ``rows``: the shelf row of each line (:func:`edgevl.books.layout.shelf_layout`); lines of two
    different rows never join (no spine crosses a shelf board). Inside one known row (>= 0) two
    vertical lines on one axis join whatever the gap between them: upright books are not stacked, so
    a title and a label far below it on the same axis are one spine whose middle was not read.
    """
    geoms = [line_geometry(q, None if vertical is None else vertical[i]) for i, q in enumerate(quads)]
    n = len(geoms)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    grad = vertical_gradient(image)
    is_tag = [looks_like_tag(t) for t in texts] if texts is not None else [False] * n
    tag_lines = [k for k in range(n) if is_tag[k]]
    row = list(rows) if rows is not None else [0] * n
    for i in range(n):
        gi = geoms[i]
        for j in range(i + 1, n):
            gj = geoms[j]
            if gi.vertical != gj.vertical or row[i] != row[j]:
                continue
            if gi.vertical:
                if _label_ends_upper(geoms, tag_lines, i, j):
                    continue  # below the label at a spine's foot: another shelf row
                if _same_spine(gi, gj, grad, edge_thresh, max_gap):
                    parent[find(i)] = find(j)
            elif not (is_tag[i] or is_tag[j]) and _same_row(gi, gj):  # labels of two spines stay apart
                parent[find(i)] = find(j)
    if rows is not None:
        _join_along_axes(geoms, row, tag_lines, find, parent, max_gap)
    # a horizontal call-number label joins the one vertical spine it sits on (the nearest axis)
    for h in range(n):
        if geoms[h].vertical or not is_tag[h]:
            continue
        hx, hy = 0.5 * (geoms[h].top[0] + geoms[h].bottom[0]), 0.5 * (geoms[h].top[1] + geoms[h].bottom[1])
        near = [(abs(hx - geoms[v].x_at(hy)), v) for v in range(n)
                if geoms[v].vertical and row[v] == row[h] and _label_on_spine(geoms[v], geoms[h])]
        if near:
            parent[find(h)] = find(min(near)[1])
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    split = [part for g in groups.values() for part in split_at_labels(geoms, g, is_tag)]
    out = [sorted(g, key=lambda k: (geoms[k].y0 if geoms[k].vertical else geoms[k].top[0]))
           for g in split]
    out.sort(key=lambda g: float(np.mean([_cx(geoms[k]) for k in g])))
    return out


def split_at_labels(geoms: Sequence[LineGeom], group: Sequence[int], is_tag: Sequence[bool]
                    ) -> list[list[int]]:
    """A group holding call-number labels on two or more spines (vertical labels side by side, at
    least half a text height apart across the axis) is that many books: each other line goes to the label
    its axis, extended to the label's height, passes nearest. A group with one label, or labels on
    one axis (one label read as two lines), is returned whole."""
    tags = [k for k in group if is_tag[k] and geoms[k].vertical]
    if len(tags) < 2:
        return [list(group)]
    heads: list[int] = []  # one label per axis, left to right
    for k in sorted(tags, key=lambda k: _cx(geoms[k])):
        if heads and abs(_cx(geoms[k]) - _cx(geoms[heads[-1]])) < 0.5 * max(geoms[k].width,
                                                                          geoms[heads[-1]].width):
            continue  # on the axis of the label before it
        heads.append(k)
    if len(heads) < 2:
        return [list(group)]
    parts: dict[int, list[int]] = {h: [] for h in heads}
    for k in group:
        parts[min(heads, key=lambda h: _offset(geoms[k], geoms[h]))].append(k)
    return [p for p in parts.values() if p]


def _offset(line: LineGeom, tag: LineGeom) -> float:
    """How far across the axis ``line`` (a vertical one's axis extended) passes from a label's centre."""
    y = 0.5 * (tag.y0 + tag.y1)
    x = line.x_at(y) if line.vertical else _cx(line)
    return abs(x - _cx(tag))


def _join_along_axes(geoms: Sequence[LineGeom], row: Sequence[int], tag_lines: Sequence[int],
                     find: Callable[[int], int], parent: list[int], max_gap: float) -> None:
    """Inside a known shelf row (>= 0), join vertical lines further apart than a spine's usual gap
    when they stand on one axis (:func:`_one_axis`): upright books are not stacked, so a title and a
    label far below it on the same axis are one spine whose middle was not read. Never two spines
    that each hold a call-number label (a spine carries one), nearest pairs first."""
    n = len(geoms)
    labelled = [False] * n
    for k in tag_lines:
        labelled[find(k)] = True
    pairs = []
    for i in range(n):
        gi = geoms[i]
        for j in range(i + 1, n):
            gj = geoms[j]
            if not (gi.vertical and gj.vertical) or row[i] != row[j] or row[i] < 0:
                continue
            gap = max(gi.y0, gj.y0) - min(gi.y1, gj.y1)
            if gap <= _gap_limit(gi, gj, max_gap) or not _one_axis(gi, gj):
                continue
            if not _label_ends_upper(geoms, tag_lines, i, j):
                pairs.append((gap, i, j))
    for _, i, j in sorted(pairs):
        ri, rj = find(i), find(j)
        if ri == rj or (labelled[ri] and labelled[rj]):
            continue
        parent[ri] = rj
        labelled[rj] = labelled[rj] or labelled[ri]


def _cx(g: LineGeom) -> float:
    return 0.5 * (g.top[0] + g.bottom[0])


def _same_spine(a: LineGeom, b: LineGeom, grad: npt.NDArray[np.float32] | None, edge_thresh: float,
                max_gap: float) -> bool:
    la, lb = a.y1 - a.y0, b.y1 - b.y0
    gap = max(a.y0, b.y0) - min(a.y1, b.y1)  # < 0 when the heights overlap
    if gap > _gap_limit(a, b, max_gap):
        return False  # a spine is long but not taller than ~6 text heights between its lines
    y = 0.5 * (max(a.y0, b.y0) + min(a.y1, b.y1))
    dx = abs(a.x_at(y) - b.x_at(y))
    half = 0.5 * (a.width + b.width)
    if dx < 0.5 * max(a.width, b.width):
        return True  # stacked on one axis
    if dx > half + SIDE_GAP * max(a.width, b.width):
        return False  # a clear space between them: two spines
    # side by side and close: one wide spine (title and author columns) or two books? ask the image
    if -gap < 0.3 * min(la, lb):
        return False  # side by side needs a shared height (diagonal neighbours are two books)
    if grad is None:
        return dx <= half + 0.25 * max(a.width, b.width)
    left, right = (a, b) if a.x_at(y) < b.x_at(y) else (b, a)
    return edge_strength(grad, left, right) < edge_thresh


def _gap_limit(a: LineGeom, b: LineGeom, max_gap: float) -> float:
    """The largest vertical gap between two lines of one spine outside a known shelf row."""
    return max(max_gap * max(a.y1 - a.y0, b.y1 - b.y0), 6.0 * max(a.width, b.width))


def _one_axis(a: LineGeom, b: LineGeom) -> bool:
    """Whether two vertical lines, one above the other, stand on one (possibly leaning) axis: the
    longer line's axis, extended, passes less than half a text height from the other line's near
    end, and the shorter line's axis (a less certain direction) less than a text height from the
    longer one's near end."""
    upper, lower = (a, b) if a.y0 <= b.y0 else (b, a)
    tol = 0.5 * max(a.width, b.width)
    foot, head = upper.bottom[0], lower.top[0]
    to_head = abs(upper.x_at(lower.y0) - head)  # the upper axis extended down to the lower head
    to_foot = abs(lower.x_at(upper.y1) - foot)  # the lower axis extended up to the upper foot
    if upper.y1 - upper.y0 >= lower.y1 - lower.y0:
        return to_head < tol and to_foot < 2 * tol
    return to_foot < tol and to_head < 2 * tol


def _label_ends_upper(geoms: Sequence[LineGeom], tag_lines: Sequence[int], i: int, j: int) -> bool:
    """Whether a call-number label (one of ``tag_lines``) ends the spine of the upper of vertical
    lines i and j above the lower one (:func:`_label_between`)."""
    upper, lower = (i, j) if geoms[i].y0 <= geoms[j].y0 else (j, i)
    return any(_label_between(geoms[upper], geoms[k], geoms[lower]) for k in tag_lines if k != lower)


def _label_between(upper: LineGeom, label: LineGeom, lower: LineGeom) -> bool:
    """Whether ``label`` (a call number) ends the spine of ``upper`` above ``lower``: it starts no
    higher than ``upper``, ends above ``lower``'s top, and sits on ``lower``'s axis."""
    if not (label.y0 >= upper.y0 - 1 and label.y1 <= lower.y0 + 1):
        return False
    y = 0.5 * (label.y0 + label.y1)
    return abs(lower.x_at(y) - 0.5 * (label.top[0] + label.bottom[0])) < max(lower.width, label.width)


def _label_on_spine(v: LineGeom, h: LineGeom) -> bool:
    """A short horizontal line (a call-number label written across the spine) on a vertical line's
    spine: centred on its axis, no wider than the spine, below its text and not far from it."""
    hx, hy = 0.5 * (h.top[0] + h.bottom[0]), 0.5 * (h.top[1] + h.bottom[1])
    length = float(np.hypot(h.bottom[0] - h.top[0], h.bottom[1] - h.top[1]))
    spine_w = 2.5 * v.width  # a spine is wider than its text
    if length > spine_w:
        return False
    if abs(hx - v.x_at(hy)) > 0.5 * spine_w:
        return False
    if hy < v.y0:
        return False  # the label is at the foot, below the spine's text
    return hy - v.y1 < 10.0 * v.width


def _same_row(a: LineGeom, b: LineGeom) -> bool:
    ya, yb = 0.5 * (a.top[1] + a.bottom[1]), 0.5 * (b.top[1] + b.bottom[1])
    if abs(ya - yb) > 0.5 * max(a.width, b.width):
        return False
    ax0, ax1 = sorted((a.top[0], a.bottom[0]))
    bx0, bx1 = sorted((b.top[0], b.bottom[0]))
    gap = max(ax0, bx0) - min(ax1, bx1)
    return gap < 1.5 * max(a.width, b.width)


def spine_polygon(quads: Sequence[QuadLike]) -> list[tuple[float, float]]:
    """The minimum-area rectangle around a spine's line quads (4 points)."""
    pts = np.asarray(quads, dtype=np.float32).reshape(-1, 2)
    box = cv2.boxPoints(cv2.minAreaRect(pts))
    return [(float(x), float(y)) for x, y in box]
