"""DB post-processing on hand-made probability maps (no model)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgevl.errors import InputError
from edgevl.vision.db import DBParams, box_score, db_boxes, unclip


def _map(h: int = 100, w: int = 200) -> np.ndarray:
    return np.zeros((h, w), np.float32)


def test_two_text_regions_become_two_boxes_grown_by_unclip() -> None:
    prob = _map()
    prob[20:30, 10:90] = 0.9  # 80×10 word
    prob[60:70, 120:180] = 0.8
    quads, scores = db_boxes(prob, DBParams(unclip_ratio=1.5))
    assert len(quads) == 2
    order = np.argsort(quads[:, 0, 0])
    q0, q1 = quads[order]
    # DB shrinks text regions at training time; unclip grows them back by area*ratio/perimeter
    d = 81 * 11 * 1.5 / (2 * (81 + 11))
    assert q0[0, 0] == pytest.approx(10 - d, abs=1.5) and q0[2, 0] == pytest.approx(90 + d, abs=1.5)
    assert q0[0, 1] == pytest.approx(20 - d, abs=1.5) and q0[2, 1] == pytest.approx(30 + d, abs=1.5)
    # the score is the mean inside the box drawn around the (2×2-dilated) region: 81×11 for 80×10
    assert scores[order][0] == pytest.approx(0.9 * 80 * 10 / (81 * 11), abs=0.03)
    assert scores[order][1] == pytest.approx(0.8 * 60 * 10 / (61 * 11), abs=0.03)
    assert q1[0, 0] > 100


def test_box_threshold_min_size_and_threshold() -> None:
    prob = _map()
    prob[20:30, 10:90] = 0.45  # above thresh 0.3, but mean below box_thresh 0.6
    prob[60:62, 120:180] = 0.9  # 2 px tall: shorter side below min_size
    quads, _ = db_boxes(prob, DBParams(box_thresh=0.6, min_size=3))
    assert len(quads) == 0
    quads, _ = db_boxes(prob, DBParams(box_thresh=0.4, min_size=3))
    assert len(quads) == 1 and quads[0, :, 0].max() < 100
    prob2 = _map()
    prob2[20:30, 10:90] = 0.25  # below the binarisation threshold
    assert len(db_boxes(prob2, DBParams(thresh=0.3))[0]) == 0


def test_rotated_region_gives_ordered_tilted_quad_scaled_to_image() -> None:
    prob = _map(200, 200)
    rect = ((100, 100), (120, 16), 30)  # centre, (w, h), angle in degrees
    pts = np.round(cv2.boxPoints(rect)).astype(np.int32)
    cv2.fillPoly(prob, [pts], 1.0)
    quads, _ = db_boxes(prob, scale=(2.0, 2.0), offset=(5.0, 7.0))
    assert len(quads) == 1
    q = quads[0]
    top = q[1] - q[0]
    assert np.degrees(np.arctan2(top[1], top[0])) == pytest.approx(30, abs=3)
    centre = q.mean(axis=0)
    np.testing.assert_allclose(centre, [100 * 2 + 5, 100 * 2 + 7], atol=3)
    assert np.hypot(*top) > 2 * 120  # scaled ×2 and grown by unclip


def test_clip_to_image_bounds_and_empty_map() -> None:
    prob = _map()
    prob[0:10, 0:50] = 1.0
    quads, _ = db_boxes(prob, clip_to=(100, 200))
    assert len(quads) == 1 and quads.min() >= 0
    q, s = db_boxes(_map())
    assert q.shape == (0, 4, 2) and s.shape == (0,)


def test_helpers_and_errors() -> None:
    prob = _map()
    prob[10:20, 10:20] = 0.5
    box = np.array([[10, 10], [19, 10], [19, 19], [10, 19]], np.float32)
    assert box_score(prob, box) == pytest.approx(0.5)
    grown = unclip(box, 2.0)
    assert grown is not None and grown[:, 0].min() < 10 and grown[:, 0].max() > 19
    assert unclip(np.zeros((4, 2), np.float32), 2.0) is None
    with pytest.raises(InputError):
        db_boxes(np.zeros((2, 3, 4), np.float32))
    assert len(db_boxes(np.zeros((1, 1, 10, 10), np.float32))[0]) == 0  # NCHW map accepted
