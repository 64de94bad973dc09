"""Issue 24, pictures a person can read: bounded size, accents that render, labels that never overlap,
a legend for what does not fit and for every spine's match."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("PIL")

from edgevl.vision.draw import (
    DEFAULT_MAX_SIDE,
    Rect,
    draw_lines,
    draw_spines,
    encode_picture,
    label_font,
    layout_labels,
    noto_sans_path,
    spine_legend,
    write_picture,
)

ACCENTED = "À la recherche du temps perdu — ñandú, über, Łódź, Ελληνικά, Жизнь"


@dataclass(frozen=True)
class Line:
    quad: list[list[float]]
    text: str


@dataclass(frozen=True)
class Match:
    matched: bool
    title: str
    author: str
    score: float


@dataclass(frozen=True)
class Spine:
    index: int
    polygon: tuple[tuple[float, float], ...]
    text: str
    match: Match


def _glyph(ch: str, px: int = 32) -> np.ndarray:
    font = label_font(px)
    mask = font.getmask(ch)
    return np.asarray(mask, dtype=np.uint8).reshape(mask.size[1], mask.size[0])


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photo-like picture (smooth colour fields + sensor noise): what compresses like a photo."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (h // 64 + 2, w // 64 + 2, 3)).astype(np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    img += rng.normal(0, 10, (h, w, 3)).astype(np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_the_font_comes_from_a_wheel_and_draws_accents() -> None:
    path = noto_sans_path()
    assert path is not None and ("site-packages" in path or "dist-packages" in path), path
    q = _glyph("?")
    for ch in "ÀñüŁЖ":
        g = _glyph(ch)
        assert g.shape != q.shape or not np.array_equal(g, q), ch  # not the '?' glyph
    # an accent is drawn: 'À' has ink above the top of 'A'
    a, a_grave = _glyph("A"), _glyph("À")
    assert a_grave.shape[0] > a.shape[0]
    # and two different accented letters are two different glyphs (no shared "missing" box)
    assert not np.array_equal(_glyph("ñ"), _glyph("ü"))


def test_ocr_drawing_of_a_phone_photo_is_bounded_and_readable(tmp_path: Path) -> None:
    img = _photo(3468, 4624)
    rng = np.random.default_rng(1)
    lines = []
    for i in range(40):
        x, y = float(rng.integers(0, 3600)), float(rng.integers(0, 3300))
        lines.append(Line([[x, y], [x + 900, y], [x + 900, y + 120], [x, y + 120]], f"{i} {ACCENTED}"))
    out = draw_lines(img, lines)
    assert max(out.shape[:2]) <= DEFAULT_MAX_SIDE
    for ext in (".jpg", ".png"):
        path = tmp_path / f"drawn{ext}"
        write_picture(out, path)
        assert path.stat().st_size <= 5_000_000, (ext, path.stat().st_size)
        back = cv2.imread(str(path))
        assert back is not None and back.shape == out.shape
    # JPEG when the name says so, PNG when it says PNG
    assert encode_picture(out, ".jpg")[:2] == b"\xff\xd8"
    assert encode_picture(out, ".png")[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_drawing_never_overwrites_its_input(tmp_path: Path) -> None:
    from edgevl.errors import InputError

    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), _photo(200, 300))
    before = photo.read_bytes()
    with pytest.raises(InputError, match="also an input"):
        write_picture(_photo(200, 300, 1), photo, inputs=[photo])
    assert photo.read_bytes() == before


@pytest.mark.parametrize("seed", range(8))
def test_labels_never_overlap(seed: int) -> None:
    rng = np.random.default_rng(seed)
    W, H = 800, 600
    boxes, sizes = [], []
    for _ in range(int(rng.integers(1, 80))):
        x, y = int(rng.integers(-50, W)), int(rng.integers(-50, H))
        boxes.append(Rect(x, y, x + int(rng.integers(5, 300)), y + int(rng.integers(5, 60))))
        sizes.append((int(rng.integers(10, 400)), int(rng.integers(10, 30))))
    places = layout_labels(boxes, sizes, (W, H))
    rects = [p.rect for p in places if p.rect is not None]
    for i, a in enumerate(rects):
        assert a.inside(W, H)
        for b in rects[i + 1:]:
            assert not a.overlaps(b), (a, b)
    numbers = [p.number for p in places if p.rect is None]
    assert numbers == list(range(1, len(numbers) + 1))  # the rest are numbered for the legend
    for p, s in zip(places, sizes, strict=True):
        if p.rect is not None:
            assert (p.rect.x1 - p.rect.x0, p.rect.y1 - p.rect.y0) == s


def test_crowded_lines_go_to_a_legend() -> None:
    img = _photo(400, 600)
    # 30 lines stacked on the same spot: most labels cannot be placed, the legend lists them
    lines = [Line([[100, 150], [500, 150], [500, 190], [100, 190]], f"ligne {i} Ñ") for i in range(30)]
    out = draw_lines(img, lines, max_side=0)
    assert out.shape[1] == 600 and out.shape[0] > 400  # the legend panel below the photo
    panel = out[400:]
    assert (panel > 200).mean() > 0.5  # a light panel with dark text
    assert (panel < 80).any()


def test_spine_drawing_has_a_legend_of_every_match() -> None:
    img = _photo(900, 700)
    spines = [
        Spine(0, ((50.0, 50.0), (120.0, 50.0), (120.0, 850.0), (50.0, 850.0)), "RECHERCHE PROUST",
              Match(True, "À la recherche du temps perdu", "Proust, Marcel", 0.93)),
        Spine(1, ((200.0, 50.0), (260.0, 50.0), (260.0, 850.0), (200.0, 850.0)), "XYZ",
              Match(False, "", "", 0.12)),
    ]
    out = draw_spines(img, spines, max_side=800)
    assert max(out.shape[:2]) == 800
    assert spine_legend(spines[0].match, spines[0].text) == \
        "À la recherche du temps perdu — Proust, Marcel  (p 0.93)"
    assert spine_legend(spines[1].match, spines[1].text) == "rejected: “XYZ”; best candidate p 0.12"
    # the outlines: green around the matched spine, red around the rejected one (BGR)
    full = draw_spines(img, spines, max_side=0)
    assert full.shape[1] == 700 and full.shape[0] > 900
    left = full[400:500, 48:53].reshape(-1, 3).astype(int)
    right = full[400:500, 198:203].reshape(-1, 3).astype(int)
    assert ((left[:, 1] > 140) & (left[:, 2] < 90)).any()  # green
    assert ((right[:, 2] > 170) & (right[:, 1] < 90)).any()  # red


def test_extension_decides_the_format() -> None:
    from edgevl.errors import ImageError

    with pytest.raises(ImageError, match=r"\.png, \.jpg"):
        encode_picture(_photo(10, 10), ".gif")


def test_ocr_draw_of_a_16_megapixel_photo_is_at_most_5_mb(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's target: `ocr --draw` on a 4624x3468 photo writes <= 5 MB (was 17 MB), 1600 px."""
    from edgevl.cli import main

    img = _photo(3468, 4624)
    shelf = cv2.imread(str(Path(__file__).resolve().parents[1] / "examples" / "shelf.png"))
    img[200:2650, 300:2700] = cv2.resize(shelf, (2400, 2450))
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    out = tmp_path / "drawn.png"
    assert main(["ocr", str(photo), "--draw", str(out)]) == 0
    assert "Hamlet" in capsys.readouterr().out
    assert out.stat().st_size <= 5_000_000
    drawn = cv2.imread(str(out))
    assert drawn is not None and max(drawn.shape[:2]) == DEFAULT_MAX_SIDE


@dataclass(frozen=True)
class Row:
    y0: float
    y1: float


@dataclass(frozen=True)
class Sign:
    polygon: tuple[tuple[float, float], ...]
    text: str


def test_spine_drawing_shows_rows_and_signs_in_blue_with_a_legend_line() -> None:
    img = np.full((600, 500, 3), 128, np.uint8)  # flat grey: any blue pixel was drawn
    spine = Spine(0, ((50.0, 40.0), (110.0, 40.0), (110.0, 400.0), (50.0, 400.0)), "ROMA",
                  Match(True, "Roma", "Beard, Mary", 0.9))
    sign = Sign(((150.0, 450.0), (480.0, 450.0), (480.0, 490.0), (150.0, 490.0)), "796.4 GIMNÀSTICA")
    plain = draw_spines(img, [spine], max_side=0)
    full = draw_spines(img, [spine], max_side=0, rows=[Row(30.0, 420.0)], signs=[sign])
    assert full.shape[0] > plain.shape[0]  # one more legend line: the sign

    def blue(px: np.ndarray) -> np.ndarray:
        px = px.reshape(-1, 3).astype(int)  # BGR
        return (px[:, 0] > 170) & (px[:, 2] < 80)

    assert not blue(plain[:600]).any()
    assert blue(full[448:453, 200:400]).any()  # the sign's outline
    assert blue(full[29:32, 300:490]).any() and blue(full[419:422, 300:490]).any()  # the row's edges
