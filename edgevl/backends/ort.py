"""ONNX Runtime engine: CPU by default, CUDA / TensorRT execution providers when installed."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgevl.backends.base import Array, DeviceKind, EngineBase, EngineOptions, validate_feeds
from edgevl.backends.cpus import usable_cpus
from edgevl.bundle import Bundle, ModelSpec, TensorSpec, check_io
from edgevl.errors import BackendError, BundleError
from edgevl.onnxguard import inspect_onnx, run_timeout_s
from edgevl.onnxio import arg_io, load_error

#: ONNX Runtime execution providers of each ``ort-*`` backend; the first one is required
PROVIDERS: dict[str, tuple[str, ...]] = {
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


#: execution providers that run the model on a GPU (the ``ort-cuda``/``ort-trt`` backends' and the
#: other vendors'); any other provider runs on the CPU
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider", "ROCMExecutionProvider",
                 "MIGraphXExecutionProvider", "DmlExecutionProvider")


def provider_device(provider: str) -> DeviceKind:
    """What an ONNX Runtime execution provider runs on."""
    return "gpu" if provider in GPU_PROVIDERS else "cpu"


def unavailable(backend: str) -> str | None:
    """Why the ``ort-*`` backend cannot run here (its provider is missing), or None."""
    have = ort.get_available_providers()
    want = PROVIDERS[backend][0]
    if want not in have:
        return (f"{want} is not in this onnxruntime's providers {have} "
                f"(install onnxruntime-gpu with CUDA/TensorRT)")
    return None


def _session(path: Path, opts: EngineOptions | None = None) -> ort.InferenceSession:
    o = opts or EngineOptions()
    if not path.is_file():
        raise BundleError(f"{path}: ONNX file not found")
    inspect_onnx(path)  # size bombs folded at load and unbounded loops are refused before a session exists
    so = ort.SessionOptions()
    so.log_severity_level = 3
    # default: the CPUs this process may use (affinity, cgroup quota), not every core of the host
    so.intra_op_num_threads = o.threads or usable_cpus()
    if o.inter_op_threads:
        so.inter_op_num_threads = o.inter_op_threads
    so.enable_mem_pattern = o.mem_pattern
    if o.spinning is not None:
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if o.spinning else "0")
    if o.graph_optimization not in _OPT_LEVELS:
        raise BackendError(
            f"graph optimisation {o.graph_optimization!r} not in {sorted(_OPT_LEVELS)}"
        )
    so.graph_optimization_level = _OPT_LEVELS[o.graph_optimization]
    providers = list(o.providers) or list(PROVIDERS.get(o.backend, ()))
    if not providers:
        raise BackendError(f"backend {o.backend!r} is not an ONNX Runtime backend")
    available = set(ort.get_available_providers())
    if providers[0] not in available:
        raise BackendError(
            f"backend {o.backend!r} needs {providers[0]}, which this onnxruntime lacks "
            f"(available: {sorted(available)}); install onnxruntime-gpu or use ort-cpu"
        )
    try:
        sess = ort.InferenceSession(str(path), sess_options=so, providers=providers)
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
        raise load_error(path, e) from e
    got = sess.get_providers()
    if got[:1] != providers[:1]:
        raise BackendError(f"{providers[0]} was requested but ONNX Runtime runs on {got}")
    return sess


def _spec(arg: object) -> TensorSpec:
    name, dtype, shape = arg_io(arg)
    return TensorSpec(name=name, dtype=dtype, shape=shape)


class OrtEngine(EngineBase):
    """An ONNX Runtime session behind the Engine protocol, with feed validation.

    Opened from a bundle, its inputs are the manifest's (with their ranges); the session's IO must
    agree with them.
    """

    def __init__(self, path: Path | str, options: EngineOptions | None = None,
                 expected: ModelSpec | None = None) -> None:
        self.path = Path(path)
        self.options = options or EngineOptions()
        self._sess: ort.InferenceSession | None = _session(self.path, self.options)
        # a graph with data-dependent loops runs under a wall-clock limit (RunOptions.terminate)
        self._timeout = run_timeout_s() if inspect_onnx(self.path).control_flow else None
        inputs = tuple(_spec(a) for a in self._sess.get_inputs())
        outputs = tuple(_spec(a) for a in self._sess.get_outputs())
        if expected is not None:
            check_io(expected, (inputs, outputs), str(self.path))
            inputs = tuple(replace_dims(t, e) for t, e in zip(inputs, expected.inputs, strict=True))
        self._inputs, self._outputs = inputs, outputs
        self._output_names = [o.name for o in self._outputs]
        self._providers = list(self._sess.get_providers())

    @classmethod
    def from_bundle(cls, bundle: Bundle, role: str = "model",
                    options: EngineOptions | None = None) -> OrtEngine:
        return cls(bundle.model_path(role), options, expected=bundle.model(role))

    @property
    def providers(self) -> list[str]:
        return list(self._providers)

    @property
    def backend(self) -> str:
        return self.options.backend

    @property
    def device(self) -> str:
        return self._providers[0] if self._providers else "closed"

    @property
    def device_kind(self) -> DeviceKind:
        return provider_device(self._providers[0]) if self._providers else "cpu"

    def run(self, feeds: Mapping[str, Array]) -> dict[str, Array]:
        if self._sess is None:
            raise BackendError(f"{self.path}: engine is closed")
        validate_feeds(self._inputs, feeds)
        try:
            outs = self._run(dict(feeds))
        except BackendError:
            raise
        except MemoryError:
            raise BackendError(f"{self.path.name}: out of memory while running the model") from None
        except Exception as e:  # onnxruntime's Fail/RuntimeException/InvalidArgument...: the model failed
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise BackendError(f"{self.path.name}: the model failed at run time ({first[:300]})") from None
        return {n: np.asarray(v) for n, v in zip(self._output_names, outs, strict=True)}

    def _run(self, feeds: dict[str, Array]) -> list[Array]:
        assert self._sess is not None
        opts = ort.RunOptions()
        opts.log_severity_level = 4  # a failing kernel is reported once, as the BackendError, not also logged
        if self._timeout is None:
            return list(self._sess.run(self._output_names, feeds, opts))
        timer = threading.Timer(self._timeout, lambda: setattr(opts, "terminate", True))
        timer.daemon = True
        timer.start()
        try:
            return list(self._sess.run(self._output_names, feeds, opts))
        except Exception:
            if opts.terminate:
                raise BackendError(f"{self.path.name}: a run of this graph (it has loops) took over "
                                   f"{self._timeout:g} s and was stopped (EDGEVL_RUN_TIMEOUT_S sets the "
                                   "limit)") from None
            raise
        finally:
            timer.cancel()

    def close(self) -> None:
        self._sess = None


def replace_dims(actual: TensorSpec, manifest: TensorSpec) -> TensorSpec:
    """The session's tensor with the manifest's ranges (names and dtypes already agree)."""
    return TensorSpec(actual.name, actual.dtype, actual.shape, manifest.dims)
