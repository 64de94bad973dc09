"""Opening one OCR stage (detector, classifier or recogniser): its bundle, by model family or as
given, its engine, and which family it belongs to.

The model-name walk: the caller (``edgevl ocr``, :class:`~edgevl.tasks.ocr.OcrPipeline`) resolves
the name once to an :class:`~edgevl.models.ppocr.OcrModel`; each stage opens that family's bundle
for its stage (:func:`edgevl.models.ppocr.default_bundle`, built on first use) and then its engine.
A bundle handed in is identified once, here (:func:`edgevl.models.ppocr.family_of`), so the
pipeline compares the stages' families without going back to their manifests.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from edgevl.backends import Engine, EngineOptions, OpenVinoOptions, open_engine
from edgevl.bundle import Bundle
from edgevl.errors import BundleError
from edgevl.tasks.ocr.spec import STAGE_TASKS

if TYPE_CHECKING:
    from edgevl.models.ppocr import OcrModel


def open_stage(engine: Engine | None, bundle: Bundle | None, stage: str, model: OcrModel | str | None,
               options: EngineOptions | None) -> tuple[Engine, Bundle, str | None]:
    """The engine and bundle of ``stage`` (``det``, ``cls``, ``rec``) and the model family they come
    from (None: a bundle of no PP-OCR family, which goes with any)."""
    from edgevl.models.ppocr import default_bundle, family_of, ocr_model

    family: str | None
    if bundle is None:
        m = ocr_model(model)
        bundle, family = default_bundle(stage, m), m.name
    else:
        family = family_of(bundle)
    task = STAGE_TASKS[stage]
    if bundle.manifest.task != task:
        raise BundleError(f"{bundle.path}: task {bundle.manifest.task!r}, expected {task!r}")
    if engine is None:
        # every photo gives new input shapes: ORT's per-shape memory plans only hold memory (peak RSS
        # 1.0 -> 0.65 GB on a shelf photo, same speed within noise)
        # no options: the fastest backend installed, and on OpenVINO its fastest precision (bf16
        # where the CPU has it: as many catalogue words as f32 on the shelf photos, docs/ocr.md)
        opts = options or EngineOptions(backend="auto", openvino=OpenVinoOptions(precision="auto"))
        if stage == "det":  # OpenVINO: one shape per photo, compiled static it holds ~0.35 GB less
            opts = replace(opts, openvino=replace(opts.openvino, static_shapes=True))
        if opts.spinning is None:  # ORT: idle threads sleep; spinning cost 1.5x at load (docs/ocr.md)
            opts = replace(opts, spinning=False)
        engine = open_engine(bundle, "model", replace(opts, mem_pattern=False))
    return engine, bundle, family


def input_name(engine: Engine) -> str:
    """The name of a one-input model's input; BundleError otherwise."""
    if len(engine.inputs) != 1:
        raise BundleError(f"expected a model with one input, got {[t.name for t in engine.inputs]}")
    return engine.inputs[0].name
