"""``edgevl info BUNDLE``: manifest and model IO."""

from __future__ import annotations

from pathlib import Path

import typer

from edgevl.bundle import load_bundle
from edgevl.cli.app import app, emit_json


@app.command()
def info(
    bundle: Path = typer.Argument(..., help="bundle directory"),
    as_json: bool = typer.Option(False, "--json", help="print the manifest as JSON"),
    no_verify: bool = typer.Option(False, "--no-verify", help="skip the sha256 check"),
) -> None:
    """Print a bundle's manifest and the inputs/outputs of its models."""
    b = load_bundle(bundle, verify=not no_verify)
    m = b.manifest
    if as_json:
        emit_json({"path": str(b.path), "digest": b.digest, **m.to_dict()})
        return
    typer.echo(f"{b.path}: {m.name}  task={m.task}  precision={m.precision}  schema={m.schema_version}")
    for role, spec in m.models.items():
        typer.echo(f"  model {role}: {spec.file}")
        for t in spec.inputs:
            typer.echo(f"    in  {t.name:<24} {t.dtype:<8} {list(t.shape)}")
        for t in spec.outputs:
            typer.echo(f"    out {t.name:<24} {t.dtype:<8} {list(t.shape)}")
    if m.preprocess:
        typer.echo(f"  preprocess: {dict(m.preprocess)}")
    if m.config:
        typer.echo("  config: " + ", ".join(f"{k}={v}" for k, v in m.config.items() if k != "charset"))
