"""Option validators for the CLI: a bad value is a usage error (one line, exit 2) before any work.

Each factory returns a typer ``callback``; typer passes the parsed value and the callback returns
it unchanged or raises :class:`typer.BadParameter`, which the CLI prints as ``edgevl: error: …``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import typer

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
    the fields can be split on tabs and unescaped unambiguously."""
    return text.translate(_ESCAPES)
