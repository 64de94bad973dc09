"""The generic machinery of a bundle manifest (schema 2), shared by every writer and every reader.

A manifest's ``preprocess`` and ``config`` objects are plain JSON; what they may hold depends on
the bundle's task, and each task family owns its typed sections (``edgevl.tasks.ocr.sections``,
``edgevl.tasks.encoders.sections``) and registers them in :mod:`edgevl.tasks.registry`. This
module holds what every section is built from: the field parsers (``get_int``, ``get_str``… each
error a :class:`BundleError` naming the field), :func:`check_json`, :class:`DimRange` (one axis of
a model input: its role and ``min / opt / max``) and :class:`BackendConfig` (config keys any task
may carry). Defaults live in the section dataclasses' fields and nowhere else: a parser passes
``Cls.field`` (the field's default) as the value of a missing key, and a reader asks the bundle
for the parsed section (``bundle.section(DetectorPreprocess)``), never ``.get("limit_side", …)``.

This module imports nothing of edgevl but :mod:`edgevl.errors`, so both sides can use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from edgevl.errors import BundleError

#: JSON nesting deeper than this is refused (the manifests edgevl writes nest 5 levels)
MAX_DEPTH = 32
#: integers in a manifest must fit in a signed 64-bit value; sizes in a signed 32-bit one
MAX_INT = 2**63 - 1
MAX_SIZE = 2**31 - 1
#: the batch range every exporter writes unless told otherwise
BATCH_RANGE = (1, 1, 1024)
#: ranges for symbolic axes of a model whose task has no policy (tests, ``edgevl bench`` on a bare
#: ONNX wrapped in a bundle): opt is the size ``edgevl bench`` feeds, max what it accepts
GENERIC_RANGES: dict[str, tuple[int, int, int]] = {
    "height": (1, 224, 4096), "width": (1, 224, 4096), "seq": (1, 32, 512),
    "channels": (3, 3, 3), "other": (1, 1, 4096),
}
COLORS = ("RGB", "BGR")
#: the role of each axis of a model input (:class:`DimRange`)
DIM_ROLES = ("batch", "channels", "height", "width", "seq", "other")
#: (min, opt, max) of one axis
Range = tuple[int, int, int]


# --------------------------------------------------------------------------- field checks


def check_json(value: Any, where: str, depth: int = 0) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH`, non-finite floats and huge integers."""
    stack: list[tuple[Any, str, int]] = [(value, where, depth)]
    while stack:
        v, w, d = stack.pop()
        if d > MAX_DEPTH:
            raise BundleError(f"{w}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(v, bool) or v is None or isinstance(v, str):
            continue
        if isinstance(v, int):
            if abs(v) > MAX_INT:
                raise BundleError(f"{w}: integer {str(v)[:20]}… does not fit in 64 bits")
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise BundleError(f"{w}: {v} is not a finite number")
        elif isinstance(v, Mapping):
            for k, x in v.items():
                if not isinstance(k, str):
                    raise BundleError(f"{w}: keys must be strings")
                stack.append((x, f"{w}.{k}", d + 1))
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                stack.append((x, f"{w}[{i}]", d + 1))
        else:
            raise BundleError(f"{w}: {type(v).__name__} is not a JSON value")


def obj(d: Any, where: str) -> Mapping[str, Any]:
    """``d`` as a JSON object, else BundleError naming ``where``."""
    if not isinstance(d, Mapping):
        raise BundleError(f"{where}: expected a JSON object, got {_kind(d)}")
    return d


def _kind(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(v), type(v).__name__)


def get_int(d: Mapping[str, Any], key: str, where: str, default: int | None = None, *,
            lo: int = 0, hi: int = MAX_SIZE) -> int:
    v = d.get(key, default)
    if v is None:
        raise BundleError(f"{where}.{key}: required (an integer {lo}..{hi})")
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise BundleError(f"{where}.{key}: expected an integer {lo}..{hi}, got {_kind(v)}")
    if not lo <= v <= hi:
        raise BundleError(f"{where}.{key}: {str(v)[:24]} is outside {lo}..{hi}")
    return v


def get_float(d: Mapping[str, Any], key: str, where: str, default: float | None = None, *,
              lo: float = -math.inf, hi: float = math.inf, lo_open: bool = False) -> float:
    v = d.get(key, default)
    if v is None:
        raise BundleError(f"{where}.{key}: required (a number)")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BundleError(f"{where}.{key}: expected a number, got {_kind(v)}")
    try:
        f = float(v)
    except OverflowError:
        raise BundleError(f"{where}.{key}: {str(v)[:24]}… is too large") from None
    if not math.isfinite(f) or f < lo or f > hi or (lo_open and f == lo):
        rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise BundleError(f"{where}.{key}: {f:g} is outside {rng}")
    return f


def get_bool(d: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise BundleError(f"{where}.{key}: expected true or false, got {_kind(v)}")
    return v


def get_str(d: Mapping[str, Any], key: str, where: str, default: str | None = None, *,
            choices: Sequence[str] | None = None, upper: bool = False) -> str:
    v = d.get(key, default)
    if v is None:
        raise BundleError(f"{where}.{key}: required (a string)")
    if not isinstance(v, str):
        raise BundleError(f"{where}.{key}: expected a string, got {_kind(v)}")
    if upper:
        v = v.upper()
    if choices is not None and v not in choices:
        raise BundleError(f"{where}.{key}: {v[:40]!r} is not one of {', '.join(choices)}")
    return v


def get_opt_str(d: Mapping[str, Any], key: str, where: str, *,
                choices: Sequence[str] | None = None) -> str | None:
    return None if d.get(key) is None else get_str(d, key, where, choices=choices)


def get_floats(d: Mapping[str, Any], key: str, where: str, n: int, *, positive: bool = False,
               default: Sequence[float] | None = None) -> tuple[float, ...]:
    v = d.get(key, default)
    if v is None:
        raise BundleError(f"{where}.{key}: required (a list of {n} numbers)")
    if not isinstance(v, (list, tuple)) or len(v) != n:
        raise BundleError(f"{where}.{key}: expected a list of {n} numbers, got {_kind(v)}"
                          + (f" of {len(v)}" if isinstance(v, (list, tuple)) else ""))
    sub = {str(i): x for i, x in enumerate(v)}
    return tuple(get_float(sub, str(i), f"{where}.{key}", lo=0.0 if positive else -math.inf,
                           lo_open=positive) for i in range(n))


def file_name(d: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    """A file name inside the bundle (checked lexically here; ``bundle.py`` resolves it)."""
    v = get_str(d, key, where, default)
    check_relative(v, f"{where}.{key}")
    return v


def check_relative(name: str, where: str) -> None:
    """A relative, forward-slash path with no ``..``: the only file names a manifest may hold."""
    parts = name.split("/")
    bad = (not name or "\\" in name or "\x00" in name or name.startswith("/") or ":" in parts[0]
           or any(p in ("", ".", "..") for p in parts) or name.startswith("~"))
    if bad:
        raise BundleError(f"{where}: {name[:80]!r} is not a relative path inside the bundle")


def no_unknown(d: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    extra = sorted(set(d) - set(known))
    if extra:
        raise BundleError(f"{where}: unknown keys {extra} (known: {sorted(known)})")


def round_up(x: int, m: int) -> int:
    return -(-x // m) * m


# --------------------------------------------------------------------------- input ranges


@dataclass(frozen=True)
class DimRange:
    """One axis of a model input: its role and the sizes it accepts (``min <= opt <= max``).

    A fixed axis has ``min == opt == max``. ``opt`` is the size a benchmark feeds and the TensorRT
    profile optimises for.
    """

    role: str
    min: int
    opt: int
    max: int

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "min": self.min, "opt": self.opt, "max": self.max}

    @staticmethod
    def from_dict(d: Any, where: str) -> DimRange:
        d = obj(d, where)
        no_unknown(d, ("role", "min", "opt", "max"), where)
        lo = get_int(d, "min", where, lo=1)
        opt = get_int(d, "opt", where, lo=1)
        hi = get_int(d, "max", where, lo=1)
        if not lo <= opt <= hi:
            raise BundleError(f"{where}: needs min <= opt <= max, got {lo} / {opt} / {hi}")
        return DimRange(get_str(d, "role", where, choices=DIM_ROLES), lo, opt, hi)


def dim_role(shape: Sequence[int | str], dtype: str, axis: int) -> str:
    """The role of an axis by position: dim 0 is the batch; a rank-4 float input is an image (NCHW,
    or NHWC when its last dim is a fixed 1/3/4); a rank-2 integer input is ``[batch, seq]``."""
    rank = len(shape)
    if axis == 0:
        return "batch"
    is_float = dtype.startswith("float")
    if rank == 4 and is_float:
        c = shape[1]
        channels_first = not isinstance(c, int) or c in (1, 3, 4) or not isinstance(shape[3], int)
        if channels_first:
            return ("batch", "channels", "height", "width")[axis]
        return ("batch", "height", "width", "channels")[axis]
    if rank == 2 and not is_float:
        return "seq"
    return "other"


# --------------------------------------------------------------------------- sections


class Section(Protocol):
    """What every typed section offers: its JSON (``to_manifest``). A section class also has
    ``KEYS`` (the keys it may hold), ``PART`` (``"preprocess"`` or ``"config"``) and a static
    ``from_manifest(json, where)``."""

    def to_manifest(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class BackendConfig:
    """Config keys any task may carry: TensorRT plugin libraries shipped in the bundle, and the
    plugin-rewritten graphs of ``edgevl export --target tensorrt`` (``tensorrt.graphs``: role →
    file; the rest of ``tensorrt`` is the export's record: plugin, node counts, CPU parity)."""

    trt_plugins: tuple[str, ...] = ()
    trt_graphs: Mapping[str, str] = field(default_factory=dict)

    KEYS = ("trt_plugins", "tensorrt")
    PART = "config"

    @staticmethod
    def from_manifest(cfg: Any, where: str = "config") -> BackendConfig:
        d = obj(cfg, where)
        v = d.get("trt_plugins") or []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise BundleError(f"{where}.trt_plugins: expected a list of file names")
        for i, x in enumerate(v):
            check_relative(x, f"{where}.trt_plugins[{i}]")
        graphs: dict[str, str] = {}
        if "tensorrt" in d:
            t = obj(d["tensorrt"], f"{where}.tensorrt")
            g = obj(t.get("graphs", {}), f"{where}.tensorrt.graphs")
            for role, name in g.items():
                if not isinstance(name, str):
                    raise BundleError(f"{where}.tensorrt.graphs.{role}: expected a file name")
                check_relative(name, f"{where}.tensorrt.graphs.{role}")
                graphs[str(role)] = name
        return BackendConfig(tuple(v), graphs)

    def to_manifest(self) -> dict[str, Any]:
        return {"trt_plugins": list(self.trt_plugins)} if self.trt_plugins else {}


