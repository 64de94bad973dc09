"""Building TensorRT plans: ``edgevl engine build`` and the ``tensorrt`` backend's first open.

.. warning:: Never run on TensorRT: no machine this project is developed or tested on has TensorRT
   or an NVIDIA GPU. Written against the TensorRT 8.5–10.x Python API; tested against a fake
   ``tensorrt`` module that records the builder calls (tests/test_tensorrt_fake.py).

- Network: explicit batch (a creation flag before TensorRT 10, the only mode from 10), parsed by
  ``trt.OnnxParser`` from the graph :func:`~edgevl.backends.tensorrt.plans.choose` picked.
- Precision: ``fp32``; ``fp16`` (FP16 flag; on TensorRT < 8.6 the layers TensorRT's parser makes
  from each ONNX LayerNormalization are pinned to fp32, because older TensorRT loses accuracy in the
  fp16 decomposed LayerNorm); ``int8`` (INT8 + FP16 flags: explicit Q/DQ in the graph, no calibrator).
- Profile: one optimisation profile, the manifest's input ranges
  (:func:`~edgevl.backends.tensorrt.profile.default_profile`).
- Timing cache: loaded before and saved after every build, so rebuilds at other shapes or
  precisions reuse kernel timings; plans cached by :func:`~edgevl.backends.tensorrt.plans.plan_path`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgevl.backends.base import TensorRTOptions
from edgevl.backends.tensorrt.plans import (
    BuildResult,
    EngineChoice,
    choose,
    plan_key,
    plan_path,
    record_default,
    timing_cache_path,
)
from edgevl.backends.tensorrt.plugins import load_plugins
from edgevl.backends.tensorrt.profile import default_profile
from edgevl.backends.tensorrt.runtime import Runtime, default_runtime, version_tuple
from edgevl.bundle import Bundle
from edgevl.errors import BackendError, InputError

LN_FP32_BELOW = (8, 6)  # TensorRT 8.6 added a native normalisation layer with fp32 accumulation


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


def _pin_layernorm_fp32(trt: Any, network: Any, config: Any, onnx_path: Path) -> None:
    names = [network.get_layer(i).name for i in range(network.num_layers)]
    pinned = layers_to_pin_fp32(names, layernorm_node_names(onnx_path))
    for i in pinned:
        layer = network.get_layer(i)
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            layer.set_output_type(j, trt.float32)
    if pinned:
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)


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
        _pin_layernorm_fp32(trt, network, config, onnx_path)
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


@dataclass(frozen=True)
class Prepared:
    """A runtime ready to build or load: its logger, the plugin libraries loaded, the GPU."""

    runtime: Runtime
    logger: Any
    plugins: tuple[str, ...]
    gpu: str
    cc: str


def prepare(runtime: Runtime, plugins: Sequence[Path | str]) -> Prepared:
    """Load the plugin libraries, register TensorRT's own plugins, and ask CUDA for the GPU."""
    logger = runtime.logger()
    loaded = load_plugins(plugins, runtime.dlopen)
    runtime.trt.init_libnvinfer_plugins(logger, "")
    gpu, cc = runtime.cuda.device()
    return Prepared(runtime, logger, tuple(loaded), gpu, cc)


def build_engines(bundle: Bundle, roles: Sequence[str] = (), precision: str | None = None, *,
                  plugins: Sequence[Path | str] = (), max_batch: int = 32, opt_batch: int | None = None,
                  dims: Mapping[str, int] | None = None, workspace: int = 1 << 30, rebuild: bool = False,
                  use_plugin_graph: bool = True, runtime: Runtime | None = None) -> list[BuildResult]:
    """``edgevl engine build``: one plan per role (all roles by default), each recorded as the role's
    default for the ``tensorrt`` backend. ``runtime``: the TensorRT/CUDA to use (default: installed)."""
    roles = list(roles) or list(bundle.manifest.models)
    choices = [choose(bundle, r, precision, plugins=plugins, use_plugin_graph=use_plugin_graph)
               for r in roles]
    if max_batch < 1 or (opt_batch is not None and not 1 <= opt_batch <= max_batch):
        raise InputError(f"--max-batch {max_batch} / --opt-batch {opt_batch}: need 1 <= opt <= max")
    ready = prepare(runtime or default_runtime(), plugins)
    topts = TensorRTOptions(max_batch=max_batch, opt_batch=opt_batch, dims=dict(dims or {}))
    out = []
    for c in choices:
        prof = default_profile(bundle.model(c.role).inputs, topts)
        res = ensure_plan(bundle, c, ready.runtime.trt, ready.logger, ready.gpu, ready.cc, prof,
                          ready.plugins, workspace, rebuild)
        record_default(bundle, res)
        out.append(res)
    return out
