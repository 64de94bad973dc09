"""The DB text detector stage: a photo → text quads and box scores, in the photo's pixels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from edgevl.backends import Engine, EngineOptions
from edgevl.bundle import Bundle
from edgevl.tasks.ocr.prep import detector_chw, pad_to_stride
from edgevl.tasks.ocr.sections import DetectorConfig, DetectorPreprocess
from edgevl.tasks.ocr.stage import input_name, open_stage
from edgevl.vision.db import DBParams, db_boxes
from edgevl.vision.geometry import tiles
from edgevl.vision.io import Image, as_image

if TYPE_CHECKING:
    from edgevl.models.ppocr import OcrModel

Floats = npt.NDArray[np.float32]


class TextDetector:
    """DB text detector: image → quads (N, 4, 2) and box scores (N,), in original pixels.

    Resolution policy (``limit_side``, ``tile``): the photo is downscaled so its longest side is at
    most ``limit_side`` (rounded to the stride; 0 = full resolution). When the detector input is
    longer than ``tile.above`` pixels, the detector runs on overlapping ``tile.size`` tiles whose
    probability maps are stitched (max in overlaps) before one DB pass, so no box is cut or
    duplicated at a tile seam; tiling bounds memory, it does not save compute.
    """

    def __init__(self, engine: Engine | None = None, bundle: Bundle | None = None, *,
                 options: EngineOptions | None = None, limit_side: int | None = None,
                 tile_size: int | None = None, params: DBParams | None = None,
                 model: OcrModel | str | None = None) -> None:
        self.engine, self.bundle, self.family = open_stage(engine, bundle, "det", model, options)
        #: the bundle's preprocessing (normalisation, stride, tiling); the knobs below override it
        self.pre = pre = self.bundle.section(DetectorPreprocess)
        self.stride = pre.stride
        self.limit_side = int(limit_side if limit_side is not None else pre.limit_side)
        self.tile_size = int(tile_size if tile_size is not None else pre.tile.size)
        self.tile_overlap, self.tile_above = pre.tile.overlap, pre.tile.above
        self.min_side = pre.min_side
        self.small_text = SMALL_TEXT_PX
        self.params = params or self.bundle.section(DetectorConfig)
        self.small_side = 256
        self.margin = 32
        self._input = input_name(self.engine)

    def probability_map(self, image: Image, min_side: int = 0) -> tuple[Floats, float, float]:
        """The DB probability map of the resized image and the (x, y) map→image scale factors
        (``min_side``: enlarge a smaller image up to it, :func:`fit_detector`)."""
        h, w = image.shape[:2]
        x = detector_chw(image, self.pre, self.limit_side, min_side)
        nh, nw = x.shape[1:]
        ts = self.tile_size
        if ts and max(nh, nw) > max(ts, self.tile_above):
            prob = np.zeros((nh, nw), np.float32)
            for y0, x0, y1, x1 in tiles(nh, nw, ts, self.tile_overlap):
                part = self._run(x[:, y0:y1, x0:x1])
                np.maximum(prob[y0:y1, x0:x1], part, out=prob[y0:y1, x0:x1])
        else:
            prob = self._run(x)
        return prob, w / nw, h / nh

    def _run(self, chw: Floats) -> Floats:
        _, h, w = chw.shape
        padded = pad_to_stride(chw, self.stride)
        out = next(iter(self.engine.run({self._input: padded[None]}).values()))
        return np.asarray(out, np.float32).reshape(padded.shape[1:])[:h, :w]

    def __call__(self, image: Image | str | Any) -> tuple[Floats, Floats]:
        img = as_image(image)
        h, w = img.shape[:2]
        # small images (a word crop, a single spine) get a margin of their border colour: DB needs
        # background around text to separate characters into one box
        m = self.margin if min(h, w) < self.small_side else 0
        if m:
            border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).reshape(-1, 3)
            colour = [int(v) for v in np.median(border, axis=0)]
            img = np.asarray(cv2.copyMakeBorder(img, m, m, m, m, cv2.BORDER_CONSTANT, value=colour), np.uint8)
        prob, sx, sy = self.probability_map(img)
        quads, scores = db_boxes(prob, self.params, scale=(sx, sy), offset=(-m, -m), clip_to=(h, w))
        # small photo policy: when the short side is below min_side and the text found is small
        # (or none is), detect again enlarged; large text on a small image keeps its first pass
        # (enlarged, its word gaps split lines), large photos never pay a second pass
        if (self.min_side and min(img.shape[:2]) * max(1 / sx, 1 / sy) < self.min_side
                and small_text(quads, 1 / max(sx, sy), self.small_text)):
            prob, sx, sy = self.probability_map(img, self.min_side)
            quads, scores = db_boxes(prob, self.params, scale=(sx, sy), offset=(-m, -m), clip_to=(h, w))
        return quads, scores


#: median text height (detector-input pixels) below which a small photo is detected again enlarged
SMALL_TEXT_PX = 20.0


def small_text(quads: Floats, scale: float, below: float) -> bool:
    """Whether the boxes found hold small text: none found, or their median height (the short side
    of each quad, times ``scale`` = detector pixels per image pixel) is below ``below``."""
    if len(quads) == 0:
        return True
    q = np.asarray(quads, np.float32)
    sides = np.stack([np.linalg.norm(q[:, 1] - q[:, 0], axis=1),
                      np.linalg.norm(q[:, 2] - q[:, 1], axis=1)], 1)
    return float(np.median(sides.min(1))) * scale < below
