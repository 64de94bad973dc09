"""Benchmark inputs: synthetic feeds shaped from the manifest, or real ones from a folder.

Each symbolic dimension is, in this order: an explicit override (``--dim NAME=VALUE``, by the
dimension's symbolic name or by its role ``batch``/``height``/``width``/``seq``), the batch being
measured, or the ``opt`` size of the input's range in the manifest (:class:`edgevl.manifest.DimRange`,
written by the exporter). An override outside the manifest's range is an InputError. Inputs without
ranges (a bare ONNX, never a schema-2 bundle) use :data:`edgevl.manifest.GENERIC_RANGES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from edgevl.backends import Array
from edgevl.bundle import Bundle, TensorSpec
from edgevl.errors import InputError
from edgevl.manifest import GENERIC_RANGES
from edgevl.manifest import dim_role as _dim_role
from edgevl.tasks.registry import task_spec

DEFAULT_VOCAB = 100
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def dim_role(spec: TensorSpec, axis: int) -> str:
    """``batch``, ``channels``, ``height``, ``width``, ``seq`` or ``other`` for an axis of an input:
    the manifest's role when it has ranges, else by position (:func:`edgevl.manifest.dim_role`)."""
    if len(spec.dims) == len(spec.shape):
        return spec.dims[axis].role
    return _dim_role(spec.shape, spec.dtype, axis)


def resolve_shape(
    spec: TensorSpec,
    bundle: Bundle | None,
    batch: int,
    overrides: Mapping[str, int] | None = None,
) -> tuple[int, ...]:
    """The concrete shape to feed ``spec`` at ``batch``.

    Raises InputError when the graph fixes dim 0 to a value other than ``batch`` or when a size
    falls outside the manifest's range for its axis.
    """
    ov = dict(overrides or {})
    ranged = len(spec.dims) == len(spec.shape)
    out: list[int] = []
    for axis, d in enumerate(spec.shape):
        role = dim_role(spec, axis)
        if isinstance(d, int) and d > 0:
            if role == "batch" and d != batch:
                raise InputError(
                    f"input {spec.name!r} has a fixed batch of {d} (shape {list(spec.shape)}); "
                    f"it cannot be benchmarked at batch {batch}"
                )
            out.append(d)
            continue
        name = str(d)
        if name in ov:
            n = ov[name]
        elif role == "batch":
            n = batch
        elif role in ov:
            n = ov[role]
        elif ranged:
            n = spec.dims[axis].opt
        else:
            n = GENERIC_RANGES[role][1]
        if ranged and not spec.dims[axis].min <= n <= spec.dims[axis].max:
            r = spec.dims[axis]
            raise InputError(f"input {spec.name!r}: {role} {n} is outside the bundle's range "
                             f"{r.min}..{r.max}")
        out.append(n)
    return tuple(out)


def vocab_size(bundle: Bundle | None) -> int:
    """Upper bound for synthetic token ids: the task's own bound (encoders: config ``vocab_size``,
    else the tokenizer's vocabulary), else :data:`DEFAULT_VOCAB`."""
    spec = None if bundle is None else task_spec(bundle.manifest.task)
    if bundle is None or spec is None or spec.vocab_size is None:
        return DEFAULT_VOCAB
    return spec.vocab_size(bundle) or DEFAULT_VOCAB


def synthetic_array(spec: TensorSpec, shape: Sequence[int], rng: np.random.Generator,
                    vocab: int = DEFAULT_VOCAB) -> Array:
    """A valid array for ``spec``: floats ~ N(0,1), token ids < vocab, masks of ones, type ids 0."""
    dt = np.dtype(spec.dtype)
    name = spec.name.lower()
    if dt.kind == "f":
        return rng.standard_normal(size=tuple(shape)).astype(dt)
    if dt.kind == "b":
        return np.ones(tuple(shape), dtype=dt)
    if dt.kind in "iu":
        if "mask" in name:
            return np.ones(tuple(shape), dtype=dt)
        if "type" in name or "position" in name:
            return np.zeros(tuple(shape), dtype=dt)
        hi = 256 if dt == np.uint8 else max(2, vocab)
        if np.iinfo(dt).max < hi:
            hi = int(np.iinfo(dt).max)
        return rng.integers(0, hi, size=tuple(shape)).astype(dt)
    raise InputError(f"input {spec.name!r}: cannot synthesise dtype {spec.dtype}")


def synthetic_feeds(
    specs: Sequence[TensorSpec],
    bundle: Bundle | None,
    batch: int,
    overrides: Mapping[str, int] | None = None,
    seed: int = 0,
) -> dict[str, Array]:
    """One feed dict for every input of a model at ``batch``."""
    rng = np.random.default_rng(seed)
    vocab = vocab_size(bundle)
    return {
        s.name: synthetic_array(s, resolve_shape(s, bundle, batch, overrides), rng, vocab) for s in specs
    }


def parse_dims(items: Sequence[str]) -> dict[str, int]:
    """``["seq=64", "height=640"]`` → ``{"seq": 64, "height": 640}``; InputError on a bad item."""
    out: dict[str, int] = {}
    for it in items:
        name, sep, value = it.partition("=")
        try:
            n = int(value)
        except ValueError:
            n = 0
        if not sep or not name or n < 1:
            raise InputError(f"--dim {it!r}: expected NAME=POSITIVE_INT (e.g. seq=64 or height=640)")
        out[name.strip()] = n
    return out


# --------------------------------------------------------------------------- real inputs

Preprocessor = Callable[[Bundle, Sequence[Path]], list[Array]]


def npz_declared_bytes(path: Path) -> int:
    """The bytes the arrays of an ``.npz`` declare in their headers, read without decompressing
    them (a small, highly compressed file can declare gigabytes). InputError when it is no .npz."""
    import zipfile

    from numpy.lib import format as npformat

    total = 0
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                with zf.open(info) as f:
                    version = npformat.read_magic(f)
                    read = (npformat.read_array_header_1_0 if version == (1, 0)
                            else npformat.read_array_header_2_0)
                    shape, _, dtype = read(f)
                    total += int(np.prod(shape, dtype=object)) * dtype.itemsize
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise InputError(f"{path}: not a readable .npz of input arrays ({e})") from None
    return total


def _npz_feeds(path: Path, specs: Sequence[TensorSpec]) -> dict[str, Array]:
    from edgevl.memlimit import bench_limit

    declared, limit = npz_declared_bytes(path), bench_limit()
    if declared > limit:
        raise InputError(f"{path}: its arrays declare {declared / 2**20:,.0f} MiB, over the "
                         f"{limit / 2**20:,.0f} MiB that may be loaded (75% of the available memory)")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: np.asarray(z[k]) for k in z.files}
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable .npz of input arrays ({e})") from e
    want = {s.name for s in specs}
    if set(data) != want:
        raise InputError(f"{path}: arrays {sorted(data)} do not match the model inputs {sorted(want)}")
    return data


def _image_preprocessor(bundle: Bundle, role: str) -> Preprocessor:
    """The task's own image preprocessing (its spec's ``bench_inputs``), or InputError naming what is
    missing."""
    task = bundle.manifest.task
    spec = task_spec(task)
    prep = None if spec is None else spec.bench_inputs.get(role)
    if prep is None:
        raise InputError(
            f"bundle {bundle.manifest.name!r} (task {task!r}, model {role!r}): edgevl has no image "
            f"preprocessing for it; give .npz files holding the input arrays by name instead"
        )
    return lambda b, paths: prep(b, role, paths)


def folder_feeds(
    folder: Path,
    specs: Sequence[TensorSpec],
    bundle: Bundle,
    role: str,
    batch: int,
) -> list[dict[str, Array]]:
    """Feeds built from real inputs in ``folder``, ``batch`` items each (cycling through them).

    ``*.npz`` files hold arrays named like the inputs (used as they are; batch must match their
    first dim). Images are preprocessed the way the bundle's task does; items whose preprocessed
    shapes differ cannot be stacked into one batch (InputError: use --batch 1).
    """
    if not folder.is_dir():
        raise InputError(f"{folder}: --inputs must be a folder of images or .npz files")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    npz = [p for p in files if p.suffix.lower() == ".npz"]
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if npz:
        feeds = [_npz_feeds(p, specs) for p in npz]
        for p, f in zip(npz, feeds, strict=True):
            first = next(iter(f.values()))
            if first.shape[0] != batch:
                raise InputError(f"{p}: holds a batch of {first.shape[0]}, asked for --batch {batch}")
        return feeds
    if not images:
        raise InputError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) or .npz files in it")
    if len(specs) != 1:
        raise InputError(f"model {role!r} has {len(specs)} inputs; images can only feed a one-input model")
    arrays = _image_preprocessor(bundle, role)(bundle, images)
    task = task_spec(bundle.manifest.task)
    if not arrays:
        raise InputError(f"{folder}: preprocessing produced no inputs")
    spec = specs[0]
    out: list[dict[str, Array]] = []
    n = max(1, len(arrays) // batch) if len(arrays) >= batch else 1
    for i in range(n):
        items = [arrays[(i * batch + j) % len(arrays)] for j in range(batch)]
        shapes = {a.shape for a in items}
        if len(shapes) > 1 and task is not None and task.bench_pads_width:
            # text crops are batched by padding on the right, as the task does
            wmax = max(a.shape[-1] for a in items)
            items = [np.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, wmax - a.shape[-1])]) for a in items]
            shapes = {a.shape for a in items}
        if len(shapes) > 1:
            raise InputError(
                f"{folder}: preprocessed inputs have different shapes {sorted(shapes)[:3]}...; "
                f"they cannot be stacked into a batch of {batch} (use --batch 1)"
            )
        out.append({spec.name: np.concatenate(items, axis=0).astype(np.dtype(spec.dtype), copy=False)})
    return out


def describe_shapes(feeds: Mapping[str, Array]) -> dict[str, list[int]]:
    return {k: [int(d) for d in v.shape] for k, v in feeds.items()}
