"""The CTC recogniser stage: text crops → :class:`~edgevl.tasks.ocr.results.Reading` (text, mean and
per-character confidences), batched by width (variable-width PP-OCR models) or by input size
(fixed-size models such as SVTRv2)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from edgevl.backends import Engine, EngineOptions
from edgevl.bundle import Bundle
from edgevl.errors import BundleError, InputError
from edgevl.tasks.ocr.prep import recognizer_chw
from edgevl.tasks.ocr.results import Reading, strip_spaces
from edgevl.tasks.ocr.sections import DECODERS, RecognizerConfig, RecognizerPreprocess
from edgevl.tasks.ocr.stage import input_name, open_stage
from edgevl.text.ctc import ctc_greedy
from edgevl.vision.fixedsize import SizeChooser, add_margin, stretch_chw
from edgevl.vision.geometry import pad_batch
from edgevl.vision.io import Image, as_image

if TYPE_CHECKING:
    from edgevl.models.ppocr import OcrModel

Floats = npt.NDArray[np.float32]


class TextRecognizer:
    """CTC text recogniser for word/line crops, batched by width so padding stays small.

    ``rec`` names the recogniser instead of ``model``: a PP-OCR family, a standalone recogniser
    (``"svtrv2"``) or a bundle folder (:func:`edgevl.models.recognizers.resolve`). A bundle whose
    preprocess lists fixed ``sizes`` (SVTRv2) stretches each crop to one of them
    (:mod:`edgevl.vision.fixedsize`) and runs the crops of one size as a batch.
    """

    def __init__(self, engine: Engine | None = None, bundle: Bundle | None = None, *,
                 options: EngineOptions | None = None, batch_size: int = 16,
                 batch_pixels: int = 16 * 640, max_pad: float = 0.1,
                 height: int | None = None, model: OcrModel | str | None = None,
                 rec: str | Path | None = None, size_policy: str | None = None) -> None:
        if rec is not None and bundle is None:
            if model is not None:
                raise InputError("give the recogniser as model= or rec=, not both")
            from edgevl.models.ppocr import MODELS
            from edgevl.models.recognizers import resolve

            if isinstance(rec, str) and rec in MODELS:
                model = rec  # a PP-OCR family's recogniser: opened by name like the other stages
            else:
                bundle = resolve(rec)
        self.engine, self.bundle, self.family = open_stage(engine, bundle, "rec", model, options)
        from edgevl.models.ppocr import load_charset

        # the manifest's decoder decides how the outputs are read: an unknown one is a BundleError
        # (RecognizerConfig checks it against DECODERS at load), never a silent CTC decode
        cfg = self.bundle.section(RecognizerConfig)
        if cfg.decoder not in DECODERS:  # pragma: no cover - from_manifest refuses it first
            raise BundleError(f"{self.bundle.path}: decoder {cfg.decoder!r} not in {DECODERS}")
        self.pre = pre = self.bundle.section(RecognizerPreprocess)
        self.height = int(height or pre.height)
        self.charset = load_charset(self.bundle)
        self.blank = cfg.blank_index
        self.batch_size = batch_size
        self.batch_pixels = batch_pixels
        self.max_pad = max_pad
        n_out = self.engine.outputs[0].shape[-1] if self.engine.outputs else None
        if isinstance(n_out, int) and n_out != len(self.charset):
            cs = self.bundle.file(cfg.charset)
            raise BundleError(f"{cs}: {len(self.charset)} classes, the model outputs {n_out} "
                              "(another model's charset?)")
        self._input = input_name(self.engine)
        self.sizes = pre.sizes
        self._chooser: SizeChooser | None = None
        if self.sizes:
            self._chooser = SizeChooser(pre, self.bundle, options, size_policy)

    def read(self, crops: Sequence[Image | str | Any]) -> list[Reading]:
        """Read each crop as one line of text (crops are upright; no rotation is tried)."""
        return self.read_counted(crops)[0]

    def read_counted(self, crops: Sequence[Image | str | Any]) -> tuple[list[Reading], int]:
        """:meth:`read` plus the padded input columns it ran (the recogniser's work)."""
        imgs = [as_image(c, f"crop {i}") for i, c in enumerate(crops)]
        if self._chooser is not None:
            return self._read_fixed(imgs)
        prepared = [recognizer_chw(c, self.pre, self.height) for c in imgs]
        columns = 0
        order = sorted(range(len(prepared)), key=lambda i: prepared[i].shape[2])
        out: list[Reading | None] = [None] * len(prepared)
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and end - start < self.batch_size:
                wmax = prepared[order[end]].shape[2]
                if wmax * (end - start + 1) > self.batch_pixels:
                    break
                if wmax > (1 + self.max_pad) * prepared[order[start]].shape[2]:
                    break  # padding costs as much as content: start a new batch instead
                end += 1
            idx = order[start:end]
            multiple = self.pre.width_multiple
            width = -(-prepared[idx[-1]].shape[2] // multiple) * multiple
            batch = pad_batch([prepared[i] for i in idx], width, mode=self.pre.pad)
            columns += width * len(idx)
            probs = next(iter(self.engine.run({self._input: batch}).values()))
            t = probs.shape[1]
            lengths = [min(t, math.ceil(prepared[i].shape[2] * t / width)) for i in idx]
            decoded = ctc_greedy(probs, self.charset, blank=self.blank, lengths=lengths)
            for i, d in zip(idx, decoded, strict=True):
                out[i] = strip_spaces(Reading(d.text, d.score, d.char_scores))
            start = end
        return [r for r in out if r is not None], columns

    def _read_fixed(self, imgs: list[Image]) -> tuple[list[Reading], int]:
        """Fixed-size model: each crop stretched to its chosen size, one batch per size (chunks of
        ``batch_size``), the whole output decoded (no padding)."""
        assert self._chooser is not None
        imgs = [add_margin(c, self._chooser.pre.margin) for c in imgs]
        choice = self._chooser(imgs)
        out: list[Reading | None] = [None] * len(imgs)
        columns = 0
        for k, (h, w) in enumerate(self.sizes):
            idx = [i for i, c in enumerate(choice) if c == k]
            for s in range(0, len(idx), self.batch_size):
                part = idx[s : s + self.batch_size]
                batch = np.stack([stretch_chw(imgs[i], h, w, self._chooser.pre) for i in part])
                probs = next(iter(self.engine.run({self._input: batch}).values()))
                columns += w * len(part)
                for i, d in zip(part, ctc_greedy(probs, self.charset, blank=self.blank), strict=True):
                    out[i] = strip_spaces(Reading(d.text, d.score, d.char_scores))
        return [r for r in out if r is not None], columns
