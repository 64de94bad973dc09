"""The STR word-crop generator (benchmarks/strgen.py): deterministic, distortions as named, labels drawn."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import strgen


@pytest.fixture(scope="module")
def fonts() -> list[Path]:
    try:
        return strgen.find_fonts()
    except FileNotFoundError as exc:  # a machine without any TrueType font (Debian: fonts-dejavu-core)
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def crops(fonts: list[Path]) -> list[strgen.WordCrop]:
    return strgen.generate(6, seed=11, fonts=fonts)


def _by(crops: list[strgen.WordCrop], kind: str) -> list[strgen.WordCrop]:
    out = [c for c in crops if c.distortion == kind]
    assert out, kind
    return out


def _rerender(c: strgen.WordCrop) -> np.ndarray:
    p = c.params
    return strgen.render_word(c.label, p["font_path"], p["size"], p["fg"], p["bg"], p["margin"])


def test_same_seed_same_crops(crops: list[strgen.WordCrop], fonts: list[Path]) -> None:
    again = strgen.generate(6, seed=11, fonts=fonts)
    assert [c.label for c in again] == [c.label for c in crops]
    for a, b in zip(again, crops, strict=True):
        assert a.distortion == b.distortion and a.font == b.font
        assert a.image.shape == b.image.shape and np.array_equal(a.image, b.image)


def test_other_seed_other_crops(crops: list[strgen.WordCrop], fonts: list[Path]) -> None:
    other = strgen.generate(6, seed=12, fonts=fonts)
    assert [c.label for c in other] != [c.label for c in crops]


def test_crop_independent_of_how_many_are_asked(crops: list[strgen.WordCrop], fonts: list[Path]) -> None:
    one = strgen.make_crop(11, "blur", 4, fonts)
    ref = _by(crops, "blur")[4]
    assert one.label == ref.label and np.array_equal(one.image, ref.image)
    subset = strgen.generate(6, seed=11, distortions=["noise"], fonts=fonts)
    assert [c.label for c in subset] == [c.label for c in _by(crops, "noise")]


def test_every_distortion_present_and_images_valid(crops: list[strgen.WordCrop]) -> None:
    assert {c.distortion for c in crops} == set(strgen.DISTORTIONS)
    for c in crops:
        assert c.image.dtype == np.uint8 and c.image.ndim == 3 and c.image.shape[2] == 3
        assert 1 <= len(c.label) <= strgen.MAX_LEN
        assert c.label.isascii() and c.label.isalnum()


def test_clean_crop_is_the_rendered_label(crops: list[strgen.WordCrop]) -> None:
    for c in _by(crops, "clean"):
        assert np.array_equal(c.image, _rerender(c))


def test_vertical_crops_are_tall_and_rotated_the_stated_way(crops: list[strgen.WordCrop]) -> None:
    for c in _by(crops, "vertical_down"):
        h, w = c.image.shape[:2]
        assert h >= strgen.VERTICAL_MIN_ASPECT * w
        # reading top to bottom: turning it back counter-clockwise gives the horizontal word
        assert np.array_equal(cv2.rotate(c.image, cv2.ROTATE_90_COUNTERCLOCKWISE), _rerender(c))
    for c in _by(crops, "vertical_up"):
        h, w = c.image.shape[:2]
        assert h >= strgen.VERTICAL_MIN_ASPECT * w
        assert np.array_equal(cv2.rotate(c.image, cv2.ROTATE_90_CLOCKWISE), _rerender(c))


def test_rotated_crops_are_tilted_by_a_small_angle(crops: list[strgen.WordCrop]) -> None:
    for c in _by(crops, "rotate"):
        assert 3.0 <= abs(c.params["angle"]) <= 12.0
        flat = _rerender(c)
        # the axis-aligned box of a tilted word is taller than the word, and its corners are background
        assert c.image.shape[0] > flat.shape[0]
        bg = np.array(c.params["bg"][::-1])
        assert np.abs(c.image[0, 0].astype(int) - bg).max() <= 2


def test_lowres_crops_are_small(crops: list[strgen.WordCrop]) -> None:
    for c in _by(crops, "lowres"):
        flat = _rerender(c)
        assert c.image.shape[0] <= 13 and c.image.shape[0] < flat.shape[0] / 2
        # aspect ratio kept: it is a downscale, not a crop
        assert abs(c.image.shape[1] / c.image.shape[0] - flat.shape[1] / flat.shape[0]) < 0.5


def test_blur_and_noise_change_the_pixels_the_right_way(crops: list[strgen.WordCrop]) -> None:
    def sharpness(img: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())

    for c in _by(crops, "blur"):
        flat = _rerender(c)
        assert c.image.shape == flat.shape and sharpness(c.image) < 0.5 * sharpness(flat)
    for c in _by(crops, "noise"):
        flat = _rerender(c)
        diff = c.image.astype(float) - flat.astype(float)
        assert c.image.shape == flat.shape and 10.0 < diff.std() < 40.0


def test_perspective_moves_the_corners(crops: list[strgen.WordCrop]) -> None:
    for c in _by(crops, "perspective"):
        corners = np.array(c.params["corners"])
        flat = _rerender(c)
        h, w = flat.shape[:2]
        rect = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
        assert corners.shape == (4, 2) and not np.allclose(corners - corners[0], rect - rect[0], atol=1.0)


def test_unknown_distortion_is_refused(fonts: list[Path]) -> None:
    with pytest.raises(ValueError, match="unknown distortion"):
        strgen.make_crop(0, "sepia", 0, fonts)


def test_fonts_fall_back_to_any_installed(tmp_path: Path, fonts: list[Path]) -> None:
    found = strgen.find_fonts([tmp_path / "nothing-here"])
    assert found and all(f.suffix == ".ttf" and f.is_file() for f in found)


def test_no_fonts_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no font"):
        strgen.generate(1, fonts=[])


def test_labels_match_what_a_recogniser_reads(fonts: list[Path]) -> None:
    """The label is what is drawn: an independent recogniser (RapidOCR's, from the wheel the project
    depends on) reads most clean crops exactly, and almost none against shuffled labels."""
    rec_mod = pytest.importorskip("rapidocr_onnxruntime")
    engine = rec_mod.RapidOCR()
    # large, plain fonts only so the check is about labels, not about a recogniser's weak spots
    plain_names = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "LiberationSans-Regular.ttf")
    plain = [f for f in fonts if f.name in plain_names]
    crops = strgen.generate(24, seed=5, distortions=["clean"], fonts=plain or fonts[:1])
    readings, _ = engine.text_rec([c.image for c in crops])
    got = ["".join(ch for ch in text.lower() if ch.isalnum()) for text, _ in readings]
    want = [c.label.lower() for c in crops]
    right = sum(g == w for g, w in zip(got, want, strict=True))
    shuffled = sum(g == w for g, w in zip(got, want[1:] + want[:1], strict=True))
    assert right >= 0.8 * len(crops), list(zip(got, want, strict=True))
    assert shuffled <= 2
