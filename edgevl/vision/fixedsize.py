"""Input sizes of a fixed-size recogniser (SVTRv2): which of the bundle's ``sizes`` a crop is read at,
and the stretched, normalised CHW input.

Policies (``preprocess.size_policy``, docs/ocr.md has the measurements):

- ``aspect``: the size whose aspect ratio (w/h) is nearest the crop's (the published round(w/h)
  rule over the sizes 1:1, 2:1, 2.8:1, 4:1);
- ``selector``: the bundle's learned chooser (``preprocess.selector``, an ONNX model with inputs
  ``thumb`` [B, 3, 16, 64], the crop stretched and normalised like the recogniser's input, and
  ``shape`` [B, 2]; output ``scores`` [B, len(sizes)]). The wheel documents no encoding of
  ``shape``: edgevl passes :data:`SELECTOR_SHAPE` (the encoding measured best, docs/ocr.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edgevl.bundle import Bundle
from edgevl.errors import BundleError, InputError
from edgevl.tasks.ocr.sections import SIZE_POLICIES, RecognizerPreprocess
from edgevl.vision.geometry import normalize_chw
from edgevl.vision.io import Image

Floats = npt.NDArray[np.float32]
THUMB = (16, 64)
#: what the selector's ``shape`` input holds for a crop of h x w pixels
SELECTOR_SHAPE = "h,w"


def stretch_chw(crop: Image, height: int, width: int, pre: RecognizerPreprocess) -> Floats:
    """The crop resized to exactly ``height`` x ``width`` (aspect not kept), in the bundle's colour
    order, ``(x * scale - mean) / std``, as CHW float32. Area interpolation when shrinking."""
    h, w = crop.shape[:2]
    interp = cv2.INTER_AREA if h > height and w > width else cv2.INTER_LINEAR
    r = cv2.resize(crop, (width, height), interpolation=interp)
    if r.ndim == 2:
        r = cv2.cvtColor(r, cv2.COLOR_GRAY2BGR)
    if pre.norm.color == "RGB":
        r = r[:, :, ::-1]
    return normalize_chw(np.asarray(r, np.uint8), list(pre.norm.mean), list(pre.norm.std), pre.norm.scale)


def add_margin(crop: Image, margin: float) -> Image:
    """The crop with a border of ``margin`` x its height on each side, in the median colour of its
    edge pixels (a tight detector box cuts the last letter's side; the model was trained on looser
    crops, docs/ocr.md)."""
    h = crop.shape[0]
    m = round(margin * h)
    if m <= 0:
        return crop
    img = crop if crop.ndim == 3 else cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    edge = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).reshape(-1, img.shape[2])
    colour = [int(v) for v in np.median(edge, axis=0)]
    return np.asarray(cv2.copyMakeBorder(img, m, m, m, m, cv2.BORDER_CONSTANT, value=colour), np.uint8)


def nearest_aspect(h: int, w: int, sizes: Sequence[tuple[int, int]]) -> int:
    """Index of the size whose w/h is nearest the crop's w/h (first on a tie)."""
    r = w / max(h, 1)
    return min(range(len(sizes)), key=lambda k: abs(sizes[k][1] / sizes[k][0] - r))


def selector_shape(h: int, w: int) -> tuple[float, float]:
    return (float(h), float(w))


class SizeChooser:
    """Picks an input size per crop by the bundle's policy (or ``policy`` when given)."""

    def __init__(self, pre: RecognizerPreprocess, bundle: Bundle, options: Any = None,
                 policy: str | None = None) -> None:
        if not pre.sizes:
            raise BundleError(f"{bundle.path}: preprocess lists no fixed sizes")
        self.pre = pre
        self.sizes = pre.sizes
        self.policy = policy or pre.size_policy
        if self.policy not in SIZE_POLICIES:
            raise InputError(f"size policy {self.policy!r} not in {SIZE_POLICIES}")
        self._sel: Any = None
        if self.policy == "selector":
            if pre.selector is None:
                raise BundleError(f"{bundle.path}: size_policy 'selector' but the bundle has no selector")
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.intra_op_num_threads = 1
            self._sel = ort.InferenceSession(str(bundle.file(pre.selector)), so,
                                             providers=["CPUExecutionProvider"])
            n = self._sel.get_outputs()[0].shape[-1]
            if isinstance(n, int) and n != len(self.sizes):
                raise BundleError(f"{bundle.path}: the selector scores {n} sizes, the manifest lists "
                                  f"{len(self.sizes)}")

    def __call__(self, crops: Sequence[Image]) -> list[int]:
        if self._sel is None or not crops:
            return [nearest_aspect(c.shape[0], c.shape[1], self.sizes) for c in crops]
        thumbs = np.stack([stretch_chw(c, THUMB[0], THUMB[1], self.pre) for c in crops])
        shape = np.asarray([selector_shape(c.shape[0], c.shape[1]) for c in crops], np.float32)
        scores = self._sel.run(None, {"thumb": thumbs, "shape": shape})[0]
        out = [int(k) for k in np.asarray(scores).argmax(1)]
        if any(not math.isfinite(float(v)) for v in np.asarray(scores).reshape(-1)):
            raise BundleError("the size selector returned NaN or infinity")
        return out
