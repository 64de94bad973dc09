"""Command line: a thin typer layer over the public API.

Any :class:`edgevl.errors.EdgevlError`, and any usage error (unknown option, missing argument, a
value out of range), becomes one line on stderr, ``edgevl: error: …``, and exit code 2.

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
from edgevl.safeio import term_safe

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


#: the root's options that take a value (the word after them is not the command)
_ROOT_VALUED = ("--max-image-mp",)


def _command_word(args: list[str]) -> str | None:
    """The first argument that is not an option or a root option's value: the command name."""
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a in _ROOT_VALUED:
            skip = True
        elif not a.startswith("-"):
            return a
    return None


def _click_exceptions() -> Any:
    """click's exception module: vendored inside recent typer, the click package in older ones."""
    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:  # pragma: no cover - typer < 0.16 depends on click itself
        return importlib.import_module("click.exceptions")


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


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
    cx = _click_exceptions()
    try:
        if word in modules:
            load_commands([modules[word]])
            from edgevl.cli.app import app as target
        elif word is None:
            target = _help_app()  # `edgevl`, `edgevl --help`: the listing only
        else:
            load_commands()  # an unknown command: the full app says so
            from edgevl.cli.app import app as target
        rv = target(args=args, prog_name="edgevl", standalone_mode=False)
    except cx.NoArgsIsHelpError as e:  # `edgevl books` alone: the help, as before
        e.show()
        return 2
    except cx.ClickException as e:  # unknown option, bad value...: one line, not typer's box
        ctx: Any = getattr(e, "ctx", None)
        usage = ctx is not None and isinstance(e, cx.UsageError)
        hint = f" (see '{ctx.command_path} --help')" if usage else ""
        print(f"edgevl: error: {term_safe(_one_line(e.format_message()))}{hint}", file=sys.stderr)
        return int(e.exit_code)
    except EdgevlError as e:
        print(f"edgevl: error: {term_safe(_one_line(str(e)))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `edgevl ocr … | head`: the reader left; not an error of ours
        _silence_stdout()
        return 0
    except OSError as e:  # stdout on a full disk or /dev/full, a write the OS refused
        _drop_stdout_if_broken()
        print(f"edgevl: error: cannot write the output ({e.strerror or e})", file=sys.stderr)
        return 2
    except Exception as e:  # typer.Abort (typer is imported lazily): Ctrl-D at a prompt
        if type(e).__name__ != "Abort":
            raise
        print("edgevl: aborted", file=sys.stderr)
        return 1
    try:
        sys.stdout.flush()  # a full stdout fails here, while the error can still be one line
    except BrokenPipeError:
        _silence_stdout()
    except OSError as e:
        _silence_stdout()
        print(f"edgevl: error: cannot write the output ({e.strerror or e})", file=sys.stderr)
        return 2
    return rv if isinstance(rv, int) else 0


def _drop_stdout_if_broken() -> None:
    """After a failed write: when stdout itself cannot be flushed (/dev/full), point it at /dev/null
    so the data still buffered cannot fail again at exit (a second, traceback-like message)."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        _silence_stdout()


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail a second time."""
    import os

    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError):
        pass


def run() -> None:
    import signal

    if hasattr(signal, "SIGXFSZ"):  # a file-size limit: the write fails with EFBIG (one line), not a kill
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    sys.exit(main())


__all__ = ["COMMANDS", "load_commands", "main", "run"]
