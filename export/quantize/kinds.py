"""Per bundle kind: where calibration feeds come from and what the guard compares.

Every kind drives the runtime task itself (with an injected engine), so calibration and the
guard see exactly what users run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgevl.backends import Engine, EngineOptions, open_engine
from edgevl.bundle import Bundle
from edgevl.errors import CalibrationError, EdgevlError
from edgevl.tasks.encoders.sections import TokenizerSpec
from edgevl.tasks.registry import task_names, task_spec
from edgevl.tasks.spec import TaskSpec

from .data import (
    IMAGE_SUFFIXES,
    TEXT_SUFFIXES,
    Feeds,
    RecordingEngine,
    Split,
    list_images,
    read_texts,
    read_word_crops,
    split,
)
from .guard import (
    Check,
    GuardResult,
    GuardThresholds,
    at_least,
    box_agreement,
    embedding_checks,
    top1_agreement,
    word_accuracy,
)

Engines = Mapping[str, Engine]


def _wrap(e: Exception, what: str) -> CalibrationError:
    return CalibrationError(f"calibration data does not fit the model ({what}): {e}")


def _pick(items: Sequence[Any], idx: Sequence[int]) -> list[Any]:
    return [items[i] for i in idx]


class Kind:
    """Base: fp32 engines per role, recorded calibration feeds, held-out evaluation."""

    roles: tuple[str, ...] = ("model",)

    def __init__(self, bundle: Bundle, thresholds: GuardThresholds, options: EngineOptions) -> None:
        self.bundle = bundle
        self.t = thresholds
        self.options = options
        self.fp32: dict[str, Engine] = {r: open_engine(bundle, r, options) for r in bundle.manifest.models}
        self._ref: Any = None

    def engines(self, override: Mapping[str, Engine] | None = None) -> dict[str, Engine]:
        return {**self.fp32, **(override or {})}

    def record(self, role: str, run: Callable[[Engine], object], what: str) -> list[Feeds]:
        rec = RecordingEngine(self.fp32[role])
        try:
            run(rec)
        except CalibrationError:
            raise
        except EdgevlError as e:
            raise _wrap(e, what) from e
        if not rec.feeds:
            raise CalibrationError(f"{what}: the calibration data produced no model input")
        return rec.feeds

    def calibration(self, role: str) -> list[Feeds]:
        raise NotImplementedError

    def pad_values(self, role: str) -> dict[str, int | float]:
        """What pads a shorter calibration input (see :func:`pad_to_common_shape`); 0 otherwise."""
        cfg = self.bundle.manifest.config
        has_tokenizer = "max_length" in cfg or "context_length" in cfg
        return {"input_ids": self.bundle.section(TokenizerSpec).pad_id if has_tokenizer else 0}

    def outputs(self, engines: Engines) -> Any:
        raise NotImplementedError

    def compare(self, ref: Any, got: Any) -> GuardResult:
        raise NotImplementedError

    def reference(self) -> Any:
        if self._ref is None:
            self._ref = self.outputs(self.fp32)
        return self._ref

    def evaluate(self, override: Mapping[str, Engine]) -> GuardResult:
        return self.compare(self.reference(), self.outputs(self.engines(override)))

    def describe(self) -> dict[str, Any]:
        return {}


class TextEmbedding(Kind):
    roles = ("text",)

    def __init__(self, bundle: Bundle, data: Path, samples: int, holdout: int,
                 thresholds: GuardThresholds, options: EngineOptions) -> None:
        super().__init__(bundle, thresholds, options)
        self.texts = read_texts(data)
        self.split: Split = split(len(self.texts), samples, holdout)

    def calibration(self, role: str) -> list[Feeds]:
        from edgevl.tasks.encoders import TextEncoder

        texts = _pick(self.texts, self.split.calibration)
        return self.record(role, lambda e: TextEncoder(self.bundle, engine=e, batch_size=16).encode(texts),
                           "text encoder")

    def outputs(self, engines: Engines) -> Any:
        from edgevl.tasks.encoders import TextEncoder

        return TextEncoder(self.bundle, engine=engines["text"], batch_size=32).encode(
            _pick(self.texts, self.split.holdout))

    def compare(self, ref: Any, got: Any) -> GuardResult:
        return GuardResult(tuple(embedding_checks(ref, got, self.t)))

    def describe(self) -> dict[str, Any]:
        return {"texts": len(self.texts), "calibration": len(self.split.calibration),
                "holdout": len(self.split.holdout)}


class Clip(Kind):
    """Image tower from a folder of images; text tower too when the folder holds a text file."""

    def __init__(self, bundle: Bundle, data: Path, samples: int, holdout: int,
                 thresholds: GuardThresholds, options: EngineOptions) -> None:
        super().__init__(bundle, thresholds, options)
        self.images = list_images(data, "images")
        self.isplit = split(len(self.images), samples, holdout)
        texts = sorted(p for p in data.iterdir() if p.suffix.lower() in TEXT_SUFFIXES)
        self.texts = read_texts(data) if texts else []
        self.tsplit = split(len(self.texts), samples, holdout) if len(self.texts) >= 2 else None
        self.roles = ("image", "text") if self.tsplit else ("image",)

    def calibration(self, role: str) -> list[Feeds]:
        from edgevl.tasks.encoders import ImageEncoder, TextEncoder

        if role == "image":
            imgs = _pick(self.images, self.isplit.calibration)
            return self.record(role, lambda e: ImageEncoder(self.bundle, engine=e, batch_size=8).encode(imgs),
                               "CLIP image encoder")
        assert self.tsplit is not None
        texts = _pick(self.texts, self.tsplit.calibration)
        return self.record(role, lambda e: TextEncoder(self.bundle, engine=e, batch_size=16).encode(texts),
                           "CLIP text encoder")

    def outputs(self, engines: Engines) -> Any:
        from edgevl.tasks.encoders import ImageEncoder, TextEncoder

        img = ImageEncoder(self.bundle, engine=engines["image"], batch_size=8).encode(
            _pick(self.images, self.isplit.holdout))
        if not self.texts:
            return img, None, None
        enc = TextEncoder(self.bundle, engine=engines["text"], batch_size=32)
        held = enc.encode(_pick(self.texts, self.tsplit.holdout)) if self.tsplit else None
        labels = enc.encode(self.texts[:256])  # the zero-shot label set
        return img, held, labels

    def compare(self, ref: Any, got: Any) -> GuardResult:
        checks: list[Check] = embedding_checks(ref[0], got[0], self.t, "image_")
        if ref[1] is not None:
            checks += embedding_checks(ref[1], got[1], self.t, "text_")
        if ref[2] is not None:
            checks.append(at_least("zero_shot_top1_agreement",
                                   top1_agreement(ref[0], ref[2], got[0], got[2]), self.t.min_top1_agreement))
        return GuardResult(tuple(checks))

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"images": len(self.images), "image_calibration": len(self.isplit.calibration),
                             "image_holdout": len(self.isplit.holdout), "texts": len(self.texts)}
        if self.tsplit:
            d.update(text_calibration=len(self.tsplit.calibration), text_holdout=len(self.tsplit.holdout))
        return d


class Detector(Kind):
    def __init__(self, bundle: Bundle, data: Path, samples: int, holdout: int,
                 thresholds: GuardThresholds, options: EngineOptions) -> None:
        super().__init__(bundle, thresholds, options)
        self.images = list_images(data, "images")
        self.split = split(len(self.images), samples, holdout)

    def _detector(self, e: Engine) -> Any:
        from edgevl.tasks.ocr import TextDetector

        return TextDetector(engine=e, bundle=self.bundle)

    def calibration(self, role: str) -> list[Feeds]:
        imgs = _pick(self.images, self.split.calibration)

        def run(e: Engine) -> None:
            det = self._detector(e)
            for p in imgs:
                det(p)
        return self.record(role, run, "text detector")

    def outputs(self, engines: Engines) -> Any:
        det = self._detector(engines["model"])
        return [np.asarray(det(p)[0]) for p in _pick(self.images, self.split.holdout)]

    def compare(self, ref: Any, got: Any) -> GuardResult:
        f1 = box_agreement(ref, got, self.t.box_iou)
        return GuardResult((at_least("box_agreement_f1", f1, self.t.min_box_agreement),),
                           {"fp32_boxes": float(sum(len(r) for r in ref)),
                            "int8_boxes": float(sum(len(g) for g in got))})

    def describe(self) -> dict[str, Any]:
        return {"images": len(self.images), "calibration": len(self.split.calibration),
                "holdout": len(self.split.holdout)}


class Recognizer(Kind):
    def __init__(self, bundle: Bundle, data: Path, samples: int, holdout: int,
                 thresholds: GuardThresholds, options: EngineOptions) -> None:
        super().__init__(bundle, thresholds, options)
        self.crops, self.labels = read_word_crops(data)
        self.split = split(len(self.crops), samples, holdout)

    def _reader(self, e: Engine) -> Any:
        from edgevl.tasks.ocr import TextRecognizer

        return TextRecognizer(engine=e, bundle=self.bundle)

    def calibration(self, role: str) -> list[Feeds]:
        crops = _pick(self.crops, self.split.calibration)
        return self.record(role, lambda e: self._reader(e).read(crops), "text recogniser")

    def outputs(self, engines: Engines) -> Any:
        return [r.text for r in self._reader(engines["model"]).read(_pick(self.crops, self.split.holdout))]

    def compare(self, ref: Any, got: Any) -> GuardResult:
        agree = float(np.mean([a == b for a, b in zip(ref, got, strict=True)]))
        if self.labels is None:
            return GuardResult((at_least("word_agreement", agree, self.t.min_agreement),))
        labels = _pick(self.labels, self.split.holdout)
        a32, a8 = word_accuracy(ref, labels), word_accuracy(got, labels)
        return GuardResult((at_least("word_accuracy_change", a8 - a32, -self.t.max_accuracy_drop),),
                           {"fp32_word_accuracy": a32, "int8_word_accuracy": a8, "word_agreement": agree})

    def describe(self) -> dict[str, Any]:
        return {"crops": len(self.crops), "labelled": self.labels is not None,
                "calibration": len(self.split.calibration), "holdout": len(self.split.holdout)}


class Orientation(Kind):
    def __init__(self, bundle: Bundle, data: Path, samples: int, holdout: int,
                 thresholds: GuardThresholds, options: EngineOptions) -> None:
        super().__init__(bundle, thresholds, options)
        self.crops, _ = read_word_crops(data)
        self.split = split(len(self.crops), samples, holdout)

    def _run(self, e: Engine, paths: Sequence[Path]) -> Any:
        from edgevl.tasks.ocr import AngleClassifier
        from edgevl.vision.io import read_image

        return AngleClassifier(engine=e, bundle=self.bundle)([read_image(p) for p in paths])[0]

    def calibration(self, role: str) -> list[Feeds]:
        crops = _pick(self.crops, self.split.calibration)
        return self.record(role, lambda e: self._run(e, crops), "orientation classifier")

    def outputs(self, engines: Engines) -> Any:
        return self._run(engines["model"], _pick(self.crops, self.split.holdout))

    def compare(self, ref: Any, got: Any) -> GuardResult:
        return GuardResult((at_least("label_agreement", float(np.mean(ref == got)), self.t.min_agreement),))


def kinds() -> dict[str, TaskSpec]:
    """The quantisable tasks (their spec names a calibration kind), in registration order."""
    return {n: s for n in task_names() if (s := task_spec(n)) is not None and s.quantize_kind}


def kind_class(spec: TaskSpec) -> type[Kind]:
    """The :class:`Kind` a task spec names (``"module:Class"``)."""
    assert spec.quantize_kind is not None
    module, _, name = spec.quantize_kind.partition(":")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, Kind)):
        raise CalibrationError(f"task {spec.name!r}: {spec.quantize_kind} is not a calibration kind")
    return cls


def make_kind(bundle: Bundle, data: Path, samples: int, holdout: int, thresholds: GuardThresholds,
              options: EngineOptions) -> Kind:
    task = bundle.manifest.task
    quantisable = kinds()
    spec = quantisable.get(task)
    if spec is None:
        raise CalibrationError(f"{bundle.path}: task {task!r} has no int8 calibration; "
                               f"supported: {list(quantisable)}")
    wants_text = spec.calibration_texts
    expected = spec.calibration_data
    if not data.exists():
        raise CalibrationError(f"{data}: calibration data not found (a {task} bundle expects "
                               f"{expected})")
    if not wants_text and data.is_file():
        kind = "a text file" if data.suffix.lower() in TEXT_SUFFIXES else "a file"
        raise CalibrationError(f"{data}: is {kind}, but a {task} bundle is calibrated on "
                               f"{expected}")
    if wants_text and data.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in data.iterdir()):
        raise CalibrationError(f"{data}: is a folder of images, but a {task} bundle is calibrated on "
                               f"{expected}")
    made: Kind = kind_class(spec)(bundle, data, samples, holdout, thresholds, options)  # type: ignore[call-arg]
    return made
