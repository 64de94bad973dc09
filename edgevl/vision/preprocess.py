"""CLIP image preprocessing, driven by the bundle manifest. Pure functions on numpy arrays.

The exporter records in ``manifest.preprocess``
(:class:`edgevl.tasks.encoders.sections.ClipPreprocess`): ``size`` (the square input side), ``resize``
(``"shortest"``: scale so the shorter side equals ``size``), ``crop`` (``"center"``),
``interpolation`` (``bicubic``, ``bilinear``, ``nearest`` or ``area``), ``mean`` and ``std``
(per channel, on 0..1 values) and ``color`` (``"RGB"`` or ``"BGR"``, the channel order the model
was trained on). Images come in as edgevl reads them (HxWx3 uint8 BGR); the result is NCHW float32.

Resizing uses OpenCV. OpenCV's bicubic does not antialias when shrinking, unlike PIL's, so
embeddings differ slightly from a PIL pipeline on large downscales (they agree on upscales).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edgevl.errors import ImageError
from edgevl.tasks.encoders.sections import ClipPreprocess
from edgevl.vision.io import as_image, to_bgr8

Image = npt.NDArray[np.uint8]
Float32Array = npt.NDArray[np.float32]

__all__ = ["INTERPOLATIONS", "ClipPreprocess", "center_crop", "normalize", "preprocess_image",
           "preprocess_images", "resize_shortest"]

INTERPOLATIONS = {
    "bicubic": cv2.INTER_CUBIC,
    "bilinear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST,
    "area": cv2.INTER_AREA,
}


def resize_shortest(image: Image, size: int, interpolation: str = "bicubic") -> Image:
    """Shorter side → ``size``; the longer side ``int(size * long / short)`` as torchvision does."""
    h, w = image.shape[:2]
    if h <= w:
        nh, nw = size, max(1, int(size * w / h))
    else:
        nh, nw = max(1, int(size * h / w)), size
    if (nh, nw) == (h, w):
        return image
    return np.asarray(cv2.resize(image, (nw, nh), interpolation=INTERPOLATIONS[interpolation]), np.uint8)


def center_crop(image: Image, size: int) -> Image:
    """The central ``size`` x ``size`` window (zero-padded first if the image is smaller)."""
    h, w = image.shape[:2]
    if h < size or w < size:
        ph, pw = max(0, size - h), max(0, size - w)
        image = np.pad(image, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
        h, w = image.shape[:2]
    top = round((h - size) / 2.0)
    left = round((w - size) / 2.0)
    return image[top:top + size, left:left + size]


def normalize(image: Image, mean: Sequence[float], std: Sequence[float], color: str = "RGB") -> Float32Array:
    """HxWx3 uint8 BGR → 3xHxW float32 in the model's channel order, ``(x/255 - mean) / std``."""
    x = image[:, :, ::-1] if color == "RGB" else image
    m, s = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    out = (x.astype(np.float32) / np.float32(255.0) - m) / s
    return np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32)


def preprocess_image(image: Image, spec: ClipPreprocess) -> Float32Array:
    """One BGR uint8 image → 3xSxS float32."""
    img = to_bgr8(image)
    img = center_crop(resize_shortest(img, spec.size, spec.interpolation), spec.size)
    return normalize(img, spec.mean, spec.std, spec.color)


def preprocess_images(images: Sequence[Image | Path | str],
                      spec: ClipPreprocess | Mapping[str, Any]) -> Float32Array:
    """Images (arrays in BGR order, or paths) → NCHW float32 batch."""
    s = spec if isinstance(spec, ClipPreprocess) else ClipPreprocess.from_manifest(spec)
    if len(images) == 0:
        raise ImageError("no images to preprocess")
    return np.stack([preprocess_image(as_image(im), s) for im in images]).astype(np.float32, copy=False)
