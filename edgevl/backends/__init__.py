"""The Engine protocol: ``inputs``, ``outputs``, ``run(feeds) -> dict[str, ndarray]``.

Backends differ only behind it; tasks take an Engine, never a backend-specific object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from edgevl.bundle import Bundle, TensorSpec
from edgevl.errors import BackendError, InputError

Array = npt.NDArray[np.generic]
BACKENDS = ("ort-cpu", "ort-cuda", "ort-trt", "tensorrt")


@runtime_checkable
class Engine(Protocol):
    """What every backend offers."""

    @property
    def inputs(self) -> tuple[TensorSpec, ...]: ...

    @property
    def outputs(self) -> tuple[TensorSpec, ...]: ...

    def run(self, feeds: Mapping[str, Array]) -> dict[str, Array]: ...


@dataclass(frozen=True)
class EngineOptions:
    """How to open an engine.

    ``backend``: ``ort-cpu`` (default), ``ort-cuda``, ``ort-trt`` (ONNX Runtime execution
    providers) or ``tensorrt`` (native TensorRT). ``threads``: intra-op threads (0 = runtime
    default). ``graph_optimization``: ``disable``, ``basic``, ``extended`` or ``all``.
    ``mem_pattern``: ONNX Runtime's per-input-shape memory plans; models fed many different shapes
    (the OCR recogniser) hold much less memory without them at the same speed.
    """

    backend: str = "ort-cpu"
    threads: int = 0
    inter_op_threads: int = 0
    graph_optimization: str = "all"
    providers: tuple[str, ...] = ()
    mem_pattern: bool = True


def validate_feeds(specs: Sequence[TensorSpec], feeds: Mapping[str, Array]) -> None:
    """Check feed names, dtypes, ranks and fixed dims against the model's inputs.

    Raises :class:`InputError` naming the input and what was expected.
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


def open_engine(bundle: Bundle, role: str = "model", options: EngineOptions | None = None) -> Engine:
    """Open the bundle's model ``role`` on the backend named in ``options``."""
    opts = options or EngineOptions()
    if opts.backend.startswith("ort"):
        from edgevl.backends.ort import OrtEngine

        return OrtEngine.from_bundle(bundle, role, opts)
    if opts.backend == "tensorrt":
        from edgevl.backends.tensorrt import TensorRTEngine

        return TensorRTEngine.from_bundle(bundle, role, opts)
    raise BackendError(f"unknown backend {opts.backend!r}; choose one of {BACKENDS}")
