"""Quadrilateral geometry for text boxes: corner ordering, perspective crops, resize and pad helpers.

All functions are pure (numpy/OpenCV in, numpy out). A *quad* is a float32 array of shape (4, 2)
holding (x, y) corners in image pixels, ordered top-left, top-right, bottom-right, bottom-left.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from edgevl.errors import InputError

Quad = npt.NDArray[np.float32]
Image = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float32]


MAX_COORD = 1e9  # pixels: far beyond any image, well inside float32
MAX_CROP_SIDE = 32_767  # OpenCV's warp limit (SHRT_MAX); no text line is longer


def _as_quad(points: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(4, 2) float64 corners; InputError for another size, a non-numeric or a non-finite value."""
    try:
        a = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InputError(f"a quad needs 4 (x, y) numeric corners ({e})") from None
    if a.size != 8:
        raise InputError(f"a quad needs 4 (x, y) corners, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise InputError("quad corners must be finite numbers")
    if np.abs(a).max() > MAX_COORD:
        raise InputError(f"quad corners must lie within ±{MAX_COORD:g} pixels")
    return a.reshape(4, 2)


def order_quad(points: npt.ArrayLike) -> Quad:
    """Order four corners as top-left, top-right, bottom-right, bottom-left.

    The corners are first put in clockwise order around their centroid (image coordinates, y
    down), which can never produce a crossed ("bow-tie") quad, whatever the tilt. The start is
    then the corner whose outgoing edge points most to the right: that edge is the top edge. A
    box tilted by θ keeps its top edge for |θ| < 45°; past 45° the box is read as a box whose top
    is its former left side (ties at exactly 45° go to the upper-left corner). Sorting corners by
    x then y, as many OCR tools do, crosses the quad for boxes tilted by more than a few degrees.
    """
    p = _as_quad(points)
    c = p.mean(axis=0)
    ang = np.arctan2(p[:, 1] - c[1], p[:, 0] - c[0])
    p = p[np.argsort(ang, kind="stable")]  # clockwise on screen (y points down)
    edges = np.roll(p, -1, axis=0) - p
    lens = np.hypot(edges[:, 0], edges[:, 1])
    dx = np.where(lens > 0, edges[:, 0] / np.maximum(lens, 1e-12), -np.inf)
    best = float(dx.max())
    cand = np.flatnonzero(dx >= best - 1e-6)
    # tie (square at 45°, or degenerate): take the candidate nearest the image's top-left
    start = int(cand[np.argmin(p[cand, 0] + p[cand, 1])]) if len(cand) > 1 else int(cand[0])
    return np.roll(p, -start, axis=0).astype(np.float32)


def quad_size(quad: npt.ArrayLike) -> tuple[int, int]:
    """(width, height) in pixels of an ordered quad: its longer top/bottom and left/right edges."""
    q = _as_quad(quad)
    w = max(np.hypot(*(q[1] - q[0])), np.hypot(*(q[2] - q[3])))
    h = max(np.hypot(*(q[3] - q[0])), np.hypot(*(q[2] - q[1])))
    if not (math.isfinite(w) and math.isfinite(h)):  # finite corners whose distance overflows
        raise InputError("quad is too large (its sides overflow)")
    return max(1, round(w)), max(1, round(h))


def crop_quad(image: Image, quad: npt.ArrayLike, *, interpolation: int = cv2.INTER_LINEAR) -> Image:
    """Perspective-crop an ordered quad from ``image`` into an upright (h, w) patch.

    The top edge of the quad becomes the top row of the patch; borders are replicated.
    """
    w, h = quad_size(quad)
    if max(w, h) > MAX_CROP_SIDE:
        raise InputError(f"quad of {float(w):.4g}x{float(h):.4g} pixels is over the "
                         f"{MAX_CROP_SIDE}-pixel crop limit")
    q = _as_quad(quad).astype(np.float32)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(q, dst)
    out = cv2.warpPerspective(image, m, (w, h), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(out, dtype=np.uint8)


def rotate90(image: Image, clockwise: bool) -> Image:
    """Rotate by 90° (clockwise or counter-clockwise): used to lay vertical text flat."""
    code = cv2.ROTATE_90_CLOCKWISE if clockwise else cv2.ROTATE_90_COUNTERCLOCKWISE
    return np.ascontiguousarray(cv2.rotate(image, code))


def rotate180(image: Image) -> Image:
    return np.ascontiguousarray(image[::-1, ::-1])


def fit_stride(h: int, w: int, limit: int, stride: int = 32) -> tuple[int, int, float]:
    """Size for a detector input: longest side ≤ ``limit`` (never upscaled), each side a multiple
    of ``stride``. Returns (new_h, new_w, scale) where ``scale`` = new / original (per the long side).
    """
    if h < 1 or w < 1:
        raise InputError(f"image size must be positive, got {w}x{h}")
    if stride < 1 or limit < 1:
        raise InputError(f"limit ({limit}) and stride ({stride}) must be positive")
    scale = min(1.0, limit / max(h, w))
    nh = max(stride, round(h * scale / stride) * stride)
    nw = max(stride, round(w * scale / stride) * stride)
    return nh, nw, scale


#: the most a small photo is enlarged for the detector (``min_side``): a word crop is not blown up 20x
MAX_UPSCALE = 4.0


def fit_detector(h: int, w: int, limit: int, min_side: int = 0, stride: int = 32) -> tuple[int, int, float]:
    """:func:`fit_stride` plus the small-image rule: when the short side is below ``min_side`` the
    image is enlarged until it reaches it, as long as the long side stays ≤ ``limit`` and the factor
    ≤ :data:`MAX_UPSCALE` (small labels on a small photo are a few pixels tall: the detector, trained
    on text ≥ ~8 px at its input, misses them). ``limit`` 0 = no cap on the long side."""
    nh, nw, scale = fit_stride(h, w, limit or max(h, w), stride)
    if min_side <= 0 or min(h, w) * scale >= min_side:
        return nh, nw, scale
    up = min(min_side / min(h, w), MAX_UPSCALE)
    if limit:
        up = min(up, limit / max(h, w))
    if up <= scale:
        return nh, nw, scale
    return (max(stride, round(h * up / stride) * stride), max(stride, round(w * up / stride) * stride), up)


def normalize_chw(image: Image, mean: npt.ArrayLike, std: npt.ArrayLike, scale: float = 1 / 255) -> Floats:
    """HxWxC uint8 → CxHxW float32: ``(x * scale - mean) / std`` per channel.

    Computed as ``x * (scale / std) - mean / std`` one channel plane at a time, written straight
    into the CHW result: no HWC float copy and no transpose (8x faster on a detector-size input).
    """
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[:, :, None]
    h, w, c = img.shape
    m = np.broadcast_to(np.asarray(mean, dtype=np.float64).reshape(-1), (c,))
    sd = np.broadcast_to(np.asarray(std, dtype=np.float64).reshape(-1), (c,))
    out = np.empty((c, h, w), dtype=np.float32)
    for k in range(c):
        plane = out[k]
        plane[...] = img[:, :, k]
        plane *= np.float32(scale / sd[k])
        plane -= np.float32(m[k] / sd[k])
    return out


def resize_to_height(image: Image, height: int, *, min_width: int = 1, max_width: int = 10_000) -> Image:
    """Resize to ``height`` keeping the aspect ratio; width clamped to [min_width, max_width]."""
    h, w = image.shape[:2]
    nw = math.ceil(height * w / max(h, 1))
    nw = max(min_width, min(max_width, nw))
    return np.asarray(cv2.resize(image, (nw, height), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)


def pad_batch(chws: list[Floats], width: int, value: float = 0.0, mode: str = "constant") -> Floats:
    """Stack CxHxWi arrays into BxCxHxwidth, padding on the right with ``value`` (``mode="edge"``:
    with each array's last column repeated)."""
    if not chws:
        raise InputError("pad_batch needs at least one array")
    if mode not in ("constant", "edge"):
        raise InputError(f"pad mode {mode!r}: expected 'constant' or 'edge'")
    c, h = chws[0].shape[:2]
    out = np.full((len(chws), c, h, width), value, dtype=np.float32)
    for i, a in enumerate(chws):
        w = min(a.shape[2], width)
        out[i, :, :, :w] = a[:, :, :w]
        if mode == "edge" and 0 < w < width:
            out[i, :, :, w:] = a[:, :, w - 1 : w]
    return out


def tiles(h: int, w: int, size: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Overlapping windows (y0, x0, y1, x1) of at most ``size`` covering an HxW image."""
    if overlap < 0 or size < 1:
        raise InputError(f"tiles need a positive size and an overlap >= 0, got {size} and {overlap}")
    if size <= overlap:
        raise InputError(f"tile size {size} must exceed the overlap {overlap}")

    def starts(n: int) -> list[int]:
        if n <= size:
            return [0]
        k = math.ceil((n - overlap) / (size - overlap))
        step = (n - size) / (k - 1)
        return [round(i * step) for i in range(k)]

    return [(y, x, min(h, y + size), min(w, x + size)) for y in starts(h) for x in starts(w)]
