"""The result file every script in ``benchmarks/`` writes (``"schema": "edgevl-bench-script/1"``).

A script's result is one flat JSON object: the envelope below plus the script's own keys (its
tables, targets, settings)::

    {"schema": "edgevl-bench-script/1", "benchmark": "encoders_speed", "created": ISO-8601 UTC,
     "command": "flock /tmp/edgevl-bench.lock python benchmarks/encoders_speed.py ...",
     "machine": {...machine_record()...},  # edgevl.bench.machine: the one machine record
     "headline": "...", "target": "...",   # optional: read by results/README.md
     ...the script's own keys...}

The Markdown file next to it is rendered from the JSON alone (:func:`benchlib.markdown.render_markdown`).
The ``edgevl bench`` files (``edgevl-bench/1``, :mod:`edgevl.bench.results`) share the machine record
and the Markdown tables with these.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgevl.bench.machine import load_average, machine_record
from edgevl.bench.results import read_json
from edgevl.errors import InputError

SCHEMA = "edgevl-bench-script/1"


_REQUIRED: dict[str, tuple[type, ...]] = {
    "schema": (str,), "benchmark": (str,), "created": (str,), "command": (str,), "machine": (dict,),
}
_OPTIONAL: dict[str, tuple[type, ...]] = {"headline": (str,), "target": (str,), "git": (dict,)}
#: the machine keys every result carries; null is "not recorded" (results that predate this schema
#: and were converted to it: :func:`machine_record` fills every one of them)
_MACHINE: dict[str, tuple[type, ...]] = {
    "cpu": (str, type(None)), "cores_logical": (int, type(None)), "os": (str, type(None)),
    "python": (str, type(None)), "onnxruntime": (str, type(None)),
    "load_average_before": (list, type(None)), "load_average_after": (list, type(None)),
}

#: the same rules as a JSON Schema document (for other tools; edgevl checks with :func:`validate_result`)
JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://edgevl.invalid/schemas/edgevl-bench-script-1.json",
    "type": "object",
    "required": list(_REQUIRED),
    "properties": {
        "schema": {"const": SCHEMA},
        "benchmark": {"type": "string", "minLength": 1},
        "created": {"type": "string", "format": "date-time"},
        "command": {"type": "string", "minLength": 1},
        "headline": {"type": "string"},
        "target": {"type": "string"},
        "git": {"type": "object", "required": ["commit", "uncommitted"]},
        "machine": {
            "type": "object",
            "required": list(_MACHINE),
            "properties": {"cores_logical": {"type": ["integer", "null"], "minimum": 1},
                           "load_average_before": {"type": ["array", "null"], "items": {"type": "number"}},
                           "load_average_after": {"type": ["array", "null"], "items": {"type": "number"}}},
        },
    },
    "additionalProperties": True,
}


def _is(v: Any, types: tuple[type, ...]) -> bool:
    if isinstance(v, bool) and bool not in types:
        return False
    return isinstance(v, types)


def _names(types: tuple[type, ...]) -> str:
    return "/".join("null" if t is type(None) else t.__name__ for t in types)


def _finite(v: Any, at: str) -> None:
    """No NaN or infinity anywhere: JSON has no such numbers (Python writes them, others cannot read)."""
    if isinstance(v, float) and not math.isfinite(v):
        raise InputError(f"{at}: {v} is not a finite number")
    if isinstance(v, Mapping):
        for k, x in v.items():
            _finite(x, f"{at}.{k}")
    elif isinstance(v, list | tuple):
        for i, x in enumerate(v):
            _finite(x, f"{at}[{i}]")


def validate_result(doc: Any, where: str = "result file") -> None:
    """Raise InputError naming the first field that breaks the ``edgevl-bench-script/1`` schema."""
    if not isinstance(doc, Mapping):
        raise InputError(f"{where}: expected a JSON object")
    if doc.get("schema") != SCHEMA:
        raise InputError(f"{where}: schema {doc.get('schema')!r} is not {SCHEMA!r}")
    for k, types in _REQUIRED.items():
        if k not in doc or not _is(doc[k], types) or doc[k] in ("", {}):
            raise InputError(f"{where}: key {k!r} missing, empty or not {_names(types)}")
    for k, types in _OPTIONAL.items():
        if k in doc and not _is(doc[k], types):
            raise InputError(f"{where}: key {k!r} is not {_names(types)}")
    try:
        datetime.fromisoformat(doc["created"])
    except ValueError as e:
        raise InputError(f"{where}: created {doc['created']!r} is not an ISO-8601 time") from e
    m = doc["machine"]
    for k, types in _MACHINE.items():
        if k not in m or not _is(m[k], types):
            raise InputError(f"{where}: machine.{k} missing or not {_names(types)}")
    if m["cores_logical"] is not None and m["cores_logical"] < 1:
        raise InputError(f"{where}: machine.cores_logical {m['cores_logical']} < 1")
    for k in ("load_average_before", "load_average_after"):
        if m[k] is not None and not all(_is(x, (int, float)) for x in m[k]):
            raise InputError(f"{where}: machine.{k} must be numbers")
    _finite(dict(doc), where)


def new_result(benchmark: str, command: str, *, load_before: list[float] | None,
               packages: Sequence[str] = (), machine_extra: Mapping[str, Any] | None = None,
               **data: Any) -> dict[str, Any]:
    """A result document: the envelope (machine record taken now, with ``load_before`` from the start
    of the run) and the script's own keys ``data``."""
    return {
        "schema": SCHEMA,
        "benchmark": benchmark,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine_record(load_before, tuple(packages), **dict(machine_extra or {})),
        **data,
    }


def start() -> list[float] | None:
    """The load average at the start of a run (pass it to :func:`new_result` as ``load_before``)."""
    return load_average()


def write_result(doc: Mapping[str, Any], out: Path, render: Callable[[Mapping[str, Any]], str] | None = None,
                 *, echo: bool = True) -> Path:
    """Validate ``doc``, write ``<out>.json`` (``out`` is a path stem) and, with ``render``, the
    Markdown ``<out>.md`` from the JSON as written; returns the JSON path."""
    validate_result(doc, str(out.with_suffix(".json")))
    out.parent.mkdir(parents=True, exist_ok=True)
    js = out.with_suffix(".json")
    js.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if render is not None:
        text = render(json.loads(js.read_text(encoding="utf-8")))
        out.with_suffix(".md").write_text(text, encoding="utf-8")
        if echo:
            print(text)
    return js


def load_result(path: Path) -> dict[str, Any]:
    """Read and validate a result file (InputError with the path when it is not one)."""
    doc = read_json(path)
    validate_result(doc, str(path))
    return dict(doc)
