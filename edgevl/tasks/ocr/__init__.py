"""OCR on PP-OCR-style models: text detection (DB), 0/180° orientation, CTC recognition, pipeline.

The OCR task family. Its parts, one module each: ``sections`` (the typed manifest sections and
their defaults), ``spec`` (the registration: task names, input-range rules, benchmark inputs, int8
calibration kind), ``prep`` (the input preprocessing the tasks and the benchmark share), ``stage``
(opening a stage's bundle and engine), ``detector``, ``classifier``, ``recognizer``, ``pipeline``
and ``results``.

Every task takes an :class:`~edgevl.backends.Engine` plus the bundle's typed sections
(preprocessing, thresholds, charset); by default they are opened from the bundles of an embedded
model family (``model="ppocrv6"``, ``"ppocrv5"`` or ``"ppocrv4"``;
:data:`edgevl.models.ppocr.DEFAULT_MODEL`). Results are frozen objects: :class:`OcrResult` (lines +
:class:`Timings`) and :class:`CropsResult`.

The classes are imported on first use (``from edgevl.tasks.ocr import OcrPipeline`` works as
always), so the manifest loader can read this family's sections without loading OpenCV or a backend.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgevl.tasks.ocr.classifier import AngleClassifier as AngleClassifier
    from edgevl.tasks.ocr.detector import SMALL_TEXT_PX as SMALL_TEXT_PX
    from edgevl.tasks.ocr.detector import TextDetector as TextDetector
    from edgevl.tasks.ocr.detector import small_text as small_text
    from edgevl.tasks.ocr.pipeline import CASCADE_BELOW_CROPS as CASCADE_BELOW_CROPS
    from edgevl.tasks.ocr.pipeline import CASCADE_BELOW_PHOTOS as CASCADE_BELOW_PHOTOS
    from edgevl.tasks.ocr.pipeline import CASCADE_MAX_ASPECT as CASCADE_MAX_ASPECT
    from edgevl.tasks.ocr.pipeline import OcrPipeline as OcrPipeline
    from edgevl.tasks.ocr.recognizer import TextRecognizer as TextRecognizer
    from edgevl.tasks.ocr.results import CropsResult as CropsResult
    from edgevl.tasks.ocr.results import OcrResult as OcrResult
    from edgevl.tasks.ocr.results import Reading as Reading
    from edgevl.tasks.ocr.results import TextLine as TextLine
    from edgevl.tasks.ocr.results import Timings as Timings
    from edgevl.tasks.ocr.results import reading_order as reading_order

_WHERE = {
    "AngleClassifier": "classifier", "SMALL_TEXT_PX": "detector", "TextDetector": "detector",
    "small_text": "detector", "CASCADE_BELOW_CROPS": "pipeline", "CASCADE_BELOW_PHOTOS": "pipeline",
    "CASCADE_MAX_ASPECT": "pipeline", "OcrPipeline": "pipeline", "TextRecognizer": "recognizer",
    "CropsResult": "results", "OcrResult": "results", "Reading": "results", "TextLine": "results",
    "Timings": "results", "reading_order": "results",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
