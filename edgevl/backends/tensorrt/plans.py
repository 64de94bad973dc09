"""What to build and where it is kept: graph + precision per role, plan and timing-cache names,
and the record of the last ``edgevl engine build``. Pure: no TensorRT needed.

- Graph: the bundle's plugin-rewritten graph (``config.tensorrt.graphs``, written by
  ``edgevl export --target tensorrt``) when present — it needs the EdgevlAttention plugin library
  (``--plugins build/libedgevl_trt_plugin.so``) — else the bundle's own ONNX.
- Precision: one of the bundle precisions (:data:`edgevl.bundle.PRECISIONS`); ``int8`` only from an
  int8 (Q/DQ) bundle, and an int8 bundle only as ``int8``.
- Timing cache: ``$EDGEVL_HOME/tensorrt/timing-<gpu>-sm<cc>-trt<ver>.cache``.
- Plan cache: :func:`plan_path` (bundle ``engines/`` or the user cache), keyed by GPU, compute
  capability, TensorRT version, precision, profile, graph checksum and plugins. The last
  ``engine build`` per role is recorded in ``engines/<role>.default.json`` so ``edgevl bench
  --backend tensorrt`` runs that engine (its precision and graph).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgevl.bundle import PRECISIONS, Bundle
from edgevl.errors import InputError
from edgevl.manifest import BackendConfig
from edgevl.paths import edgevl_home
from edgevl.safeio import read_json_file


@dataclass(frozen=True)
class EngineChoice:
    """What to build for one role: the graph, the engine precision, whether it needs the plugin."""

    role: str
    graph: Path
    graph_sha256: str
    precision: str
    uses_plugin: bool


@dataclass(frozen=True)
class BuildResult:
    role: str
    plan: Path
    precision: str
    built: bool  # False: an up-to-date plan was already cached
    seconds: float
    graph: Path


def choose(bundle: Bundle, role: str, precision: str | None = None, *, plugins: Sequence[Path | str] = (),
           use_plugin_graph: bool = True) -> EngineChoice:
    """Check the request against the bundle (no TensorRT needed) and pick graph + precision."""
    spec = bundle.model(role)
    want = precision or _recorded(bundle, role).get("precision") or bundle.manifest.precision
    if want not in PRECISIONS:
        raise InputError(f"--precision {want!r}: expected one of {', '.join(PRECISIONS)}")
    if want == "int8" and bundle.manifest.precision != "int8":
        raise InputError(
            f"{bundle.path}: an int8 engine needs an int8 (Q/DQ) bundle — TensorRT builds it with "
            "explicit quantisation, no calibrator; make one with `edgevl export --precision int8` or "
            "`edgevl quantize`")
    if want != "int8" and bundle.manifest.precision == "int8":
        raise InputError(f"{bundle.path}: is an int8 (Q/DQ) bundle; build it with --precision int8")
    graphs = bundle.section(BackendConfig).trt_graphs
    rel = graphs.get(role) if use_plugin_graph else None
    if rel:
        if not plugins:
            raise InputError(
                f"{bundle.path}: the {role} graph for TensorRT uses the EdgevlAttention plugin; pass "
                "--plugins path/to/libedgevl_trt_plugin.so (cmake --build build; see docs/kernels.md) or "
                "--no-plugin-graph to build the plain graph")
        return EngineChoice(role, bundle.file(str(rel)), bundle.manifest.files[str(rel)], want, True)
    return EngineChoice(role, bundle.model_path(role), bundle.manifest.files[spec.file], want, False)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "gpu"


def timing_cache_path(gpu: str, cc: str, trt_version: str) -> Path:
    return edgevl_home() / "tensorrt" / f"timing-{_slug(gpu)}-sm{cc}-trt{trt_version}.cache"


def plan_key(choice: EngineChoice, gpu: str, cc: str, trt_version: str, profile: Mapping[str, Any],
             plugins: Sequence[str]) -> dict[str, Any]:
    return {"onnx": choice.graph_sha256, "trt": trt_version, "gpu": gpu, "cc": cc,
            "precision": choice.precision, "profile": {k: [list(x) for x in v] for k, v in profile.items()},
            "plugins": sorted(Path(p).name for p in plugins)}


def plan_path(bundle: Bundle, role: str, key: Mapping[str, Any]) -> Path:
    """Where the plan for ``key`` lives: in the bundle when writable, else in the user cache."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    name = f"{role}-{_slug(str(key['gpu']))}-sm{key['cc']}-trt{key['trt']}-{key['precision']}-{digest}.plan"
    local = bundle.path / "engines"
    try:
        local.mkdir(exist_ok=True)
        if os.access(local, os.W_OK):
            return local / name
    except OSError:
        pass
    d = edgevl_home() / "engines" / bundle.digest[:16]
    d.mkdir(parents=True, exist_ok=True)
    return d / name


def _record_path(bundle: Bundle, role: str) -> Path:
    return bundle.path / "engines" / f"{role}.default.json"


def _recorded(bundle: Bundle, role: str) -> dict[str, Any]:
    try:  # bounded: a FIFO or a huge file in a bundle's engines/ folder is ignored, not read
        data = read_json_file(_record_path(bundle, role), "engine record", max_bytes=1 << 20)
    except InputError:
        return {}
    return data if isinstance(data, dict) else {}


def record_default(bundle: Bundle, result: BuildResult) -> None:
    """Remember the last ``engine build`` of a role (best effort: a read-only bundle keeps none)."""
    try:
        p = _record_path(bundle, result.role)
        p.parent.mkdir(exist_ok=True)
        p.write_text(json.dumps({"precision": result.precision, "plan": str(result.plan),
                                 "graph": str(result.graph)}, indent=2) + "\n")
    except OSError:
        pass
