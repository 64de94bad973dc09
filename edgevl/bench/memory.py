"""A memory estimate for one benchmark configuration, made before any input is allocated.

inputs + outputs (exact, from the resolved shapes) + activations: the graph's largest intermediate
tensor at those shapes (ONNX shape inference; no weights are read) times :data:`LIVE_FACTOR`, since
an operator's input and output, and often a residual, are alive together. It is an estimate, not a
bound: its job is to refuse ``--batch 2000 --dim seq=256`` on a MiniLM (12 GiB of attention scores
per layer) before the machine starts swapping, not to predict the peak RSS to the megabyte.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgevl.bundle import Bundle, TensorSpec
from edgevl.errors import InputError

LIVE_FACTOR = 3
GiB = float(1 << 30)


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of one configuration: feeds, outputs and the activation estimate (None: unknown)."""

    batch: int
    inputs: int
    outputs: int
    activations: int | None

    @property
    def total(self) -> int:
        return self.inputs + self.outputs + (self.activations or 0)

    def describe(self) -> str:
        act = "unknown" if self.activations is None else f"{self.activations / GiB:.2f} GiB"
        return (f"{self.total / GiB:.2f} GiB (inputs {self.inputs / GiB:.2f}, "
                f"outputs {self.outputs / GiB:.2f}, activations {act})")


def nbytes(dtype: str, shape: Sequence[int]) -> int:
    """Bytes of an array (Python ints: no overflow for absurd shapes)."""
    try:
        item = np.dtype(dtype).itemsize
    except TypeError:
        item = 4
    return item * math.prod(int(d) for d in shape)


def largest_activation(model_path: Path, shapes: Mapping[str, Sequence[int]]) -> int | None:
    """Bytes of the largest intermediate tensor when the graph inputs have ``shapes``; None when
    ONNX (a build-side package) is missing or shape inference cannot tell."""
    try:
        import onnx
        from onnx import helper, shape_inference
    except ImportError:  # pragma: no cover - onnx is a dependency, but the runtime can do without
        return None
    try:
        model = onnx.load(str(model_path), load_external_data=False)
        for inp in model.graph.input:
            if inp.name not in shapes:
                continue
            dims = inp.type.tensor_type.shape.dim
            for d, v in zip(dims, shapes[inp.name], strict=False):
                d.ClearField("dim_param")
                d.dim_value = int(v)
        inferred = shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # any failure of a best-effort estimate means "unknown"
        return None
    best = 0
    for vi in inferred.graph.value_info:
        t = vi.type.tensor_type
        if not t.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        if any(d < 0 for d in dims):
            continue
        try:
            item = np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type)).itemsize
        except (KeyError, TypeError, ValueError):
            item = 4
        best = max(best, item * math.prod(dims))
    return best or None


def estimate(model_path: Path, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
             shapes: Mapping[str, Sequence[int]], out_shapes: Mapping[str, Sequence[int]],
             batch: int) -> MemoryEstimate:
    """The estimate at the resolved input and output shapes."""
    fin = sum(nbytes(s.dtype, shapes[s.name]) for s in inputs if s.name in shapes)
    fout = sum(nbytes(s.dtype, out_shapes[s.name]) for s in outputs if s.name in out_shapes)
    act = largest_activation(model_path, shapes)
    return MemoryEstimate(batch, fin, fout, None if act is None else act * LIVE_FACTOR)


def default_limit() -> int:
    """75% of the memory this process may still use (host, address-space limit, cgroup)."""
    from edgevl.memlimit import bench_limit

    return bench_limit()


def check(est: MemoryEstimate, limit: int | None, where: str) -> None:
    """InputError naming the estimate and the limit when the estimate is over it."""
    lim = default_limit() if limit is None else limit
    if est.total > lim:
        how = "75% of the memory available now" if limit is None else "--max-memory-gb"
        raise InputError(
            f"{where} at batch {est.batch}: estimated memory {est.describe()} is over the limit "
            f"{lim / GiB:.2f} GiB ({how}); lower --batch/--dim, or raise --max-memory-gb to run anyway")


def check_bundle_role(bundle: Bundle, role: str, batches: Sequence[int], dims: Mapping[str, int],
                      limit: int | None) -> MemoryEstimate | None:
    """Estimate the largest batch of ``batches`` that the model accepts and refuse it when over the
    limit (InputError); returns the estimate (None when no batch resolves: those are skipped later)."""
    from edgevl.bench.inputs import resolve_shape

    spec = bundle.model(role)
    for b in sorted(set(batches), reverse=True):
        try:
            shapes = {s.name: resolve_shape(s, bundle, b, dims) for s in spec.inputs}
        except InputError:
            continue
        out_shapes: dict[str, tuple[int, ...]] = {}
        for s in spec.outputs:
            with contextlib.suppress(InputError):
                out_shapes[s.name] = resolve_shape(s, bundle, b, dims)
        est = estimate(bundle.model_path(role), spec.inputs, spec.outputs, shapes, out_shapes, b)
        check(est, limit, f"{bundle.manifest.name}/{role}")
        return est
    return None
