"""Command line: a thin typer layer over the public API.

Any :class:`edgevl.errors.EdgevlError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

from edgevl.cli import (  # noqa: F401  (registers commands)
    bench,
    books,
    embed,
    export,
    info,
    library,
    models,
    ocr,
    quantize,
)
from edgevl.cli.app import app
from edgevl.errors import EdgevlError


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this; the script entry point is ``run``)."""
    argv = library.rewrite_ray_option(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=argv, prog_name="edgevl")
    except SystemExit as e:  # click's standalone mode exits, with 2 for usage errors
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except EdgevlError as e:
        print(f"edgevl: error: {e}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    sys.exit(main())


__all__ = ["app", "main", "run"]
