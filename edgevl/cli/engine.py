"""``edgevl engine build``: TensorRT plans for a bundle (never run here: no TensorRT, no GPU)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from edgevl.bundle import Bundle, load_bundle
from edgevl.cli.app import app, emit_json
from edgevl.cli.checks import flag, number_in
from edgevl.errors import InputError
from edgevl.safeio import term_safe

if TYPE_CHECKING:
    from edgevl.trt_build import BuildResult

engine_app = typer.Typer(help="TensorRT engines for a bundle (see docs/kernels.md).", no_args_is_help=True)
app.add_typer(engine_app, name="engine")


def build_engines(bundle: Bundle, roles: Sequence[str] = (), precision: str | None = None, *,
                  plugins: Sequence[Path | str] = (), max_batch: int = 32, opt_batch: int | None = None,
                  dims: Mapping[str, int] | None = None, workspace: int = 1 << 30, rebuild: bool = False,
                  use_plugin_graph: bool = True) -> list[BuildResult]:
    """``edgevl engine build``: one plan per role (all roles by default)."""
    from edgevl.backends.base import TensorRTOptions
    from edgevl.backends.tensorrt import _Cuda, default_profile, import_tensorrt, load_plugins
    from edgevl.trt_build import choose, ensure_plan, record_default

    roles = list(roles) or list(bundle.manifest.models)
    choices = [choose(bundle, r, precision, plugins=plugins, use_plugin_graph=use_plugin_graph)
               for r in roles]
    if max_batch < 1 or (opt_batch is not None and not 1 <= opt_batch <= max_batch):
        raise InputError(f"--max-batch {max_batch} / --opt-batch {opt_batch}: need 1 <= opt <= max")
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    loaded = load_plugins(list(plugins))
    trt.init_libnvinfer_plugins(logger, "")
    gpu, cc = _Cuda().device()
    topts = TensorRTOptions(max_batch=max_batch, opt_batch=opt_batch, dims=dict(dims or {}))
    out = []
    for c in choices:
        prof = default_profile(bundle.model(c.role).inputs, topts)
        res = ensure_plan(bundle, c, trt, logger, gpu, cc, prof, loaded, workspace, rebuild)
        record_default(bundle, res)
        out.append(res)
    return out


@engine_app.command("build")
def build_cmd(
    bundle_dir: Path = typer.Argument(..., metavar="BUNDLE", help="bundle directory"),
    precision: str = typer.Option(None, "--precision", help="fp32 | fp16 | int8 (default: the bundle's)"),
    plugins: list[Path] = typer.Option([], "--plugins", help="plugin library (libedgevl_trt_plugin.so)"),
    role: list[str] = typer.Option([], "--role", help="model role(s) to build (default: all)"),
    max_batch: int = typer.Option(32, "--max-batch", help="largest batch of the optimisation profile",
                                  callback=number_in(1, 65_536)),
    opt_batch: int = typer.Option(None, "--opt-batch", help="batch TensorRT tunes for (default: max)",
                                  callback=number_in(1, 65_536)),
    workspace_mb: int = typer.Option(1024, "--workspace-mb", help="builder workspace (MiB)",
                                     callback=number_in(1, 1 << 20)),
    plain_graph: bool = flag("--no-plugin-graph", help="build the bundle's own ONNX graph"),
    rebuild: bool = flag("--rebuild", help="rebuild even when a cached plan exists"),
    as_json: bool = flag("--json", help="print the result as JSON"),
) -> None:
    """Build (or find cached) TensorRT plans: profiles from the manifest, timing + plan caches."""
    if workspace_mb < 1:
        raise InputError(f"--workspace-mb {workspace_mb}: must be >= 1")
    for p in plugins:
        if not p.is_file():
            raise InputError(f"{p}: plugin library not found (cmake -S . -B build && cmake --build build)")
    bundle = load_bundle(bundle_dir)
    results = build_engines(bundle, role, precision, plugins=plugins, max_batch=max_batch,
                            opt_batch=opt_batch, workspace=workspace_mb << 20, rebuild=rebuild,
                            use_plugin_graph=not plain_graph)
    if as_json:
        emit_json([{"role": r.role, "plan": str(r.plan), "precision": r.precision, "built": r.built,
                    "seconds": round(r.seconds, 3), "graph": str(r.graph)} for r in results])
        return
    for r in results:
        state = f"built in {r.seconds:.1f} s" if r.built else "cached"
        typer.echo(term_safe(f"{r.role}: {r.precision} {state} -> {r.plan}"))
