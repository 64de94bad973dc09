"""The 0/180° orientation stage: text crops → (is it upside down, probability of that label)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from edgevl.backends import Engine, EngineOptions
from edgevl.bundle import Bundle
from edgevl.tasks.ocr.prep import classifier_chw
from edgevl.tasks.ocr.sections import ClassifierConfig, ClassifierPreprocess
from edgevl.tasks.ocr.stage import input_name, open_stage
from edgevl.vision.geometry import pad_batch
from edgevl.vision.io import Image

if TYPE_CHECKING:
    from edgevl.models.ppocr import OcrModel

Floats = npt.NDArray[np.float32]


class AngleClassifier:
    """0/180° classifier of text crops: returns (is_flipped, probability of the chosen label)."""

    def __init__(self, engine: Engine | None = None, bundle: Bundle | None = None, *,
                 options: EngineOptions | None = None, batch_size: int = 32,
                 model: OcrModel | str | None = None) -> None:
        self.engine, self.bundle, self.family = open_stage(engine, bundle, "cls", model, options)
        self.pre = self.bundle.section(ClassifierPreprocess)
        #: below this probability the classifier is not sure (the pipeline then reads both ways)
        self.thresh = self.bundle.section(ClassifierConfig).thresh
        self.batch_size = batch_size
        self._input = input_name(self.engine)

    def __call__(self, crops: Sequence[Image]) -> tuple[npt.NDArray[np.bool_], Floats]:
        flipped = np.zeros(len(crops), bool)
        probs = np.zeros(len(crops), np.float32)
        for s in range(0, len(crops), self.batch_size):
            chunk = crops[s : s + self.batch_size]
            batch = pad_batch([classifier_chw(c, self.pre) for c in chunk], self.pre.width)
            out = next(iter(self.engine.run({self._input: batch}).values()))
            p = np.asarray(out, np.float32).reshape(len(chunk), -1)
            flipped[s : s + len(chunk)] = p.argmax(1) == 1
            probs[s : s + len(chunk)] = p.max(1)
        return flipped, probs
