"""``edgevl info BUNDLE``: manifest and model IO."""

from __future__ import annotations

from pathlib import Path

import typer

from edgevl.bundle import load_bundle, verify_models
from edgevl.cli.app import app, emit_json


@app.command()
def info(
    bundle: Path = typer.Argument(..., help="bundle directory"),
    as_json: bool = typer.Option(False, "--json", help="print the manifest as JSON"),
    no_verify: bool = typer.Option(False, "--no-verify", help="skip the sha256 check"),
    verify: bool = typer.Option(False, "--verify",
                                help="also load every ONNX model (structure check) and compare its IO "
                                     "with the manifest"),
) -> None:
    """Print a bundle's manifest and the inputs/outputs of its models."""
    b = load_bundle(bundle, verify=not no_verify)
    m = b.manifest
    checked = verify_models(b) if verify else None
    if as_json:
        out = {"path": str(b.path), "digest": b.digest, **m.to_dict()}
        if checked is not None:
            out["verified"] = checked
        emit_json(out)
        return
    upgraded = f" (read from schema {m.upgraded_from})" if m.upgraded_from else ""
    typer.echo(f"{b.path}: {m.name}  task={m.task}  precision={m.precision}  "
               f"schema={m.schema_version}{upgraded}")
    for role, spec in m.models.items():
        typer.echo(f"  model {role}: {spec.file}")
        for t in spec.inputs:
            ranges = "  " + " ".join(f"{r.role}={r.min}..{r.max}" for r in t.dims if r.min != r.max)
            typer.echo(f"    in  {t.name:<24} {t.dtype:<8} {list(t.shape)}{ranges.rstrip()}")
        for t in spec.outputs:
            typer.echo(f"    out {t.name:<24} {t.dtype:<8} {list(t.shape)}")
    if m.preprocess:
        typer.echo(f"  preprocess: {dict(m.preprocess)}")
    if m.config:
        typer.echo("  config: " + ", ".join(f"{k}={v}" for k, v in m.config.items() if k != "charset"))
    if checked is not None:
        typer.echo(f"  verified: {', '.join(f'{k} {v}' for k, v in checked.items()) or 'no models'}")
