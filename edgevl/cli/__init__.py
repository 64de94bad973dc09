"""Command line: a thin typer layer over the public API.

Any :class:`edgevl.errors.EdgevlError` becomes one line on stderr and exit code 2.

Cold start: each command lives in its own module (``edgevl/cli/<module>.py``) and only the module of
the command being run is imported, so ``edgevl ocr`` never loads the book matcher, scipy or the
benchmark harness. ``edgevl --help`` lists the commands from :data:`COMMANDS` without importing any
of them (a test checks that this listing is what the fully registered app prints). The typer app
with every command: ``load_commands()`` then ``edgevl.cli.app.app``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from edgevl.errors import EdgevlError

#: every top-level command: (name, module in edgevl.cli, is a group of subcommands, short help),
#: in the order typer lists them (plain commands in module order, then groups)
COMMANDS: tuple[tuple[str, str, bool, str], ...] = (
    ("match-books", "books", False,
     "Match every spine on shelf photos to a catalogue: OCR, spine grouping, per-photo assignment."),
    ("embed", "embed", False,
     "Print the embeddings of texts or images: one line per input (input, then the values)."),
    ("classify", "embed", False,
     "Zero-shot classify images against class names (prompt ensembling or descriptions)."),
    ("export", "export", False,
     "Export a CLIP / LightCLIP / BERT (MiniLM) checkpoint to a checked ONNX bundle."),
    ("info", "info", False, "Print a bundle's manifest and the inputs/outputs of its models."),
    ("ocr", "ocr", False, "Read the text in IMAGE(s): one line per detected text box, in reading order."),
    ("quantize", "quantize", False,
     "Quantise a bundle to int8 QDQ ONNX, keeping sensitive nodes in float until the guard passes."),
    ("bench", "bench", True,
     "Latency benchmarks: `edgevl bench BUNDLE...` (= bench run) and `edgevl bench compare A B`."),
    ("books", "books", True, "Book catalogue: build the matching index, evaluate matching on OCR segments."),
    ("engine", "engine", True, "TensorRT engines for a bundle (see docs/kernels.md)."),
    ("library", "library", True, "Library-scale runs: many shelf photos on a process pool or a Ray cluster."),
    ("models", "models", True, "Build and list the OCR model bundles (PP-OCRv6, PP-OCRv5, PP-OCRv4)."),
)
MODULES = ("bench", "books", "embed", "engine", "export", "info", "library", "models", "ocr", "quantize")

_loaded: set[str] = set()


def load_commands(modules: tuple[str, ...] | list[str] = MODULES) -> None:
    """Import command modules (each registers its commands on the shared typer app)."""
    for m in MODULES:  # registration order decides the order of the help listing
        if m in modules and m not in _loaded:
            importlib.import_module(f"edgevl.cli.{m}")
            _loaded.add(m)


def _command_word(args: list[str]) -> str | None:
    """The first argument that is not an option: the command name (the root has no valued options)."""
    return next((a for a in args if not a.startswith("-")), None)


def _help_app() -> Any:
    """A typer app whose commands are stubs carrying the real short help: ``edgevl --help`` without
    importing the command modules."""
    import typer

    from edgevl.cli.app import new_app

    stub = new_app()
    for name, _, group, help_text in COMMANDS:
        if group:
            stub.add_typer(typer.Typer(help=help_text), name=name)
        else:
            stub.command(name, help=help_text)(lambda: None)
    return stub


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this; the script entry point is ``run``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    word = _command_word(args)
    if word == "library":
        from edgevl.cli.library import rewrite_ray_option

        args = rewrite_ray_option(args)
    modules = {name: mod for name, mod, _, _ in COMMANDS}
    try:
        if word in modules:
            load_commands([modules[word]])
            from edgevl.cli.app import app as target
        elif word is None:
            target = _help_app()  # `edgevl`, `edgevl --help`: the listing only
        else:
            load_commands()  # an unknown command: the full app says so
            from edgevl.cli.app import app as target
        target(args=args, prog_name="edgevl")
    except SystemExit as e:  # click's standalone mode exits, with 2 for usage errors
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except EdgevlError as e:
        print(f"edgevl: error: {e}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    sys.exit(main())


__all__ = ["COMMANDS", "load_commands", "main", "run"]
