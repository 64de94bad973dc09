"""ONNX Runtime engine: CPU by default, CUDA / TensorRT execution providers when installed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgevl.backends import Array, EngineOptions, validate_feeds
from edgevl.bundle import Bundle, ModelSpec, TensorSpec, check_io
from edgevl.errors import BackendError, BundleError

_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}
_PROVIDERS = {
    "ort-cpu": ("CPUExecutionProvider",),
    "ort-cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "ort-trt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}
_OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def _spec(arg: Any) -> TensorSpec:
    dtype = _ORT_DTYPES.get(arg.type, arg.type)
    shape = tuple(d if isinstance(d, int) else str(d) for d in arg.shape)
    return TensorSpec(name=arg.name, dtype=dtype, shape=shape)


def _session(path: Path, opts: EngineOptions | None = None) -> ort.InferenceSession:
    o = opts or EngineOptions()
    if not path.is_file():
        raise BundleError(f"{path}: ONNX file not found")
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if o.threads:
        so.intra_op_num_threads = o.threads
    if o.inter_op_threads:
        so.inter_op_num_threads = o.inter_op_threads
    so.enable_mem_pattern = o.mem_pattern
    if o.graph_optimization not in _OPT_LEVELS:
        raise BackendError(
            f"graph optimisation {o.graph_optimization!r} not in {sorted(_OPT_LEVELS)}"
        )
    so.graph_optimization_level = _OPT_LEVELS[o.graph_optimization]
    providers = list(o.providers) or list(_PROVIDERS.get(o.backend, ()))
    if not providers:
        raise BackendError(f"backend {o.backend!r} is not an ONNX Runtime backend")
    available = set(ort.get_available_providers())
    if providers[0] not in available:
        raise BackendError(
            f"backend {o.backend!r} needs {providers[0]}, which this onnxruntime lacks "
            f"(available: {sorted(available)}); install onnxruntime-gpu or use ort-cpu"
        )
    try:
        return ort.InferenceSession(str(path), sess_options=so, providers=providers)
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BundleError(f"{path}: not a loadable ONNX model ({first[:200]})") from e


def session_io(path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Inputs and outputs of an ONNX file (BundleError when it is not ONNX)."""
    sess = _session(path, EngineOptions(graph_optimization="disable"))
    return tuple(_spec(a) for a in sess.get_inputs()), tuple(_spec(a) for a in sess.get_outputs())


class OrtEngine:
    """An ONNX Runtime session behind the Engine protocol, with feed validation."""

    def __init__(self, path: Path | str, options: EngineOptions | None = None,
                 expected: ModelSpec | None = None) -> None:
        self.path = Path(path)
        self.options = options or EngineOptions()
        self._sess = _session(self.path, self.options)
        self._inputs = tuple(_spec(a) for a in self._sess.get_inputs())
        self._outputs = tuple(_spec(a) for a in self._sess.get_outputs())
        if expected is not None:
            check_io(expected, (self._inputs, self._outputs), str(self.path))
        self._output_names = [o.name for o in self._outputs]

    @classmethod
    def from_bundle(cls, bundle: Bundle, role: str = "model",
                    options: EngineOptions | None = None) -> OrtEngine:
        return cls(bundle.model_path(role), options, expected=bundle.model(role))

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    @property
    def providers(self) -> list[str]:
        return list(self._sess.get_providers())

    def run(self, feeds: Mapping[str, Array]) -> dict[str, Array]:
        validate_feeds(self._inputs, feeds)
        outs = self._sess.run(self._output_names, dict(feeds))
        return {n: np.asarray(v) for n, v in zip(self._output_names, outs, strict=True)}
