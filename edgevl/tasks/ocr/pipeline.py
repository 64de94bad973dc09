"""The OCR pipeline: detect, orient and read the text of a photo (:class:`OcrPipeline`), or read
word crops (:meth:`OcrPipeline.read_crops`), with an optional stronger recogniser re-reading the
uncertain lines (the cascade)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgevl.backends import EngineOptions
from edgevl.bundle import Bundle
from edgevl.errors import BundleError, InputError
from edgevl.tasks.ocr.classifier import AngleClassifier
from edgevl.tasks.ocr.detector import TextDetector
from edgevl.tasks.ocr.recognizer import TextRecognizer
from edgevl.tasks.ocr.results import (
    Clock,
    CropsResult,
    OcrResult,
    Reading,
    TextLine,
    Timings,
    reading_order,
    respaced,
)
from edgevl.vision.geometry import crop_quad, rotate90, rotate180
from edgevl.vision.io import Image, as_image

if TYPE_CHECKING:
    from edgevl.models.ppocr import OcrModel

#: default cascade thresholds (a first reading below this confidence is re-read by the cascade
#: recogniser): chosen on the STR set and the shelf photos, docs/ocr.md
CASCADE_BELOW_CROPS = 0.9
CASCADE_BELOW_PHOTOS = 0.6
#: the cascade re-reads only crops at most this many times wider than tall (docs/ocr.md)
CASCADE_MAX_ASPECT = 6.0


class OcrPipeline:
    """Detect, orient and read the text of a photo: ``OcrPipeline()(image) -> OcrResult``.

    ``model`` is the model family whose bundles the stages not given are opened from (a name,
    ``ppocrv6``, ``ppocrv5``, ``ppocrv4``…, or the :class:`~edgevl.models.ppocr.OcrModel` a caller
    already resolved; default: the family of a stage given, else
    :data:`edgevl.models.ppocr.DEFAULT_MODEL`).
    The detector is opened on first use: :meth:`read_crops` never loads it.

    Vertical text: a crop at least ``vertical_ratio`` times taller than wide is laid flat (rotated
    90° counter-clockwise) and the 0/180° classifier picks the direction; when the classifier is
    unsure (probability < its threshold) and the first reading's confidence is below
    ``reread_below``, the other direction is read too and the reading with the better recogniser
    confidence is kept. ``vertical="both"`` always reads both directions. ``cls_horizontal``: run
    the classifier on horizontal crops too (they are flipped only when it is sure).
    """

    def __init__(self, detector: TextDetector | None = None, classifier: AngleClassifier | None = None,
                 recognizer: TextRecognizer | None = None, *, options: EngineOptions | None = None,
                 use_cls: bool = True, vertical: str = "auto", vertical_ratio: float = 1.5,
                 min_score: float = 0.5, reread_below: float = 0.5, cls_horizontal: bool = True,
                 model: OcrModel | str | None = None, rec: str | Path | None = None,
                 rec_cascade: str | Path | TextRecognizer | None = None,
                 cascade_below: float | None = None) -> None:
        if vertical not in ("auto", "both"):
            raise InputError(f"vertical must be 'auto' or 'both', got {vertical!r}")
        if recognizer is not None and rec is not None:
            raise InputError("give the recogniser as recognizer= or rec=, not both")
        if cascade_below is not None and not 0.0 <= cascade_below <= 1.0:
            raise InputError(f"cascade_below must be in [0, 1], got {cascade_below}")
        from edgevl.models.ppocr import ocr_model

        # the model family, resolved once: named, else the family of a stage given (None: default)
        family = model if model is not None else _family(detector, classifier, recognizer)
        self._family = None if family is None else ocr_model(family)
        self.model = None if self._family is None else self._family.name
        self.options = options
        self._detector = detector
        self.classifier = classifier if classifier is not None else (
            AngleClassifier(options=options, model=self._family) if use_cls else None)
        if recognizer is None:
            recognizer = (TextRecognizer(options=options, rec=rec) if rec is not None
                          else TextRecognizer(options=options, model=self._family))
        self.recognizer = recognizer
        _check_family(self._detector, self.classifier, self.recognizer)
        #: the stronger recogniser that re-reads uncertain lines (None: no cascade)
        self.cascade: TextRecognizer | None = None
        if isinstance(rec_cascade, TextRecognizer):
            self.cascade = rec_cascade
        elif rec_cascade is not None:
            self.cascade = TextRecognizer(options=options, rec=rec_cascade)
        #: a first reading whose confidence is below this is re-read by the cascade recogniser (None:
        #: the default for this call: CASCADE_BELOW_CROPS or CASCADE_BELOW_PHOTOS, docs/ocr.md)
        self.cascade_below = cascade_below
        #: crops wider than this times their height are not re-read (SVTRv2's widest input is 4:1
        #: with 32 output frames: longer lines are squashed; docs/ocr.md)
        self.cascade_max_aspect = CASCADE_MAX_ASPECT
        self.vertical = vertical
        self.vertical_ratio = vertical_ratio
        self.min_score = min_score
        self.reread_below = reread_below
        self.cls_horizontal = cls_horizontal

    @property
    def detector(self) -> TextDetector:
        """The text detector, opened on first use."""
        if self._detector is None:
            self._detector = TextDetector(options=self.options, model=self._family)
            _check_family(self._detector, self.classifier, self.recognizer)
        return self._detector

    @property
    def detector_loaded(self) -> bool:
        return self._detector is not None

    def read_crops(self, crops: Sequence[Image | str | Any]) -> CropsResult:
        """Read word crops that may stand vertically (the STR task with orientation handling).

        A crop ``vertical_ratio`` times taller than wide is laid flat and its direction chosen as
        in the pipeline; other crops are read as they are unless the classifier is sure they are
        upside down.
        """
        t0 = time.perf_counter()
        imgs = [as_image(c, f"crop {i}") for i, c in enumerate(crops)]
        clock = Clock()
        below = CASCADE_BELOW_CROPS if self.cascade_below is None else self.cascade_below
        readings, _ = self._read(imgs, clock, below)
        return CropsResult(tuple(readings), Timings(cls=clock.cls, rec=clock.rec,
                                                    total=time.perf_counter() - t0, reads=clock.reads,
                                                    rec_columns=clock.columns, cascaded=clock.cascaded,
                                                    cascade=clock.cascade_time))

    def _read(self, raw: list[Image], tm: Clock,
              below: float | None = None) -> tuple[list[Reading], list[bool]]:
        t1 = time.perf_counter()
        crops: list[Image] = []
        vertical: list[bool] = []
        for c in raw:
            v = c.shape[0] >= self.vertical_ratio * c.shape[1]
            crops.append(rotate90(c, clockwise=False) if v else c)
            vertical.append(v)
        # which crops to read, and in which direction(s)
        flipped = np.zeros(len(crops), bool)
        sure = np.zeros(len(crops), bool)
        if self.classifier is not None and crops:
            cls_idx = [i for i in range(len(crops)) if vertical[i] or self.cls_horizontal]
            if cls_idx:
                f, pr = self.classifier([crops[i] for i in cls_idx])
                flipped[cls_idx] = f
                sure[cls_idx] = pr >= self.classifier.thresh
        t2 = time.perf_counter()
        tm.cls += t2 - t1
        # first read: the classifier's choice (a horizontal crop is flipped only when it is sure)
        first = [rotate180(c) if flipped[i] and (sure[i] or vertical[i]) else c
                 for i, c in enumerate(crops)]
        jobs: list[tuple[int, Image]] = list(enumerate(first))
        # vertical crops whose direction is uncertain: the other direction too, when the first
        # reading is not already confident (or always, with vertical="both")
        second = [i for i in range(len(crops)) if vertical[i] and (self.vertical == "both" or not sure[i])]
        best: list[Reading] = []
        if self.vertical == "both":
            jobs += [(i, rotate180(first[i])) for i in second]
            second = []
        readings, columns = self.recognizer.read_counted([c for _, c in jobs]) if jobs else ([], 0)
        best = readings[: len(crops)]
        seen = list(first)  # the image each best reading came from
        for (i, img), r in zip(jobs[len(crops) :], readings[len(crops) :], strict=True):
            if r.score > best[i].score:
                best[i], seen[i] = r, img
        again = [i for i in second if best[i].score < self.reread_below]
        # a horizontal crop the classifier turned over is read as it stands too, keeping the more
        # confident reading: the 0/180 classifier is sure and wrong on some tilted or small words
        again += [i for i in range(len(crops)) if not vertical[i] and first[i] is not crops[i]]
        if again:
            flips = [rotate180(first[i]) for i in again]
            more, cols = self.recognizer.read_counted(flips)
            for i, img, r in zip(again, flips, more, strict=True):
                if r.score > best[i].score:
                    best[i], seen[i] = r, img
            columns += cols
        t3 = time.perf_counter()
        tm.rec += t3 - t2
        tm.reads += len(jobs) + len(again)
        tm.columns += columns
        if self.cascade is not None and below is not None:
            best = self._cascade(best, seen, below, tm)
            tm.cascade_time += time.perf_counter() - t3
        return best, vertical

    def _cascade(self, best: list[Reading], seen: list[Image], below: float, tm: Clock) -> list[Reading]:
        """Re-read the crops whose first reading's confidence is below ``below`` and that are at most
        ``cascade_max_aspect`` times wider than tall (as read, laid flat) with the cascade
        recogniser, in the direction the first reading chose; its reading replaces the first one
        unless it is empty. The two recognisers' confidences are not comparable (SVTRv2 gives
        0.9-0.97 where PP-OCRv6 gives 1.0 on the same clean word), so they are not compared."""
        assert self.cascade is not None
        idx = [i for i, r in enumerate(best)
               if r.score < below and seen[i].shape[1] <= self.cascade_max_aspect * seen[i].shape[0]]
        if not idx:
            return best
        more, cols = self.cascade.read_counted([seen[i] for i in idx])
        out = list(best)
        spaces = " " in self.cascade.charset
        for i, r in zip(idx, more, strict=True):
            if r.text:
                # a recogniser without a space class (SVTRv2) glues words: the first reading's spaces
                out[i] = r if spaces else respaced(r, best[i].text)
        tm.cascaded += len(idx)
        tm.columns += cols
        return out

    def __call__(self, image: Image | str | Any) -> OcrResult:
        img = as_image(image)
        detector = self.detector
        clock = Clock()
        t0 = time.perf_counter()
        quads, _ = detector(img)
        t1 = time.perf_counter()
        crops = [crop_quad(img, q) for q in quads]
        t_crop = time.perf_counter() - t1
        below = CASCADE_BELOW_PHOTOS if self.cascade_below is None else self.cascade_below
        best, vertical = self._read(crops, clock, below)
        lines: list[TextLine] = []
        keep = [i for i in range(len(quads)) if best[i].text.strip() and best[i].score >= self.min_score]
        for i in reading_order(quads[keep]) if keep else []:
            k = keep[i]
            q = quads[k]
            quad = tuple((float(x), float(y)) for x, y in q)
            lines.append(TextLine(quad, best[k].text, best[k].score, vertical[k]))  # type: ignore[arg-type]
        tm = Timings(det=t1 - t0, cls=clock.cls, rec=clock.rec, total=time.perf_counter() - t0,
                     boxes=len(quads), reads=clock.reads, crop=t_crop, rec_columns=clock.columns,
                     cascaded=clock.cascaded, cascade=clock.cascade_time)
        return OcrResult(tuple(lines), tm)


def _family(*stages: Any) -> str | None:
    """The model family of the first stage given that has one (None: none, use the default)."""
    for st in stages:
        fam = getattr(st, "family", None) if st is not None else None
        if fam is not None:
            return str(fam)
    return None


def _check_family(*stages: Any) -> None:
    """All stages must come from one model family: a PP-OCRv5 classifier's or detector's settings are
    not tuned for another family's recogniser. BundleError names the bundle that differs (a stage
    of no family, such as a standalone recogniser, goes with any)."""
    seen: dict[str, Bundle] = {}
    for st in stages:
        fam = getattr(st, "family", None) if st is not None else None
        b = getattr(st, "bundle", None)
        if fam is None or not isinstance(b, Bundle):
            continue
        if seen and fam not in seen:
            other = next(iter(seen.items()))
            raise BundleError(f"{b.path}: a {fam} bundle, but {other[1].path} is {other[0]}; "
                              "the detector, classifier and recogniser must come from one model")
        seen.setdefault(fam, b)
