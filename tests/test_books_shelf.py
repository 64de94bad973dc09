"""Spine grouping on hand-made quads, and end to end on a rendered shelf whose books are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgevl.books import BookMatcher, Catalogue, build_index
from edgevl.books.spines import group_spines, line_geometry, looks_like_tag


def vquad(x: float, y0: float, y1: float, w: float = 30) -> list[list[float]]:
    """A vertical line box (TL, TR, BR, BL) centred on x."""
    return [[x - w / 2, y0], [x + w / 2, y0], [x + w / 2, y1], [x - w / 2, y1]]


def hquad(x0: float, x1: float, y: float, h: float = 20) -> list[list[float]]:
    return [[x0, y - h / 2], [x1, y - h / 2], [x1, y + h / 2], [x0, y + h / 2]]


def test_line_geometry_finds_the_long_axis() -> None:
    g = line_geometry(vquad(100, 50, 350, 30))
    assert g.vertical and g.width == pytest.approx(30)
    assert g.top == pytest.approx((100, 50)) and g.bottom == pytest.approx((100, 350))
    h = line_geometry(hquad(10, 210, 40))
    assert not h.vertical and h.width == pytest.approx(20)


def test_tag_shapes() -> None:
    for t in ("796.4 Sal", "N Gar", "NPam", "P 834 Gar", "91(026)(43.7) Di D", "I*** Bel", "796Atl"):
        assert looks_like_tag(t), t
    for t in ("RICHARD OSMAN", "Tenis", "793.9", "La sombra del viento", "2a EDICION"):
        assert not looks_like_tag(t), t


def test_stacked_lines_and_the_foot_label_make_one_spine_each() -> None:
    quads = [vquad(100, 50, 300), vquad(100, 330, 420), vquad(100, 520, 560),  # spine A + label
             vquad(200, 60, 380), vquad(200, 500, 560),  # spine B (clear space from A)
             hquad(280, 320, 540)]  # a horizontal label on spine C
    quads.append(vquad(300, 80, 400))
    texts = ["TITLE A", "AUTHOR A", "N Aaa", "TITLE B", "N Bbb", "N Ccc", "TITLE C"]
    vertical = [True, True, True, True, True, False, True]
    groups = group_spines(quads, vertical, None, texts)
    assert sorted(sorted(g) for g in groups) == [[0, 1, 2], [3, 4], [5, 6]]
    # left to right
    assert [min(g) for g in groups] == [0, 3, 5]


def test_nothing_below_a_foot_label_joins_its_spine() -> None:
    # upper shelf: title + label; lower shelf: a book on the same x
    quads = [vquad(100, 50, 300), vquad(100, 320, 360), vquad(100, 420, 700)]
    groups = group_spines(quads, None, None, ["UPPER TITLE", "N Upp", "LOWER TITLE"])
    assert sorted(sorted(g) for g in groups) == [[0, 1], [2]]
    # without the label text the geometry alone joins them (the gap is small)
    assert len(group_spines(quads, None, None, None)) == 1


def test_image_edges_split_touching_columns() -> None:
    quads = [vquad(100, 50, 400, 40), vquad(142, 50, 400, 40)]  # touching columns of text
    plain = np.full((460, 260, 3), 200, np.uint8)
    assert len(group_spines(quads, None, plain, None)) == 1  # one wide spine: no edge between
    edged = plain.copy()
    edged[:, 121:] = 60  # a dark book starts between the two columns: a long vertical edge
    assert len(group_spines(quads, None, edged, None)) == 2
    assert len(group_spines(quads, None, None, None)) == 1  # no image: touching columns stay together
    apart = [vquad(100, 50, 400, 40), vquad(152, 50, 400, 40)]  # a 12 px space between the columns
    assert len(group_spines(apart, None, None, None)) == 2


# --- end to end on a rendered shelf -----------------------------------------------------------------

BOOKS = [("La sombra del viento", "Ruiz Zafón, Carlos", "N Rui"),
         ("Cien años de soledad", "García Márquez, Gabriel", "N Gar"),
         ("Manual de baloncesto", "Wissel, Hal", "796.323 Wis"),
         ("El jardín secreto", "Burnett, Frances Hodgson", "JN Bur"),
         ("Historia de Roma", "Montanelli, Indro", "937 Mon")]
UNKNOWN = ("Los pilares de la tierra", "FOLLETT")


def render_spines(items: list[tuple[str, str, str]]) -> np.ndarray:
    """Spines with the title and the author as two vertical lines and a horizontal label at the foot."""
    from benchlib.synth import render_vertical, render_word

    height, spines = 620, []
    colours = [(40, 60, 140), (235, 225, 200), (30, 100, 60), (200, 200, 210), (150, 40, 40), (230, 190, 60)]
    for i, (title, author, tag) in enumerate(items):
        bg = colours[i % len(colours)]
        fg = (245, 245, 240) if sum(bg) < 400 else (20, 20, 20)
        t = render_vertical(title, "down", size=30, fg=fg, bg=bg, pad=8)
        a = render_vertical(author, "down", size=22, fg=fg, bg=bg, pad=2)
        width = t.shape[1] + a.shape[1] + 16
        spine = np.empty((height, width, 3), np.uint8)
        spine[:] = bg[::-1]
        spine[20: 20 + t.shape[0], 8: 8 + t.shape[1]] = t[:, :, :]
        spine[26: 26 + a.shape[0], 8 + t.shape[1]: 8 + t.shape[1] + a.shape[1]] = a
        if tag:
            lab = render_word(tag, size=12, pad=4)
            lab = lab[:, : width - 8]
            y = height - lab.shape[0] - 12
            spine[y: y + lab.shape[0], 4: 4 + lab.shape[1]] = lab
        spines.append(spine)
    gap = 10
    img = np.full((height + 40, sum(s.shape[1] for s in spines) + gap * (len(spines) + 1), 3), (40, 70, 110),
                  np.uint8)
    x = gap
    for s in spines:
        img[20: 20 + height, x: x + s.shape[1]] = s
        x += s.shape[1] + gap
    return img


@pytest.fixture(scope="module")
def shelf_catalogue() -> Catalogue:
    rng = np.random.default_rng(3)
    words = ["vida", "mar", "noche", "tiempo", "guerra", "amor", "ciudad", "casa", "libro", "luz", "agua",
             "tierra", "viaje", "sueño"]
    recs = [{"title": t, "author": a, "tag": g} for t, a, g in BOOKS]
    for i in range(200):
        title = " ".join(rng.choice(words, size=int(rng.integers(2, 5)))).capitalize()
        recs.append({"title": title, "author": f"Autor{i}, Nombre", "tag": f"N Au{i % 10}"})
    return Catalogue.from_records(recs)


def test_end_to_end_on_a_rendered_shelf(shelf_catalogue: Catalogue, tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    from edgevl.books.shelf import ShelfMatcher, draw_spines

    items = [(t, a.split(",")[1].strip() + " " + a.split(",")[0], g) for t, a, g in BOOKS]
    items.insert(2, (UNKNOWN[0], UNKNOWN[1], ""))
    image = render_spines(items)
    from edgevl.tasks.ocr import OcrPipeline

    matcher = BookMatcher(build_index(shelf_catalogue))
    # the default OCR model finds every book; PP-OCRv6's boxes are wider than PP-OCRv4's, and the
    # spine grouping below (side-by-side lines split at an image edge) splits 3 of these rendered
    # spines into separate lines with them, so the grouping checks run on PP-OCRv4's lines
    default = ShelfMatcher(matcher)(image)
    assert {s.match.title for s in default.spines if s.match.matched} == {t for t, _, _ in BOOKS}
    result = ShelfMatcher(matcher, ocr=OcrPipeline(model="ppocrv4"))(image)
    found = {s.match.title for s in result.spines if s.match.matched}
    assert found == {t for t, _, _ in BOOKS}, [s.to_dict() for s in result.spines]
    # every matched spine's outline lies where its book was drawn: left-to-right order kept
    matched = [s for s in result.spines if s.match.matched]
    order = [s.match.title for s in sorted(matched, key=lambda s: np.mean([p[0] for p in s.polygon]))]
    assert order == [t for t, _, _ in BOOKS]
    assert len(result.spines) == len(items)  # title, author and label of each book on one spine
    drawn = draw_spines(image, result.spines, max_side=400)
    assert max(drawn.shape[:2]) == 400
    json.dumps(result.to_dict())  # serialisable


def test_match_books_cli_table_csv_json_and_drawing(shelf_catalogue: Catalogue, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("PIL")
    import edgevl.models.ppocr as ppocr

    # the spine counts below are PP-OCRv4's line geometry (see test_end_to_end_on_a_rendered_shelf)
    monkeypatch.setattr(ppocr, "DEFAULT_MODEL", "ppocrv4")
    import csv

    import cv2

    from edgevl.cli import main

    cat = tmp_path / "cat.csv"
    with cat.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["title", "author", "tag"])
        for b in shelf_catalogue.books:
            w.writerow([b.title, b.author, b.tag])
    photo = tmp_path / "shelf.png"
    items = [(t, a.split(",")[1].strip() + " " + a.split(",")[0], g) for t, a, g in BOOKS[:3]]
    cv2.imwrite(str(photo), render_spines(items))
    out_csv, drawing = tmp_path / "spines.csv", tmp_path / "drawn.jpg"
    args = ["match-books", str(photo), "-c", str(cat), "--cache-dir", str(tmp_path / "cache")]
    assert main([*args, "--csv", str(out_csv), "--draw", str(drawing), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res) == 1 and res[0]["spines_found"] == 3 and res[0]["spines_matched"] == 3
    assert [s["title"] for s in res[0]["spines"]] == [t for t, _, _ in BOOKS[:3]]
    rows = list(csv.DictReader(out_csv.open(encoding="utf-8")))
    assert [r["title"] for r in rows] == [t for t, _, _ in BOOKS[:3]]
    img = cv2.imread(str(drawing))
    src = cv2.imread(str(photo))
    # the photo as it was (small enough: not downscaled), with the legend panel below it
    assert img is not None and img.shape[1] == src.shape[1] and img.shape[0] > src.shape[0]
    assert np.abs(img[: src.shape[0] // 8].astype(int) - src[: src.shape[0] // 8]).mean() < 40
    # the table form
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "3 spines, 3 matched" in " ".join(table.split())
    # read at edgevl ocr's detector size instead of full resolution: the same three spines here
    assert main([*args, "--limit-side", "1792", "--json"]) == 0
    fast = json.loads(capsys.readouterr().out)[0]["spines"]
    assert [s["title"] for s in fast] == [t for t, _, _ in BOOKS[:3]]
    # a missing photo is a one-line error
    assert main(["match-books", str(tmp_path / "nope.jpg"), "-c", str(cat),
                 "--cache-dir", str(tmp_path / "cache")]) == 2
    assert "nope.jpg" in capsys.readouterr().err
