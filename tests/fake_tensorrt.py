"""A fake ``tensorrt`` module and a fake CUDA layer that record every call, so the TensorRT backend's
run and build paths are tested on a machine without TensorRT or a GPU.

The fakes keep the parts of TensorRT's and CUDA's contracts the backend relies on, and fail loudly
where the real ones would fail (or silently compute garbage):

- builder: the network comes from the ONNX file (inputs, outputs, one layer per node, named after
  it); a dynamic input without a profile shape, or a profile with min > opt or opt > max, is an
  error; the "plan" is JSON of the graph path, IO, profile and builder flags, which the fake runtime
  deserialises (anything else deserialises to None, as TensorRT returns for a bad plan);
- execution context: the optimisation profile must be selected before input shapes are set; a
  shape outside the selected profile is refused (``set_input_shape`` returns False); every IO tensor
  needs an address of a live allocation large enough for it before ``execute_async_v3``;
- copies and kernels are asynchronous: they are queued on their stream and happen at ``sync`` (a
  result read before synchronising is not there; a buffer freed or a host array replaced before
  then is noticed); an unknown stream handle makes ``execute_async_v3`` return False;
- "device memory" is bytearrays keyed by fake pointers; execution runs the ONNX graph with ONNX
  Runtime on the bytes at the bound addresses, so results are the model's real outputs.

Every call lands in one ordered ``log`` of tuples, e.g. ``("set_input_shape", "x", (3, 4))``.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from edgevl.backends.tensorrt.runtime import Runtime, version_tuple

Log = list[tuple[Any, ...]]


class FakeStream:
    def __init__(self, handle: int) -> None:
        self.handle = handle
        self.pending: list[Callable[[], None]] = []


class FakeCuda:
    """The CudaApi of edgevl.backends.tensorrt.cuda, on host bytearrays."""

    def __init__(self, log: Log, gpu: tuple[str, str] = ("NVIDIA Fake Orin", "8.7")) -> None:
        self.log, self.gpu = log, gpu
        self.memory: dict[int, bytearray] = {}
        self.streams: dict[int, FakeStream] = {}
        self._next_ptr = 0x10000
        self._next_stream = 0x7000

    def device(self) -> tuple[str, str]:
        self.log.append(("device",))
        return self.gpu

    def malloc(self, nbytes: int) -> int:
        assert nbytes > 0, "cudaMalloc of 0 bytes"
        ptr = self._next_ptr
        self._next_ptr += (nbytes + 0xFFF) // 0x1000 * 0x1000 + 0x1000
        self.memory[ptr] = bytearray(nbytes)
        self.log.append(("malloc", nbytes, ptr))
        return ptr

    def free(self, ptr: int) -> None:
        assert ptr in self.memory, f"cudaFree of {ptr:#x}: not allocated (double free?)"
        del self.memory[ptr]
        self.log.append(("free", ptr))

    def stream(self) -> FakeStream:
        s = FakeStream(self._next_stream)
        self._next_stream += 1
        self.streams[s.handle] = s
        self.log.append(("stream_create", s.handle))
        return s

    def stream_handle(self, stream: FakeStream) -> int:
        return stream.handle

    def destroy_stream(self, stream: FakeStream) -> None:
        assert stream.handle in self.streams, "stream destroyed twice"
        del self.streams[stream.handle]
        self.log.append(("stream_destroy", stream.handle))

    def _live(self, stream: Any) -> FakeStream:
        assert isinstance(stream, FakeStream) and stream.handle in self.streams, f"dead stream: {stream}"
        return stream

    def h2d(self, dst: int, src: np.ndarray[Any, Any], stream: Any) -> None:
        s = self._live(stream)
        assert src.flags.c_contiguous
        assert src.nbytes <= len(self.memory[dst]), "host→device copy past the end of the allocation"
        self.log.append(("h2d", dst, src.nbytes, s.handle))
        host = weakref.ref(src)  # the copy must not keep the host array alive: the caller has to

        def copy() -> None:  # the host array is read when the stream gets there, not now
            a = host()
            assert a is not None, "host array freed before the stream copied it to the device"
            self.memory[dst][:a.nbytes] = a.tobytes()

        s.pending.append(copy)

    def d2h(self, dst: np.ndarray[Any, Any], src: int, stream: Any) -> None:
        s = self._live(stream)
        assert dst.nbytes <= len(self.memory[src]), "device→host copy past the end of the allocation"
        self.log.append(("d2h", src, dst.nbytes, s.handle))

        def copy() -> None:
            np.copyto(dst, np.frombuffer(bytes(self.memory[src][:dst.nbytes]), dst.dtype).reshape(dst.shape))

        s.pending.append(copy)

    def sync(self, stream: Any) -> None:
        s = self._live(stream)
        self.log.append(("sync", s.handle))
        for op in s.pending:
            op()
        s.pending.clear()


class FakeLogger:
    WARNING = "WARNING"

    def __init__(self, severity: str) -> None:
        self.severity = severity


@dataclass
class FakeLayer:
    name: str
    precision: Any = None
    num_outputs: int = 1
    output_types: dict[int, Any] = field(default_factory=dict)

    def set_output_type(self, index: int, dtype: Any) -> None:
        self.output_types[index] = dtype


@dataclass
class FakeNetwork:
    flags: int
    graph: str = ""
    inputs: list[SimpleNamespace] = field(default_factory=list)
    outputs: list[SimpleNamespace] = field(default_factory=list)
    layers: list[FakeLayer] = field(default_factory=list)

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    def get_input(self, i: int) -> SimpleNamespace:
        return self.inputs[i]

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def get_layer(self, i: int) -> FakeLayer:
        return self.layers[i]


class FakeOptimizationProfile:
    def __init__(self, log: Log) -> None:
        self.log = log
        self.shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {}

    def set_shape(self, name: str, lo: tuple[int, ...], opt: tuple[int, ...], hi: tuple[int, ...]) -> None:
        assert len(lo) == len(opt) == len(hi), "profile shapes of different ranks"
        assert all(a <= b <= c for a, b, c in zip(lo, opt, hi, strict=True)), f"bad profile {lo} {opt} {hi}"
        self.log.append(("profile.set_shape", name, tuple(lo), tuple(opt), tuple(hi)))
        self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))


class FakeTimingCache:
    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def serialize(self) -> bytes:
        return self.blob


class FakeBuilderConfig:
    def __init__(self, log: Log) -> None:
        self.log = log
        self.flags: set[str] = set()
        self.pools: dict[str, int] = {}
        self.profiles: list[FakeOptimizationProfile] = []
        self.timing_cache: FakeTimingCache | None = None

    def set_memory_pool_limit(self, pool: str, size: int) -> None:
        self.log.append(("config.set_memory_pool_limit", pool, size))
        self.pools[pool] = size

    def set_flag(self, flag: str) -> None:
        self.log.append(("config.set_flag", flag))
        self.flags.add(flag)

    def create_timing_cache(self, blob: bytes) -> FakeTimingCache:
        self.log.append(("config.create_timing_cache", bytes(blob)))
        return FakeTimingCache(bytes(blob))

    def set_timing_cache(self, cache: FakeTimingCache, ignore_mismatch: bool) -> bool:
        self.log.append(("config.set_timing_cache", ignore_mismatch))
        self.timing_cache = cache
        return True

    def add_optimization_profile(self, profile: FakeOptimizationProfile) -> int:
        self.log.append(("config.add_optimization_profile",))
        self.profiles.append(profile)
        return len(self.profiles) - 1


class FakeOnnxParser:
    def __init__(self, trt: FakeTensorRT, network: FakeNetwork) -> None:
        self.trt, self.network = trt, network
        self.errors: list[str] = []

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, i: int) -> str:
        return self.errors[i]

    def parse_from_file(self, path: str) -> bool:
        import onnx
        from onnx.helper import tensor_dtype_to_np_dtype

        self.trt.log.append(("parser.parse_from_file", path))
        if self.trt.parse_errors:
            self.errors = list(self.trt.parse_errors)
            return False
        g = onnx.load(path, load_external_data=False).graph
        inits = {t.name for t in g.initializer}

        def io(v: Any) -> SimpleNamespace:
            dtype = np.dtype(tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type))
            if dtype == np.int64 and version_tuple(self.trt.__version__) < (10,):
                dtype = np.dtype(np.int32)  # TensorRT < 10 has no int64 tensors
            return SimpleNamespace(name=v.name, dtype=dtype.name)

        self.network.graph = path
        self.network.inputs = [io(v) for v in g.input if v.name not in inits]
        self.network.outputs = [io(v) for v in g.output]
        self.network.layers = [FakeLayer(n.name or f"node_{i}") for i, n in enumerate(g.node)]
        return True


class FakeBuilder:
    def __init__(self, trt: FakeTensorRT) -> None:
        self.trt = trt
        self.network: FakeNetwork | None = None
        self.config: FakeBuilderConfig | None = None

    def create_network(self, flags: int) -> FakeNetwork:
        self.trt.log.append(("builder.create_network", flags))
        self.network = FakeNetwork(flags)
        return self.network

    def create_builder_config(self) -> FakeBuilderConfig:
        self.config = FakeBuilderConfig(self.trt.log)
        return self.config

    def create_optimization_profile(self) -> FakeOptimizationProfile:
        return FakeOptimizationProfile(self.trt.log)

    def build_serialized_network(self, network: FakeNetwork, config: FakeBuilderConfig) -> bytes | None:
        self.trt.log.append(("builder.build_serialized_network",))
        if not self.trt.build_ok:
            return None
        assert len(config.profiles) == 1, "the backend builds exactly one optimisation profile"
        if config.timing_cache is not None:
            config.timing_cache.blob += b"+timings"  # kernel timings land in the cache it was given
        prof = config.profiles[0].shapes
        for t in network.inputs:
            assert t.name in prof, f"dynamic input {t.name!r} without a profile"
        rename = self.trt.rename_in_plan
        plan = {"graph": network.graph, "flags": sorted(config.flags),
                "io": [[t.name, "INPUT", t.dtype] for t in network.inputs]
                + [[rename.get(t.name, t.name), "OUTPUT", t.dtype] for t in network.outputs],
                "profiles": [{k: [list(s) for s in v] for k, v in prof.items()}]}
        return json.dumps(plan).encode()


class FakeEngine:
    def __init__(self, trt: FakeTensorRT, plan: dict[str, Any]) -> None:
        self.trt = trt
        self.plan = plan
        self.io = [(n, m, np.dtype(d)) for n, m, d in plan["io"]]
        self.profiles = [{k: tuple(tuple(s) for s in v) for k, v in p.items()} for p in plan["profiles"]]
        self.device_memory_size_v2 = 3 << 20
        self._session: Any = None

    @property
    def num_io_tensors(self) -> int:
        return len(self.io)

    def get_tensor_name(self, i: int) -> str:
        return str(self.io[i][0])

    def get_tensor_mode(self, name: str) -> str:
        return next(m for n, m, _ in self.io if n == name)

    def get_tensor_dtype(self, name: str) -> str:
        return next(d for n, _, d in self.io if n == name).name

    def create_execution_context(self) -> FakeContext:
        ctx = FakeContext(self)
        self.trt.contexts.append(ctx)
        return ctx

    def session(self) -> Any:
        import onnxruntime as ort

        if self._session is None:
            self._session = ort.InferenceSession(self.plan["graph"], providers=["CPUExecutionProvider"])
        return self._session


_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
               "tensor(float16)": np.float16}


class FakeContext:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine, self.trt = engine, engine.trt
        self.profile: int | None = None
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}

    def _inputs(self) -> list[tuple[str, np.dtype[Any]]]:
        return [(n, d) for n, m, d in self.engine.io if m == "INPUT"]

    def _outputs(self) -> list[tuple[str, np.dtype[Any]]]:
        return [(n, d) for n, m, d in self.engine.io if m == "OUTPUT"]

    def set_optimization_profile_async(self, index: int, stream: int) -> bool:
        self.trt.log.append(("context.set_optimization_profile_async", index, stream))
        if not 0 <= index < len(self.engine.profiles) or stream not in self.trt.cuda.streams:
            return False
        self.profile = index
        return True

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        self.trt.log.append(("context.set_input_shape", name, tuple(shape)))
        assert self.profile is not None, "set_input_shape before an optimisation profile was selected"
        lo, _, hi = self.engine.profiles[self.profile][name]
        ok = len(shape) == len(lo) and all(a <= n <= c for a, n, c in zip(lo, shape, hi, strict=True))
        if ok:
            self.shapes[name] = tuple(shape)
        return ok

    def _run(self, feeds: dict[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        sess = self.engine.session()
        want = {i.name: _ORT_DTYPES[i.type] for i in sess.get_inputs()}
        outs = sess.run(None, {k: v.astype(want[k]) for k, v in feeds.items()})
        return {o.name: np.asarray(v) for o, v in zip(sess.get_outputs(), outs, strict=True)}

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        if name in dict(self._inputs()):
            return self.shapes[name]
        assert len(self.shapes) == len(self._inputs()), "output shape asked before every input shape was set"
        zeros = {n: np.zeros(self.shapes[n], d) for n, d in self._inputs()}
        return tuple(self._run(zeros)[name].shape)

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        self.trt.log.append(("context.set_tensor_address", name, ptr))
        assert ptr in self.trt.cuda.memory, f"address {ptr:#x} of {name!r} is not a live allocation"
        self.addresses[name] = ptr
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        self.trt.log.append(("context.execute_async_v3", stream_handle))
        cuda = self.trt.cuda
        stream = cuda.streams.get(stream_handle)
        if stream is None:
            return False
        assert {n for n, _ in self._inputs()} == set(self.shapes), "an input shape was never set"
        assert {n for n, _, _ in self.engine.io} == set(self.addresses), "an IO tensor has no address"
        ins = {n: (self.addresses[n], self.shapes[n], d) for n, d in self._inputs()}
        outs = {n: (self.addresses[n], d) for n, d in self._outputs()}

        def kernel() -> None:
            feeds = {}
            for n, (ptr, shape, d) in ins.items():
                count = int(np.prod(shape))
                assert count * d.itemsize <= len(cuda.memory[ptr]), f"input {n!r} buffer too small"
                feeds[n] = np.frombuffer(bytes(cuda.memory[ptr][:count * d.itemsize]), d).reshape(shape)
            results = self._run(feeds)
            for n, (ptr, d) in outs.items():
                data = results[n].astype(d).tobytes()
                assert len(data) <= len(cuda.memory[ptr]), f"output {n!r} buffer too small"
                cuda.memory[ptr][:len(data)] = data

        stream.pending.append(kernel)
        return True


class FakeRuntime:
    def __init__(self, trt: FakeTensorRT) -> None:
        self.trt = trt

    def deserialize_cuda_engine(self, blob: bytes) -> FakeEngine | None:
        self.trt.log.append(("runtime.deserialize_cuda_engine", len(blob)))
        try:
            plan = json.loads(bytes(blob))
        except ValueError:
            return None
        engine = FakeEngine(self.trt, plan)
        self.trt.engines.append(engine)
        return engine


class FakeTensorRT:
    """Stands in for the ``tensorrt`` module (only what the backend uses)."""

    Logger = FakeLogger
    float32 = "float32"
    NetworkDefinitionCreationFlag = SimpleNamespace(EXPLICIT_BATCH=0)
    MemoryPoolType = SimpleNamespace(WORKSPACE="WORKSPACE")
    BuilderFlag = SimpleNamespace(FP16="FP16", INT8="INT8",
                                  OBEY_PRECISION_CONSTRAINTS="OBEY_PRECISION_CONSTRAINTS")
    TensorIOMode = SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")

    def __init__(self, cuda: FakeCuda, version: str = "10.3.0") -> None:
        self.__version__ = version
        self.cuda = cuda
        self.log = cuda.log
        self.builders: list[FakeBuilder] = []
        self.engines: list[FakeEngine] = []
        self.contexts: list[FakeContext] = []
        self.parse_errors: list[str] = []
        self.build_ok = True
        self.rename_in_plan: dict[str, str] = {}

    def init_libnvinfer_plugins(self, logger: FakeLogger, namespace: str) -> bool:
        self.log.append(("init_libnvinfer_plugins", namespace))
        return True

    def Builder(self, logger: FakeLogger) -> FakeBuilder:
        b = FakeBuilder(self)
        self.builders.append(b)
        return b

    def OnnxParser(self, network: FakeNetwork, logger: FakeLogger) -> FakeOnnxParser:
        return FakeOnnxParser(self, network)

    def Runtime(self, logger: FakeLogger) -> FakeRuntime:
        return FakeRuntime(self)

    @staticmethod
    def nptype(dtype: str) -> type[Any]:
        return np.dtype(dtype).type


@dataclass
class Fakes:
    """A Runtime made of fakes, and handles on them for the assertions."""

    runtime: Runtime
    trt: FakeTensorRT
    cuda: FakeCuda
    log: Log
    dlopen_fails: set[str] = field(default_factory=set)

    def calls(self, name: str) -> list[tuple[Any, ...]]:
        """The logged calls called ``name``, without their names."""
        return [c[1:] for c in self.log if c[0] == name]

    def names(self) -> list[str]:
        return [c[0] for c in self.log]


def make_fakes(version: str = "10.3.0") -> Fakes:
    log: Log = []
    cuda = FakeCuda(log)
    trt = FakeTensorRT(cuda, version)
    fails: set[str] = set()

    def dlopen(path: str) -> object:
        log.append(("dlopen", path))
        if Path(path).name in fails:
            raise OSError(f"{path}: invalid ELF header")
        return object()

    return Fakes(Runtime(trt, cuda, dlopen), trt, cuda, log, fails)
