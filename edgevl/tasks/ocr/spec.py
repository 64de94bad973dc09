"""The OCR family's registration: the ``text-detection``, ``text-orientation`` and
``text-recognition`` task specs (sections, input-range rules, benchmark inputs, int8 calibration
kind) and which pipeline stage each task is.

Input ranges the writers derive: detector sides ``stride`` / ``limit_side`` / ``max(tile.size,
tile.above)`` rounded to the stride (8192 untiled); recogniser width ``min_width`` / 320 /
``max_width`` on the width multiple, height fixed (fixed-size recognisers: each side over the
sizes' sides, the largest size optimal); classifier sides fixed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from edgevl.manifest import Range, round_up
from edgevl.tasks.ocr.sections import (
    ClassifierConfig,
    ClassifierPreprocess,
    DetectorConfig,
    DetectorPreprocess,
    RecognizerConfig,
    RecognizerPreprocess,
)
from edgevl.tasks.spec import JSON, Array, BundleLike, TaskFamily, TaskSpec

DETECTION = "text-detection"
ORIENTATION = "text-orientation"
RECOGNITION = "text-recognition"
#: the OCR pipeline's stages (model roles of a PP-OCR family: one bundle each) and their tasks
OCR_STAGES = ("det", "cls", "rec")
STAGE_TASKS = {"det": DETECTION, "cls": ORIENTATION, "rec": RECOGNITION}
#: a recogniser line width ``edgevl bench`` feeds (a typical crop), within the bundle's range
TEXT_LINE_WIDTH = 320
#: the detector side ``edgevl bench`` feeds when ``limit_side`` is 0 (full resolution)
DETECTOR_OPT_SIDE = 960


def _detection(roles: Collection[str], pre: JSON, cfg: JSON) -> tuple[Any, ...]:
    return DetectorPreprocess.from_manifest(pre), DetectorConfig.from_manifest(cfg)


def _detection_ranges(pre: JSON, cfg: JSON) -> dict[str, Range]:
    det = DetectorPreprocess.from_manifest(pre)
    hi = det.max_side()
    opt = min(hi, round_up(det.limit_side, det.stride)) if det.limit_side else min(hi, DETECTOR_OPT_SIDE)
    return {"height": (det.stride, opt, hi), "width": (det.stride, opt, hi)}


def _orientation(roles: Collection[str], pre: JSON, cfg: JSON) -> tuple[Any, ...]:
    return ClassifierPreprocess.from_manifest(pre), ClassifierConfig.from_manifest(cfg)


def _orientation_ranges(pre: JSON, cfg: JSON) -> dict[str, Range]:
    cls = ClassifierPreprocess.from_manifest(pre)
    return {"height": (cls.height, cls.height, cls.height), "width": (cls.width, cls.width, cls.width)}


def _recognition(roles: Collection[str], pre: JSON, cfg: JSON) -> tuple[Any, ...]:
    return RecognizerPreprocess.from_manifest(pre), RecognizerConfig.from_manifest(cfg)


def _recognition_ranges(pre: JSON, cfg: JSON) -> dict[str, Range]:
    rec = RecognizerPreprocess.from_manifest(pre)
    if rec.sizes:  # fixed sizes: each side ranges over the sizes' sides, the largest size optimal
        hs, ws = [h for h, _ in rec.sizes], [w for _, w in rec.sizes]
        big = max(rec.sizes, key=lambda s: s[0] * s[1])
        return {"height": (min(hs), big[0], max(hs)), "width": (min(ws), big[1], max(ws))}
    lo = round_up(rec.min_width, rec.width_multiple)
    hi = round_up(rec.max_width, rec.width_multiple)
    opt = min(max(TEXT_LINE_WIDTH, lo), hi) // rec.width_multiple * rec.width_multiple
    return {"height": (rec.height, rec.height, rec.height), "width": (lo, max(lo, opt), hi)}


def _recognition_files(cfg: JSON) -> list[tuple[str, str]]:
    return [("config.charset", RecognizerConfig.from_manifest(cfg).charset)] if "charset" in cfg else []


# benchmark inputs: the tasks' own preprocessing (imported when used: cv2 stays out of the loader)
def _bench_detection(bundle: BundleLike, role: str, paths: Sequence[Path]) -> list[Array]:
    from edgevl.tasks.ocr.prep import bench_detection

    return bench_detection(bundle, role, paths)


def _bench_orientation(bundle: BundleLike, role: str, paths: Sequence[Path]) -> list[Array]:
    from edgevl.tasks.ocr.prep import bench_orientation

    return bench_orientation(bundle, role, paths)


def _bench_recognition(bundle: BundleLike, role: str, paths: Sequence[Path]) -> list[Array]:
    from edgevl.tasks.ocr.prep import bench_recognition

    return bench_recognition(bundle, role, paths)


KINDS = "edgevl_export.quantize.kinds"

FAMILY = TaskFamily("ocr", (
    TaskSpec(DETECTION, ("model",), (DetectorPreprocess,), (DetectorConfig,), _detection, _detection_ranges,
             bench_inputs={"model": _bench_detection}, quantize_kind=f"{KINDS}:Detector",
             calibration_data="a folder of images"),
    TaskSpec(RECOGNITION, ("model",), (RecognizerPreprocess,), (RecognizerConfig,), _recognition,
             _recognition_ranges, files=_recognition_files, bench_inputs={"model": _bench_recognition},
             bench_pads_width=True, quantize_kind=f"{KINDS}:Recognizer",
             calibration_data="a folder of word crops (optional labels.tsv: file<TAB>word)"),
    TaskSpec(ORIENTATION, ("model",), (ClassifierPreprocess,), (ClassifierConfig,), _orientation,
             _orientation_ranges, bench_inputs={"model": _bench_orientation}, bench_pads_width=True,
             quantize_kind=f"{KINDS}:Orientation", calibration_data="a folder of word crops"),
))
