"""Read an ONNX file's inputs and outputs with ONNX Runtime (no graph optimisation, CPU).

A leaf module: :mod:`edgevl.bundle` (writing and ``--verify``) and :mod:`edgevl.backends.ort` both
use it, so the bundle layer never imports a backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnxruntime as ort

from edgevl.errors import BundleError

Dim = int | str
IO = tuple[tuple[tuple[str, str, tuple[Dim, ...]], ...], tuple[tuple[str, str, tuple[Dim, ...]], ...]]

ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


def arg_io(arg: Any) -> tuple[str, str, tuple[Dim, ...]]:
    """(name, numpy dtype name, shape with symbolic dims as strings) of an ORT NodeArg."""
    dtype = ORT_DTYPES.get(arg.type, arg.type)
    shape = tuple(d if isinstance(d, int) else str(d) for d in arg.shape)
    return str(arg.name), str(dtype), shape


def load_error(path: Path, e: Exception) -> BundleError:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return BundleError(f"{path.name}: not a loadable ONNX model ({first[:200]})")


def read_io(path: Path) -> IO:
    """Inputs and outputs of the ONNX file ``path``; BundleError when ONNX Runtime cannot load it."""
    from edgevl.onnxguard import inspect_onnx

    inspect_onnx(path)  # size bombs and loop bounds, before a session exists
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
        raise load_error(path, e) from e
    return tuple(arg_io(a) for a in sess.get_inputs()), tuple(arg_io(a) for a in sess.get_outputs())
