"""``edgevl models build|list``: the embedded PP-OCRv4 bundles."""

from __future__ import annotations

from pathlib import Path

import typer

from edgevl.bundle import load_bundle
from edgevl.cli.app import app, emit_json
from edgevl.errors import BundleError
from edgevl.models.ppocr import BUNDLE_NAMES, build_bundles, bundle_home

models_app = typer.Typer(help="Build and list the embedded default bundles (PP-OCRv4).",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("build")
def build(
    out: Path | None = typer.Option(None, "--out", help="folder for the bundles (default: cache)"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Build the PP-OCRv4 det/cls/rec bundles from the installed rapidocr wheel (offline)."""
    b = build_bundles(out)
    rows = [{"key": k, "name": x.manifest.name, "task": x.manifest.task, "path": str(x.path),
             "digest": x.digest} for k, x in (("det", b.det), ("cls", b.cls), ("rec", b.rec))]
    if as_json:
        emit_json({"bundles": rows})
        return
    for r in rows:
        typer.echo(f"{r['name']:<14} {r['task']:<18} {r['path']}")


@models_app.command("list")
def list_models(
    root: Path | None = typer.Option(None, "--dir", help="bundle folder (default: cache)"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """List the default bundles and whether they are built and valid."""
    base = root or bundle_home()
    rows = []
    for key, name in BUNDLE_NAMES.items():
        path = base / name
        try:
            b = load_bundle(path)
            rows.append({"key": key, "name": name, "path": str(path), "status": "ok",
                         "task": b.manifest.task, "digest": b.digest})
        except BundleError as e:
            status = "missing" if not path.exists() else f"invalid: {e}"
            rows.append({"key": key, "name": name, "path": str(path), "status": status})
    if as_json:
        emit_json({"root": str(base), "bundles": rows})
        return
    typer.echo(f"bundle folder: {base}")
    for r in rows:
        typer.echo(f"  {r['name']:<14} {r['status']}")
    if any(r["status"] != "ok" for r in rows):
        typer.echo("  (run `edgevl models build`; they are also built on first use)")
