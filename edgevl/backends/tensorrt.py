"""Native TensorRT engine behind the Engine protocol.

.. warning:: This backend has never run: the machines this project is developed and tested on
   have no NVIDIA GPU and no TensorRT. It is written against the TensorRT 8.5–10.x Python API
   (name-based tensor API, ``execute_async_v3``) and cuda-python, and only its "not installed"
   error path is tested. Treat the first run on a Jetson or a GPU box as its first test.

What it does, kept thin:

- builds an engine from the bundle's ONNX with ``trt.Builder`` + ``trt.OnnxParser``, one
  optimisation profile from the manifest's input ranges (every axis' ``min/opt/max`` as the
  exporter wrote it; the batch capped at ``TensorRTOptions.max_batch``), or an explicit ``profile``;
- sets ``FP16`` for fp16 bundles and ``INT8`` (+``FP16``) for int8 bundles (explicit Q/DQ: no
  calibrator);
- caches the serialised plan in ``<bundle>/engines/`` (or ``$EDGEVL_HOME/engines`` when the
  bundle is read-only), keyed by GPU name + compute capability, TensorRT version, precision,
  profile and the ONNX file's sha256, so a bundle copied to another device rebuilds its own plan;
- loads plugin libraries (``config.trt_plugins`` in the manifest, ``EDGEVL_TRT_PLUGINS``, or the
  ``plugins`` argument) with ``ctypes`` before parsing;
- runs with ``set_input_shape`` / ``set_tensor_address`` / ``execute_async_v3`` on one CUDA stream,
  device buffers from cuda-python's runtime API, grown on demand.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgevl.backends.base import Array, EngineBase, EngineOptions, TensorRTOptions, validate_feeds
from edgevl.bundle import Bundle, TensorSpec
from edgevl.errors import BackendError, InputError
from edgevl.manifest import BackendConfig
from edgevl.trt_build import choose, ensure_plan

MIN_VERSION = (8, 5)
Profile = Mapping[str, tuple[Sequence[int], Sequence[int], Sequence[int]]]


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or BackendError saying how to get it."""
    try:
        import tensorrt as trt
    except ImportError as e:
        raise BackendError(
            "tensorrt is not installed: pip install 'edgevl[tensorrt]' on a machine with an NVIDIA GPU "
            "and CUDA (on a Jetson it ships with JetPack), or use --backend ort-cpu / ort-cuda"
        ) from e
    version = _version_tuple(str(getattr(trt, "__version__", "0")))
    if version < MIN_VERSION:
        raise BackendError(f"TensorRT {trt.__version__} is older than 8.5, which this backend needs")
    return trt


def import_cudart() -> Any:
    """cuda-python's runtime module (``cuda.bindings.runtime`` from 12.6, ``cuda.cudart`` before)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as e:
            raise BackendError("cuda-python is not installed: pip install 'edgevl[tensorrt]'") from e
    return cudart


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3]) or (0,)


class _Cuda:
    """The few CUDA runtime calls the engine needs; every call is checked."""

    def __init__(self) -> None:
        self.rt = import_cudart()

    def check(self, result: Any) -> Any:
        err, *rest = result if isinstance(result, tuple) else (result,)
        if err != self.rt.cudaError_t.cudaSuccess:
            name = self.rt.cudaGetErrorName(err)[1]
            raise BackendError(f"CUDA call failed: {name.decode() if isinstance(name, bytes) else name}")
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else tuple(rest)

    def device(self) -> tuple[str, str]:
        """(GPU name, compute capability) of the current device."""
        dev = self.check(self.rt.cudaGetDevice())
        props = self.check(self.rt.cudaGetDeviceProperties(dev))
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        return name.strip("\x00 "), f"{props.major}.{props.minor}"

    def malloc(self, nbytes: int) -> int:
        return int(self.check(self.rt.cudaMalloc(max(nbytes, 1))))

    def free(self, ptr: int) -> None:
        self.check(self.rt.cudaFree(ptr))

    def stream(self) -> Any:
        return self.check(self.rt.cudaStreamCreate())

    def h2d(self, dst: int, src: np.ndarray[Any, Any], stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self.check(self.rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, stream))

    def d2h(self, dst: np.ndarray[Any, Any], src: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self.check(self.rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, stream))

    def sync(self, stream: Any) -> None:
        self.check(self.rt.cudaStreamSynchronize(stream))


def load_plugins(paths: Sequence[Path | str]) -> list[str]:
    """dlopen plugin libraries globally so TensorRT's plugin registry sees their creators."""
    loaded = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise BackendError(f"{path}: TensorRT plugin library not found")
        try:
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
        except OSError as e:
            raise BackendError(f"{path}: cannot load TensorRT plugin library ({e})") from e
        loaded.append(str(path))
    return loaded


def plugin_paths(bundle: Bundle, extra: Sequence[Path | str] = ()) -> list[Path]:
    """Plugins named by the bundle (``config.trt_plugins``), the environment and the caller."""
    out = [bundle.file(rel) for rel in BackendConfig.from_manifest(bundle.manifest.config).trt_plugins]
    env = os.environ.get("EDGEVL_TRT_PLUGINS")
    if env:
        out += [Path(p) for p in env.split(os.pathsep) if p]
    return out + [Path(p) for p in extra]


def default_profile(specs: Sequence[TensorSpec], options: TensorRTOptions | None = None) -> dict[str, Any]:
    """One optimisation profile (min, opt, max) per input, from the manifest's input ranges.

    Every axis takes the exporter's ``min/opt/max``; the batch's max is capped at
    ``options.max_batch`` (its opt is ``opt_batch``, default that cap); ``options.dims`` moves an
    axis' opt (by symbolic name or role) within its range. Nothing is guessed: an input without
    ranges (never in a schema-2 bundle) is a BackendError.
    """
    o = options or TensorRTOptions()
    out: dict[str, Any] = {}
    for s in specs:
        if len(s.dims) != len(s.shape):
            raise BackendError(f"input {s.name!r} has no ranges in the manifest; rebuild the bundle")
        lo, opt, hi = [], [], []
        for d, r in zip(s.shape, s.dims, strict=True):
            a, b, c = r.min, r.opt, r.max
            if r.role == "batch" and a != c:
                c = max(a, min(c, o.max_batch))
                b = max(a, min(c, o.opt_batch or c))
            want = o.dims.get(str(d), o.dims.get(r.role))
            if want is not None and a != c:
                if not a <= want <= c:
                    raise InputError(f"dims {r.role}={want}: outside the bundle's range {a}..{c} "
                                     f"for input {s.name!r}")
                b = want
            lo.append(a)
            opt.append(b)
            hi.append(c)
        out[s.name] = (tuple(lo), tuple(opt), tuple(hi))
    return out


class TensorRTEngine(EngineBase):
    """A TensorRT engine for one model of a bundle (see the module warning: never run here)."""

    def __init__(self, bundle: Bundle, role: str = "model", options: EngineOptions | None = None, *,
                 profile: Profile | None = None) -> None:
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)
        trt = import_tensorrt()
        self.options = options or EngineOptions(backend="tensorrt")
        topts = self.options.tensorrt
        self.bundle, self.role = bundle, role
        spec = bundle.model(role)
        self._inputs, self._outputs = spec.inputs, spec.outputs
        self._trt = trt
        self._cuda = _Cuda()
        self._logger = trt.Logger(trt.Logger.WARNING)
        self.plugins = load_plugins(plugin_paths(bundle, topts.plugins))
        trt.init_libnvinfer_plugins(self._logger, "")
        gpu, cc = self._device = self._cuda.device()
        prof = dict(profile) if profile is not None else default_profile(spec.inputs, topts)
        # graph (plugin-rewritten when plugins are loaded), precision (the last `edgevl engine build`),
        # timing cache and plan cache: edgevl.trt_build
        choice = choose(bundle, role, plugins=self.plugins, use_plugin_graph=bool(self.plugins))
        self.plan_path = ensure_plan(bundle, choice, trt, self._logger, gpu, cc, prof, self.plugins,
                                     topts.workspace, topts.rebuild).plan
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(self.plan_path.read_bytes())
        if self._engine is None:
            raise BackendError(
                f"{self.plan_path}: TensorRT could not deserialise the plan; delete it to rebuild")
        self._context = self._engine.create_execution_context()
        self._stream = self._cuda.stream()
        # cudaStream_t → the integer handle TensorRT's binding takes
        self._stream_handle = int(self._stream) if hasattr(self._stream, "__int__") else int(
            self._stream.getPtr())
        self._names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._is_input = {n: self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in self._names}
        self._dtype = {n: np.dtype(trt.nptype(self._engine.get_tensor_dtype(n))) for n in self._names}
        want = {t.name for t in (*self._inputs, *self._outputs)}
        if set(self._names) != want:
            raise BackendError(
                f"{self.plan_path}: engine IO {sorted(self._names)} != manifest {sorted(want)}")

    @classmethod
    def from_bundle(cls, bundle: Bundle, role: str = "model", options: EngineOptions | None = None,
                    profile: Profile | None = None) -> TensorRTEngine:
        return cls(bundle, role, options, profile=profile)

    # ------------------------------------------------------------------ run

    @property
    def providers(self) -> list[str]:
        return [f"TensorRT {self._trt.__version__}"]

    @property
    def backend(self) -> str:
        return "tensorrt"

    @property
    def device(self) -> str:
        gpu, cc = self._device
        return f"TensorRT {self._trt.__version__} on {gpu} (sm {cc})"

    def _buffer(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                self._cuda.free(ptr)
            ptr, size = self._cuda.malloc(nbytes), nbytes
            self._buffers[name] = (ptr, size)
        self._context.set_tensor_address(name, ptr)
        return ptr

    def run(self, feeds: Mapping[str, Array]) -> dict[str, Array]:
        if getattr(self, "_context", None) is None:
            raise BackendError(f"{self.plan_path}: engine is closed")
        validate_feeds(self._inputs, feeds)
        hosts: dict[str, np.ndarray[Any, Any]] = {}
        for t in self._inputs:
            # TensorRT < 10 has no int64: the parser makes such inputs int32
            a = np.ascontiguousarray(feeds[t.name], dtype=self._dtype[t.name])
            if not self._context.set_input_shape(t.name, tuple(a.shape)):
                raise InputError(
                    f"input {t.name!r} shape {a.shape} is outside the engine's optimisation profile; "
                    f"rebuild with a larger max_batch/dims ({self.plan_path})")
            hosts[t.name] = a
            self._cuda.h2d(self._buffer(t.name, a.nbytes), a, self._stream)
        outs: dict[str, np.ndarray[Any, Any]] = {}
        for t in self._outputs:
            shape = tuple(self._context.get_tensor_shape(t.name))
            if any(d < 0 for d in shape):
                raise BackendError(f"output {t.name!r} has a data-dependent shape {shape}; not supported")
            outs[t.name] = np.empty(shape, dtype=self._dtype[t.name])
            self._buffer(t.name, outs[t.name].nbytes)
        if not self._context.execute_async_v3(self._stream_handle):
            raise BackendError(f"TensorRT execution failed ({self.plan_path})")
        for t in self._outputs:
            self._cuda.d2h(outs[t.name], self._buffers[t.name][0], self._stream)
        self._cuda.sync(self._stream)
        del hosts  # the host copies stay alive until the stream is done with them
        return {t.name: outs[t.name].astype(np.dtype(t.dtype), copy=False) for t in self._outputs}

    def device_memory_mb(self) -> float:
        """Activation memory + IO buffers + serialised plan size (≈ weights), in MiB (an estimate)."""
        act = getattr(self._engine, "device_memory_size_v2", None)
        if act is None:
            act = self._engine.device_memory_size
        io = sum(size for _, size in self._buffers.values())
        return float(act + io + self.plan_path.stat().st_size) / 2**20

    def close(self) -> None:
        """Free the device buffers, the execution context and the engine (idempotent)."""
        for ptr, _ in self._buffers.values():
            with contextlib.suppress(BackendError):
                self._cuda.free(ptr)
        self._buffers.clear()
        self._context = None
        self._engine = None

    def __del__(self) -> None:  # pragma: no cover - needs a GPU
        if getattr(self, "_buffers", None):
            self.close()
