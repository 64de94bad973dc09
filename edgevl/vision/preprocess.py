"""CLIP image preprocessing, driven by the bundle manifest. Pure functions on numpy arrays.

The exporter records in ``manifest.preprocess``: ``size`` (the square input side), ``resize``
(``"shortest"``: scale so the shorter side equals ``size``), ``crop`` (``"center"``),
``interpolation`` (``bicubic``, ``bilinear``, ``nearest`` or ``area``), ``mean`` and ``std``
(per channel, on 0..1 values) and ``color`` (``"RGB"`` or ``"BGR"``, the channel order the model
was trained on). Images come in as edgevl reads them (HxWx3 uint8 BGR); the result is NCHW float32.

Resizing uses OpenCV. OpenCV's bicubic does not antialias when shrinking, unlike PIL's, so
embeddings differ slightly from a PIL pipeline on large downscales (they agree on upscales).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edgevl.errors import BundleError, ImageError
from edgevl.vision.io import as_image, to_bgr8

Image = npt.NDArray[np.uint8]
Float32Array = npt.NDArray[np.float32]

INTERPOLATIONS = {
    "bicubic": cv2.INTER_CUBIC,
    "bilinear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST,
    "area": cv2.INTER_AREA,
}


@dataclass(frozen=True)
class ClipPreprocess:
    """The preprocessing recorded in a CLIP bundle's manifest."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    resize: str = "shortest"
    crop: str = "center"
    color: str = "RGB"

    @staticmethod
    def from_manifest(pre: Mapping[str, Any], where: str = "manifest.preprocess") -> ClipPreprocess:
        try:
            size = pre["size"]
            size = int(size[0] if isinstance(size, (list, tuple)) else size)
            mean = tuple(float(v) for v in pre["mean"])
            std = tuple(float(v) for v in pre["std"])
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise BundleError(f"{where}: needs size, mean[3] and std[3] ({e!r})") from e
        if len(mean) != 3 or len(std) != 3 or any(s <= 0 for s in std) or size <= 0:
            raise BundleError(f"{where}: mean/std must have 3 values (std > 0) and size > 0")
        spec = ClipPreprocess(
            size=size, mean=(mean[0], mean[1], mean[2]), std=(std[0], std[1], std[2]),
            interpolation=str(pre.get("interpolation", "bicubic")),
            resize=str(pre.get("resize", "shortest")), crop=str(pre.get("crop", "center")),
            color=str(pre.get("color", "RGB")).upper(),
        )
        if spec.interpolation not in INTERPOLATIONS:
            raise BundleError(f"{where}: interpolation {spec.interpolation!r} "
                              f"not in {sorted(INTERPOLATIONS)}")
        if spec.resize != "shortest" or spec.crop != "center":
            raise BundleError(f"{where}: only resize 'shortest' + crop 'center' are supported, "
                              f"got {spec.resize!r}/{spec.crop!r}")
        if spec.color not in ("RGB", "BGR"):
            raise BundleError(f"{where}: color {spec.color!r} must be 'RGB' or 'BGR'")
        return spec


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
