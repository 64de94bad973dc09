"""Option validators for the CLI: a bad value is a usage error (one line, exit 2) before any work.

Each factory returns a typer ``callback``; typer passes the parsed value and the callback returns
it unchanged or raises :class:`typer.BadParameter`, which the CLI prints as ``edgevl: error: …``.
"""

from __future__ import annotations

import math
import os
import stat
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import typer

from edgevl.errors import EdgevlError, InputError

N = TypeVar("N", int, float)


def number_in(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
              allow: tuple[float, ...] = ()) -> Callable[[N | None], N | None]:
    """A callback accepting None, the values in ``allow``, or finite numbers in [lo, hi]
    (``(lo, hi]`` with ``lo_open``); NaN and infinities are always refused."""

    def check(value: N | None) -> N | None:
        if value is None or value in allow:
            return value
        ok = math.isfinite(value)
        ok = ok and (lo is None or (value > lo if lo_open else value >= lo)) and (hi is None or value <= hi)
        if not ok:
            left = "" if lo is None else (f"> {lo:g}" if lo_open else f">= {lo:g}")
            right = "" if hi is None else f"<= {hi:g}"
            want = " and ".join(s for s in (left, right) if s) or "finite"
            extra = "".join(f" or {a:g}" for a in allow)
            raise typer.BadParameter(f"expected a finite number {want}{extra}, got {value}")
        return value

    return check


_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def plain_field(text: str) -> str:
    """One field of the plain (tab-separated, one line per input) output: backslash, newline, CR
    and tab are escaped as ``\\\\``, ``\\n``, ``\\r``, ``\\t``, so one input is always one line and
    the fields can be split on tabs and unescaped unambiguously. Every other control character
    (ESC, BEL, C1...) is written ``\\xNN`` (:func:`edgevl.safeio.term_safe`): nothing an input holds
    can drive the terminal."""
    from edgevl.safeio import term_safe

    return term_safe(text.translate(_ESCAPES))


#: the one cap on ``--threads`` (intra-op threads) of every command
MAX_THREADS = 1024


def flag(*names: str, help: str) -> bool:
    """A boolean flag (``--json``): no ``<bool>`` type column in the help, as a flag takes no value."""
    result: bool = typer.Option(False, *names, metavar="", help=help)
    return result


def threads_option(help: str = "intra-op threads (0 = runtime default)") -> int:
    """``--threads N``: 0 (the runtime's default) to :data:`MAX_THREADS`, the same bound everywhere."""
    result: int = typer.Option(0, "--threads", callback=number_in(0, MAX_THREADS), help=help)
    return result


def check_outputs(outputs: Sequence[tuple[Path | None, str]], inputs: Sequence[Path | str]) -> None:
    """Every output a command will write, checked before any work (safeio.check_output): never one of
    ``inputs``, never a directory or device, its folder writable; two outputs never share a path. A
    missing folder is made when its nearest existing parent is a writable folder."""
    from edgevl.safeio import check_output

    seen: dict[str, str] = {}
    for path, what in outputs:
        if path is None:
            continue
        parent = Path(os.path.abspath(path)).parent
        if not parent.exists():
            check_cache_dir(parent, f"{what}'s")
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise InputError(f"{path}: cannot make the {what}'s folder ({e.strerror or e})") from None
        check_output(path, what, inputs)
        key = os.path.abspath(path)
        if key in seen:
            raise InputError(f"{path}: used for both the {seen[key]} and the {what}")
        seen[key] = what


def check_cache_dir(path: Path | None, what: str = "--cache-dir") -> None:
    """A cache folder the user named: absent (it is made), or a writable directory."""
    if path is None:
        return
    try:
        st = os.stat(path)
    except FileNotFoundError:
        parent = next((p for p in Path(os.path.abspath(path)).parents if p.exists()), Path("/"))
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"{path}: cannot create the {what} folder ({parent} is not a writable folder)"
                             ) from None
        return
    except OSError as e:
        raise InputError(f"{path}: cannot use it as the {what} ({e.strerror or e})") from None
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path}: the {what} must be a folder, this is a file")
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"{path}: the {what} folder is not writable")


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def check_image_name(path: Path | None, option: str) -> None:
    """An output picture's name must end in a suffix OpenCV can encode (checked before any work)."""
    if path is not None and path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"{path}: {option} expects an image file name ending in .png, .jpg, .bmp or .webp")


class BatchErrors:
    """The bad inputs of a batch command: each reported at once as one ``edgevl: error:`` line on
    stderr while the good ones go on; :meth:`finish` then exits with code 2 if any failed."""

    def __init__(self) -> None:
        self.failed = 0

    def report(self, e: EdgevlError, console: Any = None) -> None:
        """One line on stderr (through ``console``, a rich Console, while its progress bar is live)."""
        from edgevl.safeio import term_safe

        text = " ".join(part.strip() for part in str(e).splitlines() if part.strip())
        line = f"edgevl: error: {term_safe(text)}"
        if console is not None:
            from rich.text import Text

            console.print(Text(line), soft_wrap=True)
        else:
            print(line, file=sys.stderr, flush=True)
        self.failed += 1

    def finish(self) -> None:
        if self.failed:
            raise typer.Exit(2)
