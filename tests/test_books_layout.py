"""Shelf rows and shelf signs on synthetic layouts, and on shelf_one.jpg's OCR when the dataset is here."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgevl.books import BookMatcher, Catalogue, build_index
from edgevl.books.layout import find_rows, shelf_layout
from edgevl.books.shelf import read_shelf
from edgevl.books.spines import group_spines, line_geometry, looks_like_tag, split_at_labels


def vquad(x: float, y0: float, y1: float, w: float = 30) -> list[list[float]]:
    return [[x - w / 2, y0], [x + w / 2, y0], [x + w / 2, y1], [x - w / 2, y1]]


def hquad(x0: float, x1: float, y: float, h: float = 20) -> list[list[float]]:
    return [[x0, y - h / 2], [x1, y - h / 2], [x1, y + h / 2], [x0, y + h / 2]]


def two_rows() -> tuple[list[list[list[float]]], list[str]]:
    """Two shelf rows of three spines; a board (no text) between y = 420 and y = 560; the middle
    spine of the top row has no call-number label (its text ends in a fragment), and the book
    below it starts right under the board."""
    quads, texts = [], []
    for k, x in enumerate((100, 160, 220)):  # top row: titles 100-330, labels 350-410
        quads.append(vquad(x, 100, 330))
        texts.append(f"TOP TITLE {k}")
        if k != 1:
            quads.append(vquad(x, 350, 410))
            texts.append(f"N Top{k}"[:6])
        else:
            quads.append(vquad(x, 350, 400))
            texts.append("Ove")  # a fragment, not label-shaped: nothing stops the geometry
    for k, x in enumerate((100, 160, 220)):  # bottom row: titles 570-800, labels 820-880
        quads.append(vquad(x, 570, 800))
        texts.append(f"LOW TITLE {k}")
        quads.append(vquad(x, 820, 880))
        texts.append(f"N Low{k}"[:6])
    return quads, texts


def test_rows_are_split_at_a_board() -> None:
    quads, texts = two_rows()
    geoms = [line_geometry(q) for q in quads]
    rows = find_rows(geoms)
    assert [(round(r.y0), round(r.y1)) for r in rows] == [(100, 410), (570, 880)]
    layout = shelf_layout(geoms, texts)
    assert layout.row_of == tuple([0] * 6 + [1] * 6)
    assert not any(layout.sign)


def test_no_spine_crosses_a_board() -> None:
    quads, texts = two_rows()
    # the geometry alone joins the top row's fragment to the book below it (gap 170 < 6 text heights)
    joined = group_spines(quads, None, None, texts)
    assert any({3, 8} <= set(g) for g in joined)
    layout = shelf_layout([line_geometry(q) for q in quads], texts)
    groups = group_spines(quads, None, None, texts, rows=layout.row_of)
    for g in groups:
        assert len({layout.row_of[k] for k in g}) == 1, g
    assert sorted(sorted(g) for g in groups) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11]]


def leaning(x0: float, y0: float, y1: float, slope: float, w: float = 30) -> list[list[float]]:
    """A vertical line whose axis runs from (x0, y0) with ``slope`` pixels of x per pixel of y."""
    x1 = x0 + slope * (y1 - y0)
    return [[x0 - w / 2, y0], [x0 + w / 2, y0], [x1 + w / 2, y1], [x1 - w / 2, y1]]


def far_pieces(slope: float = 0.06) -> tuple[list[list[list[float]]], list[str]]:
    """One shelf row: a leaning spine whose author line (y 100-280) and call-number label (y 700-820)
    are 14 text heights apart on one axis (the title between them unread), and an upright
    neighbour 80 px to the right whose title and label are read next to each other."""
    at = lambda y: 200 + slope * (y - 100)  # noqa: E731 - the leaning spine's axis
    quads = [leaning(200, 100, 280, slope), leaning(at(700), 700, 820, slope),
             vquad(280, 300, 640), vquad(280, 660, 780)]
    return quads, ["VITALIY POLISCHUK", "796.42 Pol", "ANOTHER TITLE", "796.4 Ano"]


def test_far_pieces_on_one_axis_join_inside_a_row() -> None:
    quads, texts = far_pieces()
    layout = shelf_layout([line_geometry(q) for q in quads], texts)
    assert layout.row_of == (0, 0, 0, 0)
    # without the rows the gap (14 text heights) keeps the author apart from its label
    assert sorted(sorted(g) for g in group_spines(quads, None, None, texts)) == [[0], [1], [2, 3]]
    groups = group_spines(quads, None, None, texts, rows=layout.row_of)
    assert sorted(sorted(g) for g in groups) == [[0, 1], [2, 3]]
    # the same pieces off one axis (the label a text height to the left) stay apart
    off = [quads[0], leaning(200 + 0.06 * 600 - 30, 700, 820, 0.06), *quads[2:]]
    groups = group_spines(off, None, None, texts, rows=layout.row_of)
    assert sorted(sorted(g) for g in groups) == [[0], [1], [2, 3]]


def test_far_join_never_puts_two_labels_on_one_spine() -> None:
    quads, texts = far_pieces(slope=0.0)
    quads.append(vquad(232, 150, 230))  # a label column beside the author line: one wide spine
    texts.append("N Pol")
    layout = shelf_layout([line_geometry(q) for q in quads], texts)
    groups = group_spines(quads, None, None, texts, rows=layout.row_of)
    # the author keeps its own label; the far label on its axis, a label itself, stays apart
    assert sorted(sorted(g) for g in groups) == [[0, 4], [1], [2, 3]]


def test_far_join_stays_inside_its_row() -> None:
    # an unlabelled spine on the top row and, on the same axis past a board 9 text heights tall, a
    # labelled book on the row below
    quads = [vquad(160, 100, 330), vquad(160, 600, 800), vquad(160, 820, 880)]
    texts = ["TOP TITLE", "LOW TITLE", "N Low"]
    layout = shelf_layout([line_geometry(q) for q in quads], texts)
    assert layout.row_of == (0, 1, 1)
    groups = group_spines(quads, None, None, texts, rows=layout.row_of)
    assert sorted(sorted(g) for g in groups) == [[0], [1, 2]]


def test_a_group_with_two_labels_is_split_by_axis() -> None:
    # two thin leaning books (slope 0.09): titles side by side, labels 32 px apart at their feet -
    # nearer to each other than a label is tall, so only the axes tell which title is whose
    quads = [leaning(372, 2351, 2878, 0.097, 46), leaning(414, 2370, 2748, 0.093, 44),
             vquad(438, 2988, 3078, 45), vquad(470, 2999, 3089, 40)]
    texts = ["SI MENGES UNA LLIMONA SERGI PAMIES", "LA BICICLETA ESTATICA SERGI PAMIES", "N Pam", "N Pam"]
    geoms = [line_geometry(q) for q in quads]
    tags = [looks_like_tag(t) for t in texts]
    assert sorted(sorted(g) for g in split_at_labels(geoms, [0, 1, 2, 3], tags)) == [[0, 2], [1, 3]]
    # one label and a title: nothing to split
    assert split_at_labels(geoms, [0, 2], tags) == [[0, 2]]
    # one label read twice on one axis (two detections of one sticker): one book
    twice = [*geoms[:2], line_geometry(vquad(438, 2988, 3030, 45)), line_geometry(vquad(445, 3035, 3078, 45))]
    assert split_at_labels(twice, [0, 1, 2, 3], tags) == [[0, 1, 2, 3]]
    # through group_spines: the touching columns join (no image), the labels split them again
    groups = group_spines(quads, None, None, texts, rows=[0, 0, 0, 0])
    assert sorted(sorted(g) for g in groups) == [[0, 2], [1, 3]]


def test_text_along_a_board_is_a_sign_and_a_foot_label_is_not() -> None:
    quads, texts = two_rows()
    quads.append(hquad(80, 400, 490, 30))  # along the board under the top row, across all spines
    texts.append("796.4 GIMNASTICA. ATLETISME")
    quads.append(hquad(205, 235, 420, 16))  # a short horizontal label just under a top-row spine
    texts.append("N Abc")
    quads.append(hquad(60, 260, 250, 30))  # a book lying flat inside the top row: not a sign
    texts.append("ATLAS DEL MUNDO")
    layout = shelf_layout([line_geometry(q) for q in quads], texts)
    assert layout.sign[-3] and not layout.sign[-2] and not layout.sign[-1]
    assert layout.row_of[-3] == -1 and layout.row_of[-2] == 0 and layout.row_of[-1] == 0


def test_nothing_on_the_photo_gives_no_rows_no_signs_no_spines() -> None:
    layout = shelf_layout([])
    assert layout.rows == () and layout.sign == ()
    # a rotated shelf photo: every line horizontal, no row of standing books, nothing called a sign
    quads, texts = two_rows()
    rot = [[[y, 1000 - x] for x, y in q] for q in quads]
    layout = shelf_layout([line_geometry(q) for q in rot], texts)
    assert layout.rows == () and not any(layout.sign)


@pytest.fixture(scope="module")
def small_matcher() -> BookMatcher:
    recs = [{"title": "Atletismo : iniciacion y perfeccionamiento", "author": "Polischuk, Vitali",
             "tag": "796.42 Pol"},
            {"title": "Gimnastica per a tothom", "author": "Sala, Anna", "tag": "796.4 Sal"}]
    recs += [{"title": f"Libro numero {i}", "author": f"Autor{i}, Nombre", "tag": f"N Au{i % 10}"}
             for i in range(50)]
    return BookMatcher(build_index(Catalogue.from_records(recs)))


def test_a_sign_is_never_matched(small_matcher: BookMatcher) -> None:
    def line(q: list[list[float]], t: str) -> SimpleNamespace:
        g = line_geometry(q)
        return SimpleNamespace(quad=np.asarray(q), text=t, vertical=g.vertical)

    quads, texts = two_rows()
    lines = [line(q, t) for q, t in zip(quads, texts, strict=True)]
    lines.append(line(hquad(80, 400, 490, 30), "796.4 GIMNASTICA. ATLETISME"))
    found = read_shelf(lines, small_matcher)
    assert [s.text for s in found.signs] == ["796.4 GIMNASTICA. ATLETISME"]
    assert all("GIMNASTICA" not in s.text for s in found.spines)
    assert len(found.rows) == 2 and {s.row for s in found.spines} == {0, 1}
    # the same text standing as a spine would be matched: the sign is kept out by the layout only
    assert small_matcher.match(["796.4 GIMNASTICA. ATLETISME"])[0].matched


def test_shelf_one_rows_and_signs(library_dir: Path) -> None:
    """The sign case of issue 22: on shelf_one.jpg the board signs are found (and so never matched),
    the book *Atletismo* goes to its own spine, and no spine outline crosses a board."""
    from edgevl.books import load_catalogue
    from edgevl.books.shelf import ShelfMatcher

    matcher = BookMatcher(build_index(load_catalogue(library_dir / "library_books.csv")))
    res = ShelfMatcher(matcher)(library_dir / "shelf_one.jpg")
    signs = {s.text for s in res.signs}
    assert "796.4 GIMNÀSTICA. ATLETISME" in signs and "796 ESPORTS" in signs
    assert not any("GIMN" in s.text for s in res.spines)
    atletismo = [s for s in res.spines if s.match.title.startswith("Atletismo")]
    # matched on its own spine (its call number or its author), never on the sign
    assert len(atletismo) == 1 and ("796.42 Pol" in atletismo[0].text or "Polischuk" in atletismo[0].text)
    assert len(res.rows) >= 2
    for s in res.spines:
        ys = [p[1] for p in s.polygon]
        boards = [(a.y1, b.y0) for a, b in zip(res.rows, res.rows[1:], strict=False)]
        assert not any(min(ys) < top and max(ys) > bottom for top, bottom in boards), s.text
