"""Safe reading and writing of user-named files: one place for the rules every command follows.

Reading (:func:`read_text_file`, :func:`read_json_file`): regular files only (a FIFO, ``/dev/zero`` or
a directory is refused before anything is read, so nothing can hang or fill memory), a size limit
checked on the open descriptor, UTF-8 with a clear error, and for JSON: a nesting limit, no
duplicate keys (a later value never silently wins), no NaN/Infinity, no lone surrogates.

Writing (:func:`check_output`, :func:`atomic_output`, :func:`write_text_atomic`): an output is never
one of the command's inputs, never a directory, device or FIFO, its folder must exist; the bytes go
to a temporary file in the same folder that is renamed into place, so a full disk, a file-size limit
or a kill leaves the old file (or none) and never half of a new one.

Presenting: :func:`csv_cell` neutralises spreadsheet formulas, :func:`term_safe` escapes control
characters before anything reaches a terminal.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from edgevl.errors import InputError

#: default size limit of a text or JSON input (labels, templates, calibration, lists, reports)
MAX_TEXT_BYTES = 64 << 20
#: default nesting limit of a JSON input
MAX_JSON_DEPTH = 64


def _describe_mode(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


def read_bytes_file(path: str | os.PathLike[str], what: str, *, max_bytes: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; anything else is an :class:`InputError`.

    The file is opened non-blocking (so a FIFO cannot hang the open) and checked with ``fstat`` on
    the same descriptor (no race between the check and the read)."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(f"{p}: {what} not found") from None
    except OSError as e:
        raise InputError(f"{p}: cannot read the {what} ({_reason(e)})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{p}: the {what} must be a regular file, this is {_describe_mode(st.st_mode)}")
        if st.st_size > max_bytes:
            raise InputError(f"{p}: the {what} is {st.st_size} bytes; at most {max_bytes} are read")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise InputError(f"{p}: cannot read the {what} ({_reason(e)})") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # grew while being read
        raise InputError(f"{p}: the {what} is over {max_bytes} bytes")
    return data


def read_text_file(path: str | os.PathLike[str], what: str, *, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """A regular UTF-8 text file (a BOM is dropped) of at most ``max_bytes``."""
    data = read_bytes_file(path, what, max_bytes=max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: the {what} is not UTF-8 text ({e.reason} at byte {e.start})") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _check_tree(value: Any, max_depth: int) -> None:
    """Depth and string checks without recursion: nesting over ``max_depth``, or a string holding a
    lone surrogate (not encodable as UTF-8), raises ValueError."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            if depth > max_depth:
                raise ValueError(f"nested deeper than {max_depth} levels")
            for k, x in v.items():
                _check_string(k)
                stack.append((x, depth + 1))
        elif isinstance(v, list):
            if depth > max_depth:
                raise ValueError(f"nested deeper than {max_depth} levels")
            stack.extend((x, depth + 1) for x in v)
        elif isinstance(v, str):
            _check_string(v)


def _check_string(s: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"string {s[:40]!r} holds a lone surrogate escape") from None


def parse_json(text: str, where: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Strict JSON: duplicate keys, NaN/Infinity, lone surrogates and nesting over ``max_depth`` are
    an :class:`InputError` naming ``where``; so is running out of memory while parsing."""
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        _check_tree(value, max_depth)
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply (at most {max_depth} levels)") from None
    except MemoryError:  # a large document under an address-space or cgroup limit
        raise InputError(f"{where}: not enough memory to parse {len(text)} characters of JSON") from None
    except ValueError as e:  # JSONDecodeError is a ValueError
        raise InputError(f"{where}: not valid JSON for edgevl ({str(e)[:200]})") from None
    return value


def read_json_file(path: str | os.PathLike[str], what: str, *, max_bytes: int = MAX_TEXT_BYTES,
                   max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A regular file of strict JSON (see :func:`parse_json`)."""
    return parse_json(read_text_file(path, what, max_bytes=max_bytes), f"{path}: {what}", max_depth=max_depth)


# ---------------------------------------------------------------- outputs


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path: str | os.PathLike[str], what: str,
                 inputs: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """Refuse an output path that would destroy an input or cannot hold a file, before any work.

    Refused: one of ``inputs`` (the same file by any path or link), an existing directory, device,
    FIFO or socket, a folder that does not exist or cannot be written. Returns the path."""
    p = Path(path)
    for src in inputs:
        if _same_file(p, Path(src)):
            raise InputError(f"{p}: the {what} is also an input ({src}); choose another output path")
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise InputError(f"{p}: cannot use it as the {what} ({_reason(e)})") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise InputError(f"{p}: the {what} must be a regular file path, this is {_describe_mode(st.st_mode)}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{p}: the {what}'s folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{p}: the {what}'s folder {parent} is not writable")
    return p


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], what: str, *, mode: str = "w",
                  inputs: Iterable[str | os.PathLike[str]] = (),
                  encoding: str | None = "utf-8", newline: str | None = None) -> Iterator[IO[Any]]:
    """Write ``path`` through a temporary file in its folder, renamed into place when the block
    ends without an error. Any OS error (full disk, file-size limit, read-only folder) becomes an
    :class:`InputError` and leaves the old file as it was."""
    p = check_output(path, what, inputs)
    binary = "b" in mode
    try:
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    except OSError as e:
        raise InputError(f"{p}: cannot write the {what} ({_reason(e)})") from None
    ok = False
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding,
                       newline=None if binary else newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(p):
            with contextlib.suppress(OSError):
                os.chmod(tmp, stat.S_IMODE(os.stat(p).st_mode))
        else:
            with contextlib.suppress(OSError):
                os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
        ok = True
    except OSError as e:
        raise InputError(f"{p}: cannot write the {what} ({_reason(e)})") from None
    finally:
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike[str], text: str, what: str, *,
                      inputs: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """:func:`atomic_output` for one string."""
    with atomic_output(path, what, inputs=inputs) as f:
        f.write(text)
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, what: str, *,
                       inputs: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """:func:`atomic_output` for bytes (an encoded picture, say)."""
    with atomic_output(path, what, mode="wb", inputs=inputs) as f:
        f.write(data)
    return Path(path)


def is_disk_error(e: OSError) -> bool:
    """A write failed for lack of room (full disk, quota, file-size limit)."""
    return e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


# ---------------------------------------------------------------- presenting

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet will not run: text starting with ``= + - @`` (or tab / CR) gets a
    leading apostrophe (OWASP's advice). Numbers are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL_KEEP_TAB = {c: v for c, v in _CONTROL.items() if c != 0x09}


def term_safe(text: str, *, keep_tab: bool = False) -> str:
    """``text`` with every C0/C1 control character (ESC, BEL, CR, newline...) written as ``\\xNN``:
    nothing a catalogue, bundle or file name holds can move the cursor or recolour a terminal."""
    return text.translate(_CONTROL_KEEP_TAB if keep_tab else _CONTROL)


__all__ = [
    "MAX_JSON_DEPTH", "MAX_TEXT_BYTES", "atomic_output", "check_output", "csv_cell", "is_disk_error",
    "parse_json", "read_bytes_file", "read_json_file", "read_text_file", "term_safe", "write_bytes_atomic",
    "write_text_atomic",
]
