"""The typer application every command module registers on."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

app = typer.Typer(
    name="edgevl",
    help="Edge inference for vision-language models: OCR, book matching, CLIP, export, bench.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def emit_json(obj: Any) -> None:
    """Print one JSON document on stdout (the --json form of every command)."""
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


@app.callback()
def _root() -> None:
    """Edge inference for vision-language models: OCR, book matching, CLIP, export, bench."""
