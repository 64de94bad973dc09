"""``edgevl info BUNDLE``: manifest and model IO."""

from __future__ import annotations

from pathlib import Path

import typer

from edgevl.bundle import load_bundle, verify_models
from edgevl.cli.app import app, emit_json
from edgevl.cli.checks import flag
from edgevl.safeio import term_safe


def _say(text: str) -> None:
    typer.echo(term_safe(text))  # names and paths from a manifest never reach the terminal raw


@app.command()
def info(
    bundle: Path = typer.Argument(..., help="bundle directory"),
    as_json: bool = flag("--json", help="print the manifest as JSON"),
    no_verify: bool = flag("--no-verify", help="skip the sha256 check"),
    verify: bool = flag("--verify", help="also load every ONNX model (structure check) and compare its IO "
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
    _say(f"{b.path}: {m.name}  task={m.task}  precision={m.precision}  "
               f"schema={m.schema_version}{upgraded}")
    for role, spec in m.models.items():
        _say(f"  model {role}: {spec.file}")
        for t in spec.inputs:
            ranges = "  " + " ".join(f"{r.role}={r.min}..{r.max}" for r in t.dims if r.min != r.max)
            _say(f"    in  {t.name:<24} {t.dtype:<8} {list(t.shape)}{ranges.rstrip()}")
        for t in spec.outputs:
            _say(f"    out {t.name:<24} {t.dtype:<8} {list(t.shape)}")
    if m.preprocess:
        _say(f"  preprocess: {dict(m.preprocess)}")
    if m.config:
        _say("  config: " + ", ".join(f"{k}={v}" for k, v in m.config.items() if k != "charset"))
    if checked is not None:
        _say(f"  verified: {', '.join(f'{k} {v}' for k, v in checked.items()) or 'no models'}")
