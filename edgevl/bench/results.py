"""Benchmark result records and the versioned result-file schema (``"schema": "edgevl-bench/1"``).

A result file is one JSON object::

    {"schema": "edgevl-bench/1", "created": ISO-8601, "command": str, "interrupted": bool,
     "machine": {...MachineInfo...}, "settings": {...}, "results": [ {...BenchResult...}, ... ]}

Each result is one configuration (bundle, model role or pipeline stage, backend, batch, precision,
threads) with its status, summary statistics in milliseconds, the per-repeat medians and a thinned
copy of the per-iteration samples (so ``edgevl bench compare`` can estimate noise).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgevl.bench.stats import LatencyStats
from edgevl.errors import InputError

SCHEMA = "edgevl-bench/1"
STATUSES = ("ok", "interrupted", "unavailable", "skipped", "error")
KINDS = ("model", "task")
KEY_FIELDS = ("bundle", "role", "backend", "batch", "precision", "threads")


@dataclass(frozen=True)
class BenchResult:
    """One measured (or unmeasurable) configuration."""

    kind: str
    bundle: str
    task: str
    role: str
    precision: str
    backend: str
    batch: int
    threads: int
    status: str
    reason: str | None = None
    bundle_path: str | None = None
    digest: str | None = None
    inputs: str = "synthetic"
    shapes: Mapping[str, list[int]] = field(default_factory=dict)
    stats: LatencyStats | None = None
    repeat_p50_ms: tuple[float, ...] = ()
    samples_ms: tuple[float, ...] = ()
    peak_rss_mb: float | None = None
    device_memory_mb: float | None = None
    providers: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, k) for k in KEY_FIELDS)

    @property
    def ok(self) -> bool:
        return self.stats is not None and self.status in ("ok", "interrupted")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "bundle": self.bundle,
            "task": self.task,
            "role": self.role,
            "precision": self.precision,
            "backend": self.backend,
            "batch": self.batch,
            "threads": self.threads,
            "status": self.status,
            "reason": self.reason,
            "bundle_path": self.bundle_path,
            "digest": self.digest,
            "inputs": self.inputs,
            "shapes": {k: list(v) for k, v in self.shapes.items()},
            "stats": self.stats.to_dict() if self.stats else None,
            "repeat_p50_ms": list(self.repeat_p50_ms),
            "samples_ms": [round(s, 6) for s in self.samples_ms],
            "peak_rss_mb": self.peak_rss_mb,
            "device_memory_mb": self.device_memory_mb,
            "providers": list(self.providers),
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> BenchResult:
        st = d.get("stats")
        stats = LatencyStats(**{k: st[k] for k in LatencyStats.__dataclass_fields__}) if st else None
        return BenchResult(
            kind=str(d["kind"]),
            bundle=str(d["bundle"]),
            task=str(d["task"]),
            role=str(d["role"]),
            precision=str(d["precision"]),
            backend=str(d["backend"]),
            batch=int(d["batch"]),
            threads=int(d["threads"]),
            status=str(d["status"]),
            reason=d.get("reason"),
            bundle_path=d.get("bundle_path"),
            digest=d.get("digest"),
            inputs=str(d.get("inputs", "synthetic")),
            shapes={str(k): [int(x) for x in v] for k, v in (d.get("shapes") or {}).items()},
            stats=stats,
            repeat_p50_ms=tuple(float(x) for x in d.get("repeat_p50_ms") or ()),
            samples_ms=tuple(float(x) for x in d.get("samples_ms") or ()),
            peak_rss_mb=d.get("peak_rss_mb"),
            device_memory_mb=d.get("device_memory_mb"),
            providers=tuple(str(p) for p in d.get("providers") or ()),
        )


@dataclass(frozen=True)
class BenchRun:
    """A whole result file."""

    created: str
    command: str
    machine: Mapping[str, Any]
    settings: Mapping[str, Any]
    results: tuple[BenchResult, ...]
    interrupted: bool = False
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "created": self.created,
            "command": self.command,
            "interrupted": self.interrupted,
            "machine": dict(self.machine),
            "settings": dict(self.settings),
            "results": [r.to_dict() for r in self.results],
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any], where: str = "result file") -> BenchRun:
        validate(d, where)
        return BenchRun(
            schema=str(d["schema"]),
            created=str(d["created"]),
            command=str(d["command"]),
            interrupted=bool(d["interrupted"]),
            machine=dict(d["machine"]),
            settings=dict(d["settings"]),
            results=tuple(BenchResult.from_dict(r) for r in d["results"]),
        )


# ------------------------------------------------------------------ schema

_STATS_FIELDS = tuple(LatencyStats.__dataclass_fields__)
_RESULT_TYPES: dict[str, tuple[type, ...]] = {
    "kind": (str,), "bundle": (str,), "task": (str,), "role": (str,), "precision": (str,),
    "backend": (str,), "batch": (int,), "threads": (int,), "status": (str,),
    "reason": (str, type(None)), "bundle_path": (str, type(None)), "digest": (str, type(None)),
    "inputs": (str,), "shapes": (dict,), "stats": (dict, type(None)), "repeat_p50_ms": (list,),
    "samples_ms": (list,), "peak_rss_mb": (int, float, type(None)),
    "device_memory_mb": (int, float, type(None)), "providers": (list,),
}
_TOP_TYPES: dict[str, tuple[type, ...]] = {
    "schema": (str,), "created": (str,), "command": (str,), "interrupted": (bool,),
    "machine": (dict,), "settings": (dict,), "results": (list,),
}
_MACHINE_KEYS = ("cpu", "cores_logical", "os", "python", "onnxruntime")

#: the same rules as a JSON Schema document (for other tools; edgevl checks with :func:`validate`)
JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://edgevl.invalid/schemas/edgevl-bench-1.json",
    "type": "object",
    "required": list(_TOP_TYPES),
    "properties": {
        "schema": {"const": SCHEMA},
        "machine": {"type": "object", "required": list(_MACHINE_KEYS)},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": list(_RESULT_TYPES),
                "properties": {
                    "kind": {"enum": list(KINDS)},
                    "status": {"enum": list(STATUSES)},
                    "batch": {"type": "integer", "minimum": 1},
                    "stats": {
                        "oneOf": [{"type": "null"},
                                  {"type": "object", "required": list(_STATS_FIELDS)}],
                    },
                },
            },
        },
    },
}


def _is(v: Any, types: tuple[type, ...]) -> bool:
    if isinstance(v, bool) and bool not in types:
        return False
    return isinstance(v, types)


def validate(doc: Any, where: str = "result file") -> None:
    """Raise InputError naming the first field that breaks the ``edgevl-bench/1`` schema."""
    if not isinstance(doc, Mapping):
        raise InputError(f"{where}: expected a JSON object")
    if doc.get("schema") != SCHEMA:
        raise InputError(
            f"{where}: schema {doc.get('schema')!r} is not {SCHEMA!r} (not an edgevl bench file?)")
    for k, types in _TOP_TYPES.items():
        if k not in doc or not _is(doc[k], types):
            raise InputError(f"{where}: key {k!r} missing or not {'/'.join(t.__name__ for t in types)}")
    for k in _MACHINE_KEYS:
        if k not in doc["machine"]:
            raise InputError(f"{where}: machine lacks {k!r}")
    for i, r in enumerate(doc["results"]):
        at = f"{where}: results[{i}]"
        if not isinstance(r, Mapping):
            raise InputError(f"{at}: expected an object")
        for k, types in _RESULT_TYPES.items():
            if k not in r or not _is(r[k], types):
                raise InputError(f"{at}: key {k!r} missing or not {'/'.join(t.__name__ for t in types)}")
        if r["kind"] not in KINDS:
            raise InputError(f"{at}: kind {r['kind']!r} not in {KINDS}")
        if r["status"] not in STATUSES:
            raise InputError(f"{at}: status {r['status']!r} not in {STATUSES}")
        if r["batch"] < 1:
            raise InputError(f"{at}: batch {r['batch']} < 1")
        st = r["stats"]
        if r["status"] in ("ok",) and st is None:
            raise InputError(f"{at}: status 'ok' without stats")
        if st is not None:
            for k in _STATS_FIELDS:
                v = st.get(k)
                if not _is(v, (int, float)) or not math.isfinite(float(v)):
                    raise InputError(f"{at}: stats.{k} missing or not a finite number")
        if not all(_is(x, (int, float)) for x in r["samples_ms"]):
            raise InputError(f"{at}: samples_ms must be numbers")


def read_json(path: Path, missing: str = "no such result file") -> Any:
    """A JSON file's content; InputError with the path when it is absent, not a regular file, over
    64 MiB, nested over 64 levels or not strict JSON (:func:`edgevl.safeio.read_json_file`)."""
    from edgevl.safeio import read_json_file

    if not path.exists():
        raise InputError(f"{path}: {missing}")
    return read_json_file(path, "result file")


def load_run(path: Path | str) -> BenchRun:
    """Read and validate a result file (InputError with the path when it is not one)."""
    p = Path(path)
    doc = read_json(p, "no such result file (expected JSON written by edgevl bench --json)")
    return BenchRun.from_dict(doc, where=str(p))


def write_run(run: BenchRun, path: Path | str, *, inputs: Sequence[Path | str] = ()) -> Path:
    """Write the result file whole or not at all (:func:`edgevl.safeio.write_text_atomic`), never
    over one of ``inputs``."""
    from edgevl.safeio import write_text_atomic

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    doc = run.to_dict()
    validate(doc, str(p))
    return write_text_atomic(p, json.dumps(doc, indent=1) + "\n", "result file", inputs=inputs)
