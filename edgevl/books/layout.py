"""Shelf structure of a photo from its OCR lines: shelf rows (the bands of standing books between
two boards) and shelf signs (text on a board, running along it across several spines).

Books stand upright, so the text of one shelf row is vertical lines whose heights overlap from book
to book; a board is a horizontal band that *no* vertical line crosses and that is taller than two
text heights (a spine's own gap between its title and its label is filled by its neighbours' text).
A horizontal line whose centre lies on a board (below a row: the board's front edge) and that is
wider than a few spines is a sign or a classification strip ("796.4 GIMNÀSTICA. ATLETISME"): it is
never matched as a book, and no spine joins lines of two rows.

Pure functions on line geometry; no model, no image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgevl.books.spines import LineGeom, looks_like_tag

#: a gap crossed by no vertical line is a board when taller than this many text heights
BOARD_GAP = 2.0
#: a horizontal line on a board is a sign when longer than this many text heights
SIGN_LENGTH = 3.0


@dataclass(frozen=True)
class ShelfRow:
    """One shelf row: the vertical extent (photo pixels) of its standing books' text."""

    index: int
    y0: float
    y1: float

    def to_dict(self) -> dict[str, float | int]:
        return {"row": self.index, "y0": round(self.y0, 1), "y1": round(self.y1, 1)}


@dataclass(frozen=True)
class Layout:
    """Rows of a photo, the row of each line (-1: on a board or outside every row) and the lines
    that are shelf signs."""

    rows: tuple[ShelfRow, ...]
    row_of: tuple[int, ...]
    sign: tuple[bool, ...]


def find_rows(geoms: Sequence[LineGeom], texts: Sequence[str] | None = None,
              board_gap: float = BOARD_GAP) -> tuple[ShelfRow, ...]:
    """The shelf rows: the vertical lines' y extents merged wherever the gap between them is less
    than ``board_gap`` times the median text height (a line's width across its axis). A band made
    only of call-number labels (``texts`` given) is the foot of the row above it, not a row: the
    labels of a short shelf can sit far below the titles."""
    vert = [i for i, g in enumerate(geoms) if g.vertical]
    if not vert:
        return ()
    min_gap = board_gap * float(np.median([geoms[i].width for i in vert]))
    order = sorted(vert, key=lambda i: (geoms[i].y0, geoms[i].y1))
    bands: list[list[float]] = []
    only_labels: list[bool] = []
    for i in order:
        g = geoms[i]
        label = texts is not None and looks_like_tag(texts[i])
        if bands and g.y0 - bands[-1][1] < min_gap:
            bands[-1][1] = max(bands[-1][1], g.y1)
            only_labels[-1] = only_labels[-1] and label
        else:
            bands.append([g.y0, g.y1])
            only_labels.append(label)
    merged: list[list[float]] = []
    for band, labels in zip(bands, only_labels, strict=True):
        if merged and labels:
            merged[-1][1] = max(merged[-1][1], band[1])
        else:
            merged.append(band)
    return tuple(ShelfRow(i, b[0], b[1]) for i, b in enumerate(merged))


def _row_at(rows: Sequence[ShelfRow], y: float) -> int:
    return next((r.index for r in rows if r.y0 <= y <= r.y1), -1)


def shelf_layout(geoms: Sequence[LineGeom], texts: Sequence[str] | None = None,
                 board_gap: float = BOARD_GAP, sign_length: float = SIGN_LENGTH) -> Layout:
    """Rows, the row of every line (a vertical line: the row holding it; a horizontal one: the row
    holding its centre, else for a call-number label the row above it and for other text the
    nearest row; -1 for signs and where there are no rows) and the sign lines: horizontal, centred
    on a board below a row, longer than ``sign_length`` of its own text heights and than a board
    gap (wider than a spine), and not a call-number label."""
    rows = find_rows(geoms, texts, board_gap)
    vert = [g.width for g in geoms if g.vertical]
    near = board_gap * float(np.median(vert)) if vert else 0.0
    row_of: list[int] = []
    sign: list[bool] = []
    for i, g in enumerate(geoms):
        cy = 0.5 * (g.top[1] + g.bottom[1])
        r = _row_at(rows, cy)
        length = float(np.hypot(g.bottom[0] - g.top[0], g.bottom[1] - g.top[1]))
        tag = looks_like_tag(texts[i]) if texts is not None else False
        below_a_row = any(row.y1 < cy for row in rows)
        is_sign = bool(not g.vertical and r < 0 and below_a_row and not tag
                       and length > max(sign_length * g.width, near))
        if r < 0 and not g.vertical and not is_sign and rows:
            # a call-number label written across a spine's foot: the row above it; other short
            # text off the rows (a book lying on a board): the nearest row
            above = [row for row in rows if row.y1 < cy]
            if tag and above:
                r = above[-1].index
            else:
                r = min(rows, key=lambda row: min(abs(cy - row.y0), abs(cy - row.y1))).index
        row_of.append(r)
        sign.append(is_sign)
    return Layout(rows, tuple(row_of), tuple(sign))
