"""The typer application every command module registers on."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import typer

HELP = "Edge inference for vision-language models: OCR, book matching, CLIP, export, bench."


def _megapixels(value: float | None) -> float | None:
    """--max-image-mp: a finite number > 0 (defined here: `edgevl --help` imports no command module)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"expected a finite number > 0, got {value}")
    return value


def _version(value: bool) -> None:
    """--version: print ``edgevl X.Y.Z`` and stop (eager: before any command is parsed)."""
    if value:
        from edgevl import __version__

        typer.echo(f"edgevl {__version__}")
        raise typer.Exit(0)


def new_app() -> typer.Typer:
    """A typer application with edgevl's root settings and no commands."""
    new = typer.Typer(name="edgevl", help=HELP, no_args_is_help=True, pretty_exceptions_enable=False,
                      add_completion=False)

    @new.callback()
    def _root(
        ctx: typer.Context,
        max_image_mp: float | None = typer.Option(
            None, "--max-image-mp", callback=_megapixels,
            help="refuse images over this many megapixels before decoding them (default 200)"),
        _show_version: bool = typer.Option(False, "--version", is_eager=True, callback=_version, metavar="",
                                           help="print the edgevl version and exit"),
    ) -> None:
        """Edge inference for vision-language models: OCR, book matching, CLIP, export, bench."""
        if max_image_mp is not None:
            from edgevl.vision import io

            old = io.MAX_PIXELS
            io.MAX_PIXELS = round(max_image_mp * 1_000_000)
            ctx.call_on_close(lambda: setattr(io, "MAX_PIXELS", old))  # main() may run again in-process

    return new


#: the app every command module registers on (edgevl.cli imports only the modules a command needs)
app = new_app()


def emit_json(obj: Any) -> None:
    """Print one JSON document on stdout (the --json form of every command)."""
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
