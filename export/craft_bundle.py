"""Export the CRAFT text detector (``craft_mlt_25k.pth``) to a ``text-detection`` bundle.

The graph (:class:`~edgevl_export.models.craft.CRAFTTextMap`) outputs one text map at the input's
resolution: max(region score, affinity score), clipped to 0..1, so the runtime's existing DB box
extraction (threshold, contours, box score, unclip) reads it like a DB probability map. That is
an approximation of CRAFT's own post-processing (connected components of region ∪ affinity,
filtered by the peak region score, dilated by box size): the thresholds below were set by eye on
``examples/shelf.png`` and are recorded in the manifest; docs/ocr.md compares the boxes with
PP-OCRv6's detector. Preprocess: RGB, ImageNet mean/std (CRAFT's ``normalizeMeanVariance``),
stride 32, longest side ≤ 1792 (downscale only, as PP-OCRv6's).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from edgevl_export.loaders.crnn import md5_file
from edgevl_export.loaders.files import StateDict, load_into, read_tensors
from edgevl_export.models.craft import CRAFT, CRAFTTextMap, check_craft
from edgevl_export.onnx import DEFAULT_OPSET, ParityReport, export_module, ort_run, rel_error

from edgevl.bundle import Bundle, sha256_file, write_bundle
from edgevl.errors import CheckpointError
from edgevl.tasks.ocr.sections import DetectorConfig, DetectorPreprocess, Normalization, TileSpec

TASK = "text-detection"
INPUT, OUTPUT = "image", "text_map"
TOLERANCE = 1e-4
PARITY_SHAPES = ((1, 96, 160), (2, 128, 64))
PREPROCESS = DetectorPreprocess(
    norm=Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), scale=1.0 / 255.0, color="RGB"),
    stride=32, interpolation="linear", limit_side=1792, limit_type="max",
    tile=TileSpec(size=1280, overlap=128, above=2560))
# CRAFT's defaults are low_text 0.4 / link_threshold 0.4 / text_threshold 0.7; the box score here is
# the mean of the map inside the box (DB's), lower than CRAFT's peak test, and its cores are tight
# around the characters' centres, so boxes are grown more than DB's 1.6
CONFIG = DetectorConfig(thresh=0.4, box_thresh=0.3, unclip_ratio=2.0, max_candidates=1000, min_size=3,
                        dilate=False)


def parity(model: CRAFT, onnx_path: Path) -> tuple[ParityReport, list[dict[str, Any]]]:
    g = torch.Generator().manual_seed(0)
    module = CRAFTTextMap(model).eval()
    rows, worst = [], 0.0
    for b, h, w in PARITY_SHAPES:
        x = torch.randn((b, 3, h, w), generator=g)
        with torch.no_grad():
            want = module(x).numpy()
        got = ort_run(onnx_path, {INPUT: x.numpy()})[0]
        err = rel_error(got, want)
        worst = max(worst, err)
        rows.append({"batch": b, "height": h, "width": w, "rel_error": err,
                     "max_abs": float(np.abs(np.asarray(got, np.float64) - want).max())})
    return ParityReport("model", worst, TOLERANCE), rows


def export_craft(checkpoint: Path | str, out_dir: Path | str, *, opset: int = DEFAULT_OPSET,
                 precision: str = "fp32", state_dict: StateDict | None = None, fmt: str = "torch") -> Bundle:
    if precision != "fp32":
        raise CheckpointError(f"--precision {precision}: the CRAFT export writes fp32 only")
    weights = Path(checkpoint)
    if state_dict is None:
        state_dict, _, fmt = read_tensors(weights)
    check_craft(state_dict, str(weights))
    model = CRAFT().eval()
    load_into(model, state_dict, str(weights))
    with tempfile.TemporaryDirectory(prefix="edgevl-craft-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export_module(CRAFTTextMap(model), (torch.zeros(1, 3, 64, 96),), onnx_path, input_names=[INPUT],
                      output_names=[OUTPUT], opset=opset,
                      dynamic_axes={INPUT: {0: "batch", 2: "height", 3: "width"},
                                    OUTPUT: {0: "batch", 2: "height", 3: "width"}})
        report, rows = parity(model, onnx_path)
        if not report.ok:
            raise CheckpointError(f"{weights}: the exported ONNX differs from the torch reference by "
                                  f"{report.rel_error:.2e} (tolerance {TOLERANCE:.0e})")
        return write_bundle(
            Path(out_dir), name=f"easyocr-{weights.stem}", task=TASK, models={"model": onnx_path},
            precision="fp32", preprocess=PREPROCESS, config=CONFIG,
            source={"checkpoint": weights.name, "format": fmt, "architecture": "craft-vgg16bn",
                    "sha256": sha256_file(weights), "md5": md5_file(weights)},
            extra={"opset": opset, "exported_from": "torch reference edgevl_export.models.craft",
                   "output": "max(region, affinity) clipped to 0..1, bilinear x2 to the input size",
                   "parity": [report.to_dict()], "parity_shapes": rows},
        )
