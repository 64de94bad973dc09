"""Native TensorRT engine behind the Engine protocol.

.. warning:: This backend has never run on TensorRT: the machines this project is developed and
   tested on have no NVIDIA GPU and no TensorRT. It is written against the TensorRT 8.5–10.x Python
   API (name-based tensor API, ``execute_async_v3``) and cuda-python, and tested against a fake
   ``tensorrt`` module and a fake CUDA layer that record every call (tests/test_tensorrt_fake.py).
   Treat the first run on a Jetson or a GPU box as its first real test.

What it does, kept thin:

- builds (or finds cached) the plan with :mod:`edgevl.backends.tensorrt.build`: one optimisation
  profile from the manifest's input ranges (the batch capped at ``TensorRTOptions.max_batch``) or an
  explicit ``profile``, the precision of the last ``edgevl engine build`` (else the bundle's);
- loads plugin libraries (``config.trt_plugins`` in the manifest, ``EDGEVL_TRT_PLUGINS``, or
  ``TensorRTOptions.plugins``) before parsing;
- selects profile 0 on its execution context, then per run: checks each input against the profile,
  ``set_input_shape``, copies inputs to device buffers (grown on demand), ``set_tensor_address`` for
  every input and output, ``execute_async_v3`` on its one CUDA stream, copies outputs back and
  synchronises the stream.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from edgevl.backends.base import Array, DeviceKind, EngineBase, EngineOptions, validate_feeds
from edgevl.backends.tensorrt.build import ensure_plan, prepare
from edgevl.backends.tensorrt.plans import choose
from edgevl.backends.tensorrt.plugins import plugin_paths
from edgevl.backends.tensorrt.profile import Profile, default_profile, outside_profile
from edgevl.backends.tensorrt.runtime import Runtime, default_runtime
from edgevl.bundle import Bundle
from edgevl.errors import BackendError, InputError

#: the engine has one optimisation profile, built from the manifest's ranges
PROFILE_INDEX = 0


class TensorRTEngine(EngineBase):
    """A TensorRT engine for one model of a bundle (see the module warning: never run on TensorRT).

    ``runtime``: the TensorRT module, CUDA layer and plugin loader to use (default: the installed
    ones, :func:`~edgevl.backends.tensorrt.runtime.default_runtime`).
    """

    def __init__(self, bundle: Bundle, role: str = "model", options: EngineOptions | None = None, *,
                 profile: Profile | None = None, runtime: Runtime | None = None) -> None:
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)
        self._context: Any = None
        self._engine: Any = None
        self._stream: Any = None
        rt = runtime or default_runtime()
        self.options = options or EngineOptions(backend="tensorrt")
        topts = self.options.tensorrt
        self.bundle, self.role = bundle, role
        spec = bundle.model(role)
        self._inputs, self._outputs = spec.inputs, spec.outputs
        self._trt, self._cuda = rt.trt, rt.cuda
        ready = prepare(rt, plugin_paths(bundle, topts.plugins))
        self._logger = ready.logger
        self.plugins = list(ready.plugins)
        self._device = (ready.gpu, ready.cc)
        self.profile = dict(profile) if profile is not None else default_profile(spec.inputs, topts)
        # graph (plugin-rewritten when plugins are loaded), precision (the last `edgevl engine build`),
        # timing cache and plan cache: edgevl.backends.tensorrt.build / .plans
        choice = choose(bundle, role, plugins=self.plugins, use_plugin_graph=bool(self.plugins))
        self.plan_path = ensure_plan(bundle, choice, self._trt, self._logger, ready.gpu, ready.cc,
                                     self.profile, self.plugins, topts.workspace, topts.rebuild).plan
        self._runtime = self._trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(self.plan_path.read_bytes())
        if self._engine is None:
            raise BackendError(
                f"{self.plan_path}: TensorRT could not deserialise the plan; delete it to rebuild")
        self._names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        trt = self._trt
        got_in = {n for n in self._names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT}
        want_in = {t.name for t in self._inputs}
        want = want_in | {t.name for t in self._outputs}
        if set(self._names) != want or got_in != want_in:
            raise BackendError(f"{self.plan_path}: engine IO {sorted(self._names)} (inputs "
                               f"{sorted(got_in)}) != manifest {sorted(want)} (inputs {sorted(want_in)})")
        self._dtype = {n: np.dtype(trt.nptype(self._engine.get_tensor_dtype(n))) for n in self._names}
        self._context = self._engine.create_execution_context()
        self._stream = self._cuda.stream()
        self._stream_handle = self._cuda.stream_handle(self._stream)
        # NvInferRuntime.h: with dynamic-shape inputs the profile "must be set ... before calling execute
        # or enqueue", and before setInputShape; on the stream every run is enqueued on, so it is ordered
        if not self._context.set_optimization_profile_async(PROFILE_INDEX, self._stream_handle):
            raise BackendError(f"{self.plan_path}: TensorRT refused optimisation profile {PROFILE_INDEX}")

    @classmethod
    def from_bundle(cls, bundle: Bundle, role: str = "model", options: EngineOptions | None = None,
                    profile: Profile | None = None, runtime: Runtime | None = None) -> TensorRTEngine:
        return cls(bundle, role, options, profile=profile, runtime=runtime)

    # ------------------------------------------------------------------ what it is

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

    @property
    def device_kind(self) -> DeviceKind:
        return "gpu"

    def device_memory_mb(self) -> float | None:
        """Activation memory + IO buffers + serialised plan size (≈ weights), in MiB (an estimate);
        None once closed."""
        if self._engine is None:
            return None
        act = getattr(self._engine, "device_memory_size_v2", None)
        if act is None:
            act = self._engine.device_memory_size
        io = sum(size for _, size in self._buffers.values())
        return float(act + io + self.plan_path.stat().st_size) / 2**20

    # ------------------------------------------------------------------ run

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
        if self._context is None:
            raise BackendError(f"{self.plan_path}: engine is closed")
        validate_feeds(self._inputs, feeds)
        hosts: dict[str, np.ndarray[Any, Any]] = {}
        for t in self._inputs:
            # TensorRT < 10 has no int64: the parser makes such inputs int32
            a = np.ascontiguousarray(feeds[t.name], dtype=self._dtype[t.name])
            why = outside_profile(self.profile, t.name, a.shape)
            if why is not None or not self._context.set_input_shape(t.name, tuple(a.shape)):
                raise InputError(
                    f"input {t.name!r} shape {a.shape} is outside the engine's optimisation profile"
                    f"{f' ({why})' if why else ''}; rebuild with a larger max_batch/dims ({self.plan_path})")
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

    def close(self) -> None:
        """Free the device buffers, the stream, the execution context and the engine (idempotent)."""
        for ptr, _ in self._buffers.values():
            with contextlib.suppress(BackendError):
                self._cuda.free(ptr)
        self._buffers.clear()
        if self._stream is not None:
            with contextlib.suppress(BackendError):
                self._cuda.destroy_stream(self._stream)
            self._stream = None
        self._context = None
        self._engine = None

    def __del__(self) -> None:
        if getattr(self, "_buffers", None) or getattr(self, "_stream", None) is not None:
            self.close()
