"""The typer application every command module registers on."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

HELP = "Edge inference for vision-language models: OCR, book matching, CLIP, export, bench."


def new_app() -> typer.Typer:
    """A typer application with edgevl's root settings and no commands."""
    new = typer.Typer(name="edgevl", help=HELP, no_args_is_help=True, pretty_exceptions_enable=False,
                      add_completion=False)

    @new.callback()
    def _root() -> None:
        """Edge inference for vision-language models: OCR, book matching, CLIP, export, bench."""

    return new


#: the app every command module registers on (edgevl.cli imports only the modules a command needs)
app = new_app()


def emit_json(obj: Any) -> None:
    """Print one JSON document on stdout (the --json form of every command)."""
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
