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

import cv2
import numpy as np

from edgevl.backends import Array
from edgevl.bundle import Bundle
from edgevl.manifest import ClassifierPreprocess, ClipPreprocess, DetectorPreprocess, RecognizerPreprocess
from edgevl.vision.io import read_image


def detection(bundle: Bundle, paths: Sequence[Path]) -> list[Array]:
    """Each photo resized so its longest side fits ``limit_side`` on the stride, normalised, padded:
    ``(1, 3, H, W)`` float32 (tiling of very large photos is the task's business, not the model's)."""
    from edgevl.vision.geometry import fit_stride, normalize_chw

    pre = DetectorPreprocess.from_manifest(bundle.manifest.preprocess)
    n = pre.norm
    stride = pre.stride
    out: list[Array] = []
    for p in paths:
        img = read_image(p)
        h, w = img.shape[:2]
        nh, nw, _ = fit_stride(h, w, pre.limit_side or max(h, w), stride)
        r = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if nw < w else cv2.INTER_LINEAR)
        if n.color == "RGB":
            r = r[:, :, ::-1]
        x = normalize_chw(np.ascontiguousarray(r, np.uint8), n.mean, n.std, n.scale)
        ph, pw = -(-nh // stride) * stride, -(-nw // stride) * stride
        padded = np.zeros((3, ph, pw), np.float32)
        padded[:, :nh, :nw] = x
        out.append(padded[None])
    return out


def text_crops(bundle: Bundle, paths: Sequence[Path]) -> list[Array]:
    """Each image is one text-line crop: resized to the model height, width by aspect ratio
    (recogniser: within min/max width, padded to ``width_multiple``; classifier: padded to ``width``)."""
    from edgevl.vision.geometry import normalize_chw, pad_batch

    pre: ClassifierPreprocess | RecognizerPreprocess
    if bundle.manifest.task == "text-orientation":
        pre = ClassifierPreprocess.from_manifest(bundle.manifest.preprocess)
    else:
        pre = RecognizerPreprocess.from_manifest(bundle.manifest.preprocess)
    n, height = pre.norm, pre.height
    out: list[Array] = []
    for p in paths:
        img = read_image(p)
        h, w = img.shape[:2]
        nw = math.ceil(height * w / max(h, 1))
        if isinstance(pre, ClassifierPreprocess):
            width = pre.width
            nw = max(1, min(width, nw))
        else:
            nw = max(pre.min_width, min(pre.max_width, nw))
            width = -(-nw // pre.width_multiple) * pre.width_multiple
        r = cv2.resize(img, (nw, height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_LINEAR)
        if n.color == "RGB":
            r = r[:, :, ::-1]
        chw = normalize_chw(np.ascontiguousarray(r, np.uint8), n.mean, n.std, n.scale)
        out.append(pad_batch([chw], width))
    return out


def clip_images(bundle: Bundle, paths: Sequence[Path]) -> list[Array]:
    """CLIP image preprocessing from the encoders runtime (``edgevl.vision.preprocess``)."""
    from edgevl.vision.preprocess import preprocess_images

    spec = ClipPreprocess.from_manifest(bundle.manifest.preprocess)
    out: list[Array] = []
    for p in paths:
        arr = np.asarray(preprocess_images([read_image(p)], spec))
        out.append(arr if arr.ndim == 4 else arr[None])
    return out
