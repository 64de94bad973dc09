"""ONNX export helpers shared by the bundle writers: export, fp16 conversion, checks.

The default exporter is torch's TorchScript-based one (``dynamo=False``): for these models it
exports in well under a second, honours ``opset_version`` exactly and takes ``dynamic_axes``.
The dynamo exporter (``dynamo=True``) also works for every tower but takes 5–10 s per model and
its down-conversion to opset 17 fails on some graphs (it then stays at opset 18).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from edgevl.errors import EdgevlError

DEFAULT_OPSET = 17  # first opset with LayerNormalization
# ops that stay fp32 in an fp16 model: normalisation and softmax statistics overflow or lose
# precision in fp16; the converter puts Cast nodes around them.
FP32_OPS = ("LayerNormalization", "Softmax", "ReduceMean", "ArgMax")


class ExportError(EdgevlError):
    """torch → ONNX export or the post-export check failed."""


def export_module(
    module: torch.nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    path: Path,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]],
    opset: int = DEFAULT_OPSET,
    dynamo: bool = False,
) -> Path:
    """Export ``module`` (in eval mode, fp32) to ``path``; checked with ``onnx.checker``."""
    if opset < 17:
        raise ExportError(f"opset {opset} < 17: LayerNormalization needs opset 17 or later")
    module = module.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if dynamo:
            names = list(input_names)
            dims = {n: {i: torch.export.Dim(f"{n}_{name}") for i, name in ax.items()}
                    for n, ax in dynamic_axes.items() if n in names}
            import inspect

            params = list(inspect.signature(module.forward).parameters)
            shapes = {params[names.index(n)]: d for n, d in dims.items()}
            torch.onnx.export(module, example_inputs, str(path), input_names=names,
                              output_names=list(output_names), opset_version=opset, dynamo=True,
                              dynamic_shapes=shapes, external_data=False, verbose=False)
        else:
            torch.onnx.export(module, example_inputs, str(path), input_names=list(input_names),
                              output_names=list(output_names), opset_version=opset, dynamo=False,
                              dynamic_axes={k: dict(v) for k, v in dynamic_axes.items()},
                              do_constant_folding=True)
    check_onnx(path)
    return path


def check_onnx(path: Path) -> None:
    """``onnx.checker`` with shape inference; ExportError with the reason."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as e:  # the checker raises several exception types
        raise ExportError(f"{path}: onnx.checker rejected the exported model: {e}") from e


def convert_fp16(src: Path, dst: Path, keep_fp32: Sequence[str] = FP32_OPS) -> Path:
    """fp16 weights and activations, fp32 inputs/outputs; ``keep_fp32`` ops stay in fp32.

    Uses ONNX Runtime's ``float16`` converter (``keep_io_types=True``): the bundle's contract
    (float32 ``pixel_values`` / embeddings) is unchanged, the casts sit inside the graph.
    """
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(str(src))
    block = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(keep_fp32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        half = convert_float_to_float16(model, keep_io_types=True, op_block_list=block)
    from onnxruntime.transformers.onnx_model import OnnxModel

    wrapped = OnnxModel(half)
    wrapped.topological_sort()  # the converter appends its input casts at the end of the graph
    onnx.save(wrapped.model, str(dst))
    check_onnx(dst)
    return dst


def ort_session(path: Path, threads: int = 0) -> object:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def ort_run(path: Path, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    sess = ort_session(path)
    out: list[np.ndarray] = sess.run(None, dict(feeds))  # type: ignore[attr-defined]
    return out


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want|: the relative error every parity check reports."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return float("inf")
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


@dataclass(frozen=True)
class ParityReport:
    role: str
    rel_error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.rel_error <= self.tolerance

    def to_dict(self) -> dict[str, object]:
        return {"role": self.role, "rel_error": self.rel_error, "tolerance": self.tolerance, "ok": self.ok}


def verify_against_torch(
    path: Path, feeds: Mapping[str, np.ndarray], want: np.ndarray, role: str, tolerance: float
) -> ParityReport:
    """Run ``path`` on ONNX Runtime and compare its first output to the torch output."""
    got = ort_run(path, feeds)[0]
    report = ParityReport(role, rel_error(got, want), tolerance)
    if not report.ok:
        raise ExportError(
            f"{path}: ONNX Runtime output differs from torch by {report.rel_error:.2e} "
            f"(tolerance {tolerance:.0e}) for the {role} model"
        )
    return report
