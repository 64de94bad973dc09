"""TensorRT engine building for ``edgevl engine build`` and the ``tensorrt`` backend.

.. warning:: Never run: no machine this project is developed or tested on has TensorRT or an
   NVIDIA GPU. Written against the TensorRT 8.5–10.x Python API; the pure parts (precision rules,
   which layers stay fp32, plan/timing-cache keys, argument checks) are tested here.

- Graph: the bundle's plugin-rewritten graph (``config.tensorrt.graphs``, written by
  ``edgevl export --target tensorrt``) when present — it needs the EdgevlAttention plugin library
  (``--plugins build/libedgevl_trt_plugin.so``) — else the bundle's own ONNX.
- Precision: ``fp32``; ``fp16`` (FP16 flag; on TensorRT < 8.6 the layers TensorRT's parser makes
  from each ONNX LayerNormalization are pinned to fp32, because older TensorRT loses accuracy in the
  fp16 decomposed LayerNorm); ``int8`` needs an int8 (Q/DQ) bundle: explicit quantisation, no
  calibrator, INT8 + FP16 flags.
- Profile: the manifest's input ranges (schema 2: every axis' min/opt/max as the exporter wrote
  it), the batch capped at ``--max-batch`` — the backend's ``default_profile``.
- Timing cache: ``$EDGEVL_HOME/tensorrt/timing-<gpu>-sm<cc>-trt<ver>.cache``, loaded before and
  saved after every build, so rebuilds at other shapes or precisions reuse kernel timings.
- Plan cache: ``plan_path`` (bundle ``engines/`` or the user cache), keyed by GPU,
  compute capability, TensorRT version, precision, profile, graph checksum and plugins. The last
  ``engine build`` per role is recorded in ``engines/<role>.default.json`` so ``edgevl bench
  --backend tensorrt`` runs that engine (its precision and graph).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgevl.bundle import Bundle
from edgevl.errors import BackendError, InputError
from edgevl.manifest import BackendConfig
from edgevl.paths import edgevl_home

ENGINE_PRECISIONS = ("fp32", "fp16", "int8")
LN_FP32_BELOW = (8, 6)  # TensorRT 8.6 added a native normalisation layer with fp32 accumulation


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


def version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3]) or (0,)


def choose(bundle: Bundle, role: str, precision: str | None = None, *, plugins: Sequence[Path | str] = (),
           use_plugin_graph: bool = True) -> EngineChoice:
    """Check the request against the bundle (no TensorRT needed) and pick graph + precision."""
    spec = bundle.model(role)
    want = precision or _recorded(bundle, role).get("precision") or bundle.manifest.precision
    if want not in ENGINE_PRECISIONS:
        raise InputError(f"--precision {want!r}: expected one of {', '.join(ENGINE_PRECISIONS)}")
    if want == "int8" and bundle.manifest.precision != "int8":
        raise InputError(
            f"{bundle.path}: an int8 engine needs an int8 (Q/DQ) bundle — TensorRT builds it with "
            "explicit quantisation, no calibrator; make one with `edgevl export --precision int8` or "
            "`edgevl quantize`")
    if want != "int8" and bundle.manifest.precision == "int8":
        raise InputError(f"{bundle.path}: is an int8 (Q/DQ) bundle; build it with --precision int8")
    graphs = BackendConfig.from_manifest(bundle.manifest.config).trt_graphs
    rel = graphs.get(role) if use_plugin_graph else None
    if rel:
        if not plugins:
            raise InputError(
                f"{bundle.path}: the {role} graph for TensorRT uses the EdgevlAttention plugin; pass "
                "--plugins path/to/libedgevl_trt_plugin.so (cmake --build build; see docs/kernels.md) or "
                "--no-plugin-graph to build the plain graph")
        return EngineChoice(role, bundle.file(str(rel)), bundle.manifest.files[str(rel)], want, True)
    return EngineChoice(role, bundle.model_path(role), bundle.manifest.files[spec.file], want, False)


def layernorm_node_names(onnx_path: Path) -> list[str]:
    """Names of the ONNX LayerNormalization nodes (TensorRT's layer names start with them)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return [n.name for n in model.graph.node if n.op_type == "LayerNormalization" and n.name]


def layers_to_pin_fp32(layer_names: Sequence[str], ln_nodes: Sequence[str]) -> list[int]:
    """Indices of network layers that come from a LayerNormalization node (by name prefix)."""
    prefixes = tuple(n for n in ln_nodes if n)
    return [i for i, name in enumerate(layer_names) if prefixes and name.startswith(prefixes)]


def pin_layernorm(trt_version: str, precision: str) -> bool:
    return precision in ("fp16", "int8") and version_tuple(trt_version) < LN_FP32_BELOW


def timing_cache_path(gpu: str, cc: str, trt_version: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", gpu).strip("-").lower() or "gpu"
    return edgevl_home() / "tensorrt" / f"timing-{slug}-sm{cc}-trt{trt_version}.cache"


def plan_key(choice: EngineChoice, gpu: str, cc: str, trt_version: str, profile: Mapping[str, Any],
             plugins: Sequence[str]) -> dict[str, Any]:
    return {"onnx": choice.graph_sha256, "trt": trt_version, "gpu": gpu, "cc": cc,
            "precision": choice.precision, "profile": {k: [list(x) for x in v] for k, v in profile.items()},
            "plugins": sorted(Path(p).name for p in plugins)}


def _record_path(bundle: Bundle, role: str) -> Path:
    return bundle.path / "engines" / f"{role}.default.json"


def _recorded(bundle: Bundle, role: str) -> dict[str, Any]:
    p = _record_path(bundle, role)
    from edgevl.errors import InputError
    from edgevl.safeio import read_json_file

    try:  # bounded: a FIFO or a huge file in a bundle's engines/ folder is ignored, not read
        data = read_json_file(p, "engine record", max_bytes=1 << 20)
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


def build_serialized(trt: Any, logger: Any, onnx_path: Path, profile: Mapping[str, Any], precision: str,
                     workspace: int, timing_cache: Path | None = None) -> bytes:
    """Parse ``onnx_path`` and build a serialised plan (see the module docstring for the rules)."""
    builder = trt.Builder(logger)
    flags = 0
    if version_tuple(trt.__version__) < (10,):  # explicit batch is the only mode from TensorRT 10
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"{onnx_path}: TensorRT's ONNX parser failed: {errors[:500]}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # explicit Q/DQ in the graph: no calibrator
    if pin_layernorm(trt.__version__, precision):
        names = [network.get_layer(i).name for i in range(network.num_layers)]
        pinned = layers_to_pin_fp32(names, layernorm_node_names(onnx_path))
        for i in pinned:
            layer = network.get_layer(i)
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)
        if pinned:
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    cache = None
    if timing_cache is not None:
        blob = timing_cache.read_bytes() if timing_cache.is_file() else b""
        cache = config.create_timing_cache(blob)
        config.set_timing_cache(cache, ignore_mismatch=False)
    prof = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        name = network.get_input(i).name
        if name not in profile:
            raise BackendError(f"{onnx_path}: no optimisation profile for input {name!r}")
        lo, opt, hi = profile[name]
        prof.set_shape(name, tuple(lo), tuple(opt), tuple(hi))
    config.add_optimization_profile(prof)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise BackendError(f"{onnx_path}: TensorRT failed to build an engine (see its log above)")
    if cache is not None and timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = timing_cache.with_suffix(".tmp")
        tmp.write_bytes(bytes(memoryview(cache.serialize())))
        tmp.replace(timing_cache)
    return bytes(memoryview(plan))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "gpu"


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


def ensure_plan(bundle: Bundle, choice: EngineChoice, trt: Any, logger: Any, gpu: str, cc: str,
                profile: Mapping[str, Any], plugins: Sequence[str], workspace: int,
                rebuild: bool = False) -> BuildResult:
    """The cached plan for ``choice`` on this GPU/TensorRT, built (with the timing cache) if needed."""
    key = plan_key(choice, gpu, cc, trt.__version__, profile, plugins)
    path = plan_path(bundle, choice.role, key)
    t0 = time.perf_counter()
    built = rebuild or not path.is_file()
    if built:
        plan = build_serialized(trt, logger, choice.graph, profile, choice.precision, workspace,
                                timing_cache_path(gpu, cc, trt.__version__))
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(plan)
        tmp.replace(path)
    return BuildResult(choice.role, path, choice.precision, built, time.perf_counter() - t0, choice.graph)
