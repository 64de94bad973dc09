"""``edgevl engine build``: TensorRT plans for a bundle, a thin layer over
:func:`edgevl.backends.tensorrt.build_engines` (never run on TensorRT here: no TensorRT, no GPU)."""

from __future__ import annotations

from pathlib import Path

import typer

from edgevl.bundle import load_bundle
from edgevl.cli.app import app, emit_json
from edgevl.cli.checks import flag, number_in
from edgevl.errors import InputError
from edgevl.safeio import term_safe

engine_app = typer.Typer(help="TensorRT engines for a bundle (see docs/kernels.md).", no_args_is_help=True)
app.add_typer(engine_app, name="engine")


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
    from edgevl.backends.tensorrt import build_engines

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
