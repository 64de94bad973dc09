"""DB (Differentiable Binarization) post-processing: probability map → text quads.

probability map → threshold (+ optional 2×2 dilation) → contours → minimum-area rectangles →
box score (mean probability inside the box) → unclip (polygon offset with pyclipper) → quads
mapped back to the original image's pixels. Pure numpy/OpenCV; no model needed to test it.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pyclipper

from edgevl.errors import InputError
from edgevl.tasks.ocr.sections import DetectorConfig
from edgevl.vision.geometry import order_quad

Floats = npt.NDArray[np.float32]


#: Thresholds of the DB post-processing: the detector bundle's typed ``config`` section itself, so the
#: defaults live in one place (edgevl.tasks.ocr.sections imports nothing heavy).
DBParams = DetectorConfig


def _min_rect(points: npt.ArrayLike) -> tuple[Floats, float]:
    """Corners (4, 2) of the minimum-area rectangle around ``points`` and its shorter side."""
    rect = cv2.minAreaRect(np.asarray(points, dtype=np.float32).reshape(-1, 1, 2))
    box = cv2.boxPoints(rect).astype(np.float32)
    return box, float(min(rect[1]))


def box_score(prob: Floats, box: Floats) -> float:
    """Mean probability inside the polygon ``box`` (in probability-map pixels)."""
    h, w = prob.shape
    xs, ys = box[:, 0], box[:, 1]
    x0 = int(np.clip(np.floor(xs.min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(xs.max()), 0, w - 1))
    y0 = int(np.clip(np.floor(ys.min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(ys.max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    pts = np.round(box - np.array([x0, y0], dtype=np.float32)).astype(np.int32)
    cv2.fillPoly(mask, [pts.reshape(-1, 1, 2)], 1)
    if not mask.any():
        return 0.0
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def unclip(box: Floats, ratio: float) -> Floats | None:
    """Grow a polygon by ``area * ratio / perimeter`` (DB's unclip) with pyclipper; None if empty."""
    pts = box.astype(np.float64)
    x, y = pts[:, 0], pts[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
    perim = float(np.hypot(*(np.roll(pts, -1, axis=0) - pts).T).sum())
    if perim <= 0 or area <= 0:
        return None
    dist = area * ratio / perim
    off = pyclipper.PyclipperOffset()
    off.AddPath([tuple(p) for p in np.round(pts * 16).astype(np.int64).tolist()],
                pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    out = off.Execute(dist * 16)  # fixed point ×16: sub-pixel accuracy on small maps
    if len(out) != 1:
        return None
    return np.asarray(out[0], dtype=np.float32) / 16.0


def db_boxes(
    prob: npt.ArrayLike,
    params: DBParams | None = None,
    *,
    scale: tuple[float, float] = (1.0, 1.0),
    offset: tuple[float, float] = (0.0, 0.0),
    clip_to: tuple[int, int] | None = None,
) -> tuple[Floats, Floats]:
    """Text quads from a DB probability map.

    ``prob``: HxW probabilities in [0, 1]. A point (x, y) of the map lands at
    ``(x * scale[0] + offset[0], y * scale[1] + offset[1])`` in the original image, then is
    clipped to ``clip_to`` = (height, width) when given. Returns ``(quads, scores)``: quads
    (N, 4, 2) float32 ordered TL, TR, BR, BL; scores (N,) float32.
    """
    p = params or DBParams()
    pm = np.asarray(prob, dtype=np.float32)
    if pm.ndim == 4 and pm.shape[:2] == (1, 1):
        pm = pm[0, 0]
    if pm.ndim != 2 or pm.size == 0:
        raise InputError(f"DB expects an HxW probability map, got shape {pm.shape}")
    if not np.isfinite(pm).all():  # NaN is never > thresh, but would pass as a NaN box score
        raise InputError("DB probability map holds NaN or infinity (the detector's output is broken)")
    bitmap = (pm > p.thresh).astype(np.uint8)
    if p.dilate:
        bitmap = np.asarray(cv2.dilate(bitmap, np.ones((2, 2), np.uint8)), dtype=np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    quads: list[Floats] = []
    scores: list[float] = []
    sx, sy = scale
    ox, oy = offset
    for contour in contours[: p.max_candidates]:
        box, side = _min_rect(contour)
        if side < p.min_size:
            continue
        score = box_score(pm, box)
        if score < p.box_thresh:
            continue
        grown = unclip(box, p.unclip_ratio)
        if grown is None:
            continue
        box2, side2 = _min_rect(grown)
        if side2 < p.min_size + 2:
            continue
        q = box2 * np.array([sx, sy], dtype=np.float32) + np.array([ox, oy], dtype=np.float32)
        if clip_to is not None:
            q[:, 0] = np.clip(q[:, 0], 0, clip_to[1] - 1)
            q[:, 1] = np.clip(q[:, 1], 0, clip_to[0] - 1)
        quads.append(order_quad(q))
        scores.append(score)
    if not quads:
        return np.zeros((0, 4, 2), np.float32), np.zeros((0,), np.float32)
    return np.stack(quads).astype(np.float32), np.asarray(scores, dtype=np.float32)
