"""Real benchmark inputs: images preprocessed the way each task does, for ``--inputs FOLDER``.

These mirror the tasks' own preprocessing (``edgevl.tasks.ocr``: detector resize to the
``limit_side`` on the stride, recogniser/classifier height-resize and padding) built from the same
public pure functions in :mod:`edgevl.vision.geometry` and the bundle's manifest, so the model sees
the tensors the task would feed it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgevl.backends import Array
from edgevl.bundle import Bundle
from edgevl.errors import BundleError, InputError
from edgevl.vision.io import read_image


def _norm(pre: dict[str, Any], bundle: Bundle) -> tuple[list[float], list[float], float, str]:
    try:
        return ([float(x) for x in pre["mean"]], [float(x) for x in pre["std"]],
                float(pre.get("scale", 1 / 255)), str(pre.get("color", "BGR")))
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"{bundle.path}: preprocess lacks mean/std ({e})") from e


def detection(bundle: Bundle, paths: Sequence[Path]) -> list[Array]:
    """Each photo resized so its longest side fits ``limit_side`` on the stride, normalised, padded:
    ``(1, 3, H, W)`` float32 (tiling of very large photos is the task's business, not the model's)."""
    from edgevl.vision.geometry import fit_stride, normalize_chw

    pre = dict(bundle.manifest.preprocess)
    mean, std, scale, color = _norm(pre, bundle)
    limit = int(pre.get("limit_side", 960))
    stride = int(pre.get("stride", 32))
    out: list[Array] = []
    for p in paths:
        img = read_image(p)
        h, w = img.shape[:2]
        nh, nw, _ = fit_stride(h, w, limit, stride)
        r = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if nw < w else cv2.INTER_LINEAR)
        if color == "RGB":
            r = r[:, :, ::-1]
        x = normalize_chw(np.ascontiguousarray(r, np.uint8), mean, std, scale)
        ph, pw = -(-nh // stride) * stride, -(-nw // stride) * stride
        padded = np.zeros((3, ph, pw), np.float32)
        padded[:, :nh, :nw] = x
        out.append(padded[None])
    return out


def text_crops(bundle: Bundle, paths: Sequence[Path]) -> list[Array]:
    """Each image is one text-line crop: resized to the model height, width by aspect ratio
    (recogniser: within min/max width, padded to ``width_multiple``; classifier: padded to ``width``)."""
    from edgevl.vision.geometry import normalize_chw, pad_batch

    pre = dict(bundle.manifest.preprocess)
    mean, std, scale, _ = _norm(pre, bundle)
    try:
        height = int(pre["height"])
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"{bundle.path}: preprocess lacks the crop height ({e})") from e
    fixed_w = pre.get("width")
    out: list[Array] = []
    for p in paths:
        img = read_image(p)
        h, w = img.shape[:2]
        nw = math.ceil(height * w / max(h, 1))
        if fixed_w is not None:
            width = int(fixed_w)
            nw = max(1, min(width, nw))
        else:
            nw = max(int(pre.get("min_width", height)), min(int(pre.get("max_width", 1600)), nw))
            mult = int(pre.get("width_multiple", 8))
            width = -(-nw // mult) * mult
        r = cv2.resize(img, (nw, height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_LINEAR)
        out.append(pad_batch([normalize_chw(np.ascontiguousarray(r, np.uint8), mean, std, scale)], width))
    return out


def clip_images(bundle: Bundle, paths: Sequence[Path]) -> list[Array]:
    """CLIP image preprocessing from the encoders runtime (``edgevl.vision.preprocess``)."""
    import importlib

    try:
        vp = importlib.import_module("edgevl.vision.preprocess")
    except ImportError as e:
        raise InputError(f"CLIP image preprocessing is not available in this edgevl ({e})") from e
    fn = getattr(vp, "preprocess_images", None) or getattr(vp, "preprocess", None)
    if fn is None or not callable(fn):
        raise InputError("edgevl.vision.preprocess exposes no preprocess_images(); give .npz inputs")
    out: list[Array] = []
    for p in paths:
        arr = np.asarray(fn([read_image(p)], bundle.manifest.preprocess))
        out.append(arr if arr.ndim == 4 else arr[None])
    return out
