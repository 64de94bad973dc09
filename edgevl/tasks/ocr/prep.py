"""The OCR family's input preprocessing, pure functions of an image and a typed section: what the
detector, classifier and recogniser tasks feed their models, and (the same functions) what
``edgevl bench --inputs`` feeds them. Int8 calibration drives the tasks themselves, so it sees the
same tensors too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edgevl.tasks.ocr.sections import ClassifierPreprocess, DetectorPreprocess, RecognizerPreprocess
from edgevl.tasks.spec import Array, BundleLike
from edgevl.vision.geometry import fit_detector, normalize_chw, pad_batch
from edgevl.vision.io import Image, read_image

Floats = npt.NDArray[np.float32]


def detector_chw(image: Image, pre: DetectorPreprocess, limit_side: int, min_side: int = 0) -> Floats:
    """The photo resized for the detector (longest side ``limit_side`` on the stride, a short side
    below ``min_side`` enlarged: :func:`fit_detector`), in the bundle's colour order, normalised, CHW
    (not yet padded to the stride)."""
    h, w = image.shape[:2]
    nh, nw, _ = fit_detector(h, w, limit_side, min_side, pre.stride)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if nw < w else cv2.INTER_LINEAR)
    if pre.norm.color == "RGB":
        resized = resized[:, :, ::-1]
    n = pre.norm
    return normalize_chw(np.asarray(resized, np.uint8), n.mean, n.std, n.scale)


def pad_to_stride(chw: Floats, stride: int) -> Floats:
    """``chw`` zero-padded on the bottom and right to multiples of ``stride``."""
    c, h, w = chw.shape
    ph, pw = -(-h // stride) * stride, -(-w // stride) * stride
    if (ph, pw) == (h, w):
        return chw
    padded = np.zeros((c, ph, pw), np.float32)
    padded[:, :h, :w] = chw
    return padded


def classifier_chw(crop: Image, pre: ClassifierPreprocess) -> Floats:
    """A text crop resized to the classifier's height, width by aspect ratio up to ``width`` (the
    batch pads it to ``width``), normalised, CHW."""
    h, w = crop.shape[:2]
    nw = max(1, min(pre.width, math.ceil(pre.height * w / max(h, 1))))
    r = cv2.resize(crop, (nw, pre.height), interpolation=cv2.INTER_LINEAR)
    if pre.norm.color == "RGB":
        r = r[:, :, ::-1]
    n = pre.norm
    return normalize_chw(np.asarray(r, np.uint8), n.mean, n.std, n.scale)


def recognizer_chw(crop: Image, pre: RecognizerPreprocess, height: int | None = None) -> Floats:
    """A text crop resized to ``height`` (default the bundle's), width by aspect ratio within
    ``min_width..max_width``, grey or in the bundle's colour order, normalised, CHW (variable-width
    recognisers; fixed sizes are :mod:`edgevl.vision.fixedsize`)."""
    height = height or pre.height
    h, w = crop.shape[:2]
    nw = max(pre.min_width, min(pre.max_width, math.ceil(height * w / max(h, 1))))
    r = cv2.resize(crop, (nw, height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_LINEAR)
    n = pre.norm
    if pre.grayscale:  # one channel: the manifest's three equal values (checked by from_manifest)
        return normalize_chw(np.asarray(cv2.cvtColor(r, cv2.COLOR_BGR2GRAY), np.uint8), n.mean[:1], n.std[:1],
                             n.scale)
    if n.color == "RGB":
        r = r[:, :, ::-1]
    return normalize_chw(np.asarray(r, np.uint8), n.mean, n.std, n.scale)


# --------------------------------------------------------------------------- benchmark inputs


def bench_detection(bundle: BundleLike, role: str, paths: Sequence[Path]) -> list[Array]:
    """Each photo as the detector task feeds it at the bundle's ``limit_side``, padded to the stride:
    ``(1, 3, H, W)`` float32 (tiling and the small-photo rule are the task's business, not the
    model's)."""
    pre = bundle.section(DetectorPreprocess)
    return [pad_to_stride(detector_chw(read_image(p), pre, pre.limit_side), pre.stride)[None] for p in paths]


def bench_orientation(bundle: BundleLike, role: str, paths: Sequence[Path]) -> list[Array]:
    """Each image one text crop, as the classifier task feeds it, padded to ``width``."""
    pre = bundle.section(ClassifierPreprocess)
    return [pad_batch([classifier_chw(read_image(p), pre)], pre.width) for p in paths]


def bench_recognition(bundle: BundleLike, role: str, paths: Sequence[Path]) -> list[Array]:
    """Each image one text line, as the recogniser task feeds it, padded to ``width_multiple``."""
    pre = bundle.section(RecognizerPreprocess)
    out: list[Array] = []
    for p in paths:
        chw = recognizer_chw(read_image(p), pre)
        width = -(-chw.shape[2] // pre.width_multiple) * pre.width_multiple
        out.append(pad_batch([chw], width, mode=pre.pad))
    return out
