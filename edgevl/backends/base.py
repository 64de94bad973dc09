"""The Engine protocol, the one options type and the feed checks every backend shares.

Backends differ only behind :class:`Engine`; tasks take an Engine, never a backend-specific object.
An engine says what it runs on (``backend``, ``device``, ``providers``) and its capabilities
(``device_kind``: CPU or GPU; ``device_memory_mb()``), so callers never test a backend by name; it
is closed with :meth:`Engine.close` (a TensorRT engine frees device memory) and is a context manager.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt

from edgevl.bundle import TensorSpec
from edgevl.errors import InputError

Array = npt.NDArray[np.generic]
#: where an engine's tensors live and its kernels run
DeviceKind = Literal["cpu", "gpu"]


@runtime_checkable
class Engine(Protocol):
    """What every backend offers."""

    @property
    def inputs(self) -> tuple[TensorSpec, ...]: ...

    @property
    def outputs(self) -> tuple[TensorSpec, ...]: ...

    @property
    def backend(self) -> str:
        """The registry name it was opened with (``ort-cpu``, ``ort-cuda``, ``ort-trt``, ``tensorrt``)."""
        ...

    @property
    def device(self) -> str:
        """What actually runs it, e.g. ``CPUExecutionProvider`` or ``TensorRT 10.3 on NVIDIA Orin``."""
        ...

    @property
    def device_kind(self) -> DeviceKind:
        """``cpu`` or ``gpu``: what actually runs it (an ONNX Runtime session that fell back to its
        CPU provider says ``cpu``)."""
        ...

    @property
    def providers(self) -> list[str]:
        """The runtime's execution providers in priority order (ONNX Runtime's list, TensorRT's
        version); empty for a runtime without that notion (OpenVINO)."""
        ...

    def device_memory_mb(self) -> float | None:
        """GPU memory this engine holds, in MiB, when the engine itself can tell (TensorRT); None
        on a CPU engine or when only the process' total is known (ask nvidia-smi then)."""
        ...

    def run(self, feeds: Mapping[str, Array]) -> dict[str, Array]: ...

    def close(self) -> None:
        """Free what the engine holds (sessions, device buffers); idempotent."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class EngineBase:
    """What every engine shares: ``inputs``/``outputs`` (each backend sets ``_inputs``/``_outputs``
    when it opens the model), the context-manager plumbing (``with open_engine(...) as eng:``
    closes it) and the defaults of no providers and no device memory of its own. Each backend still
    says ``backend``, ``device`` and ``device_kind`` itself."""

    _inputs: tuple[TensorSpec, ...]
    _outputs: tuple[TensorSpec, ...]

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    @property
    def providers(self) -> list[str]:
        return []

    def device_memory_mb(self) -> float | None:
        return None

    def close(self) -> None:
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


@dataclass(frozen=True)
class TensorRTOptions:
    """The TensorRT part of :class:`EngineOptions` (``tensorrt`` backend only).

    The optimisation profile is the manifest's input ranges (:class:`edgevl.manifest.DimRange`),
    with the batch range capped to ``max_batch`` (and ``opt_batch`` as its optimum); ``dims``
    overrides the optimum of an axis by symbolic name or role (within the manifest's range).
    ``plugins``: extra plugin libraries; ``workspace``: builder memory in bytes; ``rebuild``: ignore a
    cached plan.
    """

    max_batch: int = 32
    opt_batch: int | None = None
    dims: Mapping[str, int] = field(default_factory=dict)
    plugins: tuple[str, ...] = ()
    workspace: int = 1 << 30
    rebuild: bool = False


@dataclass(frozen=True)
class OpenVinoOptions:
    """The OpenVINO part of :class:`EngineOptions` (``openvino`` backend only).

    ``precision``: ``f32`` (the bundle's numerics), ``bf16`` or ``f16`` (the CPU plugin's
    ``INFERENCE_PRECISION_HINT``), or ``auto`` (the plugin's own choice: bf16 where the CPU has
    native bf16, else f32; the OCR tasks' default, measured in docs/ocr.md); ``pinning``: pin the
    inference threads to cores (``ENABLE_CPU_PINNING``; off by default: a pinned thread cannot
    leave a core another process keeps busy); ``cache``: keep compiled models under ``$EDGEVL_HOME/openvino``;
    ``static_shapes``: compile per input shape instead of once with dynamic axes (less memory, a
    compile per new shape; see :class:`edgevl.backends.openvino.OpenVinoEngine`).
    """

    precision: str = "f32"
    pinning: bool = False
    cache: bool = True
    static_shapes: bool = False


@dataclass(frozen=True)
class EngineOptions:
    """How to open an engine: the backend, the shared part, and each backend's own part.

    ``backend``: ``ort-cpu`` (default), ``ort-cuda``, ``ort-trt`` (ONNX Runtime execution
    providers) or ``tensorrt`` (native TensorRT), see :mod:`edgevl.backends.registry`. ``threads``:
    intra-op CPU threads (0 = runtime default).

    ONNX Runtime part: ``inter_op_threads``; ``graph_optimization`` (``disable``, ``basic``,
    ``extended`` or ``all``); ``providers`` (an explicit provider list instead of the backend's);
    ``mem_pattern`` (per-input-shape memory plans; models fed many different shapes, like the OCR
    recogniser, hold much less memory without them at the same speed).

    TensorRT part: ``tensorrt`` (:class:`TensorRTOptions`). OpenVINO part: ``openvino``
    (:class:`OpenVinoOptions`). ``backend="auto"`` opens the fastest backend installed
    (:func:`edgevl.backends.registry.resolve_backend`). ``spinning``: let idle ONNX Runtime
    intra-op threads spin-wait between operators (``session.intra_op.allow_spinning``; None = the
    backend's default, see docs/ocr.md "Contention").
    """

    backend: str = "ort-cpu"
    threads: int = 0
    inter_op_threads: int = 0
    graph_optimization: str = "all"
    providers: tuple[str, ...] = ()
    mem_pattern: bool = True
    tensorrt: TensorRTOptions = field(default_factory=TensorRTOptions)
    openvino: OpenVinoOptions = field(default_factory=OpenVinoOptions)
    spinning: bool | None = None


def validate_feeds(specs: Sequence[TensorSpec], feeds: Mapping[str, Array]) -> None:
    """Check feed names, dtypes, ranks and sizes against the model's inputs.

    Each axis must lie within the manifest's range for it (``min..max``; fixed axes exactly).
    Raises :class:`InputError` naming the input, the axis and what was expected.
    """
    want = {s.name for s in specs}
    got = set(feeds)
    if want != got:
        missing, unknown = sorted(want - got), sorted(got - want)
        raise InputError(f"feeds do not match the model inputs: missing {missing}, unknown {unknown}")
    for s in specs:
        a = feeds[s.name]
        if not isinstance(a, np.ndarray):
            raise InputError(f"input {s.name!r}: expected a numpy array, got {type(a).__name__}")
        if a.dtype != np.dtype(s.dtype):
            raise InputError(f"input {s.name!r}: expected dtype {s.dtype}, got {a.dtype}")
        if a.ndim != len(s.shape):
            raise InputError(
                f"input {s.name!r}: expected rank {len(s.shape)} {list(s.shape)}, got shape {a.shape}"
            )
        for i, (d, n) in enumerate(zip(s.shape, a.shape, strict=True)):
            if isinstance(d, int) and d > 0 and d != n:
                raise InputError(
                    f"input {s.name!r}: dim {i} must be {d} (shape {list(s.shape)}), got {a.shape}"
                )
        if 0 in a.shape:
            raise InputError(f"input {s.name!r}: empty array of shape {a.shape}")
        for i, (r, n) in enumerate(zip(s.dims, a.shape, strict=False)):
            if not r.min <= n <= r.max:
                raise InputError(
                    f"input {s.name!r}: {r.role} (dim {i}) is {n}, outside the bundle's range "
                    f"{r.min}..{r.max} (shape {a.shape})"
                )
