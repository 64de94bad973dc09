"""Corner ordering, perspective crops and size helpers (pure functions, no model)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgevl.errors import InputError
from edgevl.tasks.ocr import reading_order
from edgevl.vision.geometry import crop_quad, fit_stride, normalize_chw, order_quad, quad_size, tiles


def _rect(cx: float, cy: float, w: float, h: float, deg: float) -> np.ndarray:
    """Corners TL, TR, BR, BL of a w×h rectangle rotated by ``deg`` (clockwise on screen)."""
    t = np.deg2rad(deg)
    u = np.array([np.cos(t), np.sin(t)]) * w / 2
    v = np.array([-np.sin(t), np.cos(t)]) * h / 2
    c = np.array([cx, cy])
    return np.array([c - u - v, c + u - v, c + u + v, c - u + v], dtype=np.float32)


def _crossed(q: np.ndarray) -> bool:
    """True when edges TL-TR and BR-BL intersect (a bow-tie quad)."""
    def ccw(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
        return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))
    a, b, c, d = q
    return ccw(a, b, c) * ccw(a, b, d) < 0 and ccw(c, d, a) * ccw(c, d, b) < 0


@pytest.mark.parametrize("deg", [-40, -25, -10, 0, 5, 15, 30, 44])
def test_tilted_box_corners_come_back_in_order(deg: float) -> None:
    want = _rect(200, 120, 180, 40, deg)
    rng = np.random.default_rng(int(deg) + 100)
    for _ in range(5):
        got = order_quad(want[rng.permutation(4)])
        np.testing.assert_allclose(got, want, atol=1e-3)


def test_sorting_by_x_crosses_a_tilted_box_but_order_quad_does_not() -> None:
    # the failure mode of RapidOCR issue #708: ordering corners by x then by y
    q = _rect(100, 100, 120, 30, 35)
    by_x = q[np.lexsort((q[:, 1], q[:, 0]))]
    naive = np.array([by_x[0], by_x[2], by_x[3], by_x[1]])  # left pair → TL/BL, right pair → TR/BR
    assert _crossed(naive) or not np.allclose(naive, q)
    assert not _crossed(order_quad(q))
    np.testing.assert_allclose(order_quad(q), q, atol=1e-3)


def test_steep_box_reads_its_left_side_as_top() -> None:
    # a tall spine box tilted by 10°: width 30, height 200 → its top edge stays the short one
    q = _rect(50, 150, 30, 200, 10)
    got = order_quad(q[::-1])
    np.testing.assert_allclose(got, q, atol=1e-3)
    w, h = quad_size(got)
    assert (w, h) == (30, 200)


@settings(max_examples=200, deadline=None)
@given(st.floats(-44.9, 44.9), st.floats(5, 300), st.floats(5, 300), st.permutations(range(4)))
def test_order_quad_never_crosses_and_is_clockwise(deg: float, w: float, h: float, perm: list[int]) -> None:
    q = _rect(400, 400, w, h, deg)
    got = order_quad(q[list(perm)])
    assert not _crossed(got)
    x, y = got[:, 0].astype(np.float64), got[:, 1].astype(np.float64)
    area2 = float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    assert area2 > 0  # clockwise on screen (y down) is a positive shoelace sum
    np.testing.assert_allclose(got, q, atol=1e-2)


def test_order_quad_rejects_bad_input() -> None:
    with pytest.raises(InputError):
        order_quad(np.zeros((3, 2)))
    with pytest.raises(InputError):
        order_quad(np.array([[0, 0], [1, 0], [1, np.nan], [0, 1]]))


def test_crop_quad_straightens_a_rotated_stripe() -> None:
    img = np.full((300, 300, 3), 255, np.uint8)
    q = _rect(150, 150, 160, 40, 25)
    cv2.fillPoly(img, [np.round(q).astype(np.int32)], (0, 0, 0))
    # a white mark at the top-left end inside the stripe tells which way round the crop is
    mark = _rect(*((q[0] + q[3]) / 2 + (q[1] - q[0]) * 0.12), 10, 10, 25)
    cv2.fillPoly(img, [np.round(mark).astype(np.int32)], (255, 255, 255))
    crop = crop_quad(img, q)
    assert crop.shape[:2] == (40, 160)
    assert crop[5:35, 40:150].mean() < 30  # the stripe is dark all along
    assert crop[10:30, 5:32].max() > 200  # the mark sits at the left end, not the right
    assert crop[10:30, -32:-5].max() < 60


def test_fit_stride_and_tiles() -> None:
    nh, nw, s = fit_stride(3468, 4624, 1600)
    assert nw == 1600 and nh % 32 == 0 and abs(nh - 3468 * s) <= 16
    assert fit_stride(100, 50, 1600)[:2] == (96, 64)  # never upscaled beyond rounding to 32
    ts = tiles(1200, 2000, 1024, 128)
    cover = np.zeros((1200, 2000), bool)
    for y0, x0, y1, x1 in ts:
        assert y1 - y0 <= 1024 and x1 - x0 <= 1024
        cover[y0:y1, x0:x1] = True
    assert cover.all()
    with pytest.raises(InputError):
        tiles(10, 10, 64, 64)


def test_reading_order_rows_then_columns() -> None:
    boxes = [(300, 10, 80, 20), (10, 12, 80, 24), (10, 100, 50, 20), (150, 8, 60, 30)]
    quads = np.stack([_rect(x + w / 2, y + h / 2, w, h, 0) for x, y, w, h in boxes])
    assert reading_order(quads) == [1, 3, 0, 2]


def test_normalize_chw_is_per_channel_scale_mean_std_in_chw_order() -> None:
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    out = normalize_chw(img, mean, std)
    assert out.shape == (3, 5, 7) and out.dtype == np.float32 and out.flags.c_contiguous
    for c in range(3):
        want = (img[:, :, c].astype(np.float64) / 255 - mean[c]) / std[c]
        np.testing.assert_allclose(out[c], want, rtol=1e-5, atol=1e-5)
    # PP-OCR's mean/std 0.5: 0 -> -1, 255 -> 1, and a scalar mean/std applies to every channel
    flat = normalize_chw(np.array([[[0, 255, 51]]], np.uint8), 0.5, 0.5)
    np.testing.assert_allclose(flat.ravel(), [-1.0, 1.0, 51 / 127.5 - 1], atol=1e-6)
