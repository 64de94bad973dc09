"""The results folder: an append-only commit log with one JSON line per photo, and the tables made from it.

Atomicity: a photo's spines are committed together as ONE line, written by the one driver process
with ``O_APPEND`` and fsynced before the next photo is written. A line counts only when it is complete
(ends in a newline), parses and is a valid record (:func:`record_problem`); a run killed in the middle
of a write leaves at most one torn last line, which the next run cuts off before appending (that photo
is then simply done again). A failed write (full disk, file-size limit) is cut back off at once.

Reading (:func:`read_log`) is deterministic: records are taken in file order, the first valid record
of a photo wins and any later one (a duplicated line) is skipped, and an invalid line (not JSON, a
missing key, a wrong type, ``status: ok`` without a spine list) does not count -- its photo is not
done and is processed again; such lines are reported (:class:`LogReport`), never fatal.

The log is opened with ``O_NOFOLLOW`` and must be a regular file with one link: a symbolic link, a
directory, a FIFO or a hard link to another file is one clear error, never followed or appended to.
``run.json`` and the tables (``results.csv``, ``results.parquet``) are written through
:mod:`edgevl.safeio` (temporary file renamed into place), so they are never half-written.

Photo names that are not UTF-8 (a Linux file name is bytes) are stored as a readable ``photo``
(undecodable bytes as ``\\xNN``) plus ``photo_raw``, the name's bytes in hex, from which resuming
gets the exact name back (:func:`record_key`).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import json
import math
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from edgevl.errors import InputError
from edgevl.library.records import COLUMNS, Counts, table_rows
from edgevl.safeio import atomic_output, check_output, csv_cell, parse_json, read_json_file, write_text_atomic

LOG = "photos.jsonl"
RUN = "run.json"
LOCK = ".lock"
CSV = "results.csv"
PARQUET = "results.parquet"

#: a log line longer than this is damaged (a photo of 80 spines is about 20 KB)
MAX_LINE = 16 << 20
#: the run settings that decide the results: a folder made with other values is refused
COMPARED = ("catalogue_sha256", "ocr_model", "columns")
STATUSES = ("ok", "error")
_TEXT_COLUMNS = ("photo", "ocr", "title", "author", "tag", "error")

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


# ---------------------------------------------------------------- records


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


_SPINE_TYPES: tuple[tuple[str, Any], ...] = (
    ("spine", _is_int), ("ocr", lambda v: isinstance(v, str)), ("matched", lambda v: isinstance(v, bool)),
    ("work", lambda v: v is None or _is_int(v)), ("book_id", lambda v: v is None or _is_int(v)),
    ("title", lambda v: isinstance(v, str)), ("author", lambda v: isinstance(v, str)),
    ("tag", lambda v: isinstance(v, str)), ("score", _is_num),
    ("quad", lambda v: isinstance(v, list) and all(
        isinstance(p, list) and len(p) == 2 and all(_is_num(x) for x in p) for p in v)),
)


def record_problem(rec: Any) -> str | None:
    """Why ``rec`` is not a valid photo record (None when it is): the keys and types that
    :func:`edgevl.library.records.table_rows` and :class:`Counts` rely on."""
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not an object"
    photo = rec.get("photo")
    if not isinstance(photo, str) or not photo:
        return "'photo' must be a non-empty string"
    raw = rec.get("photo_raw")
    if raw is not None:
        try:
            if not isinstance(raw, str) or not bytes.fromhex(raw):
                raise ValueError
        except ValueError:
            return "'photo_raw' must be the name's bytes in hex"
    status = rec.get("status")
    if status not in STATUSES:
        return f"'status' must be one of {', '.join(STATUSES)}"
    if not isinstance(rec.get("error", ""), str):
        return "'error' must be a string"
    spines = rec.get("spines")
    if not isinstance(spines, list):
        return "'spines' must be a list"
    if status == "ok":
        for s in spines:
            if not isinstance(s, dict):
                return "each spine must be an object"
            for key, ok in _SPINE_TYPES:
                if key not in s or not ok(s[key]):
                    return f"spine key {key!r} missing or of the wrong type"
    return None


def record_key(rec: dict[str, Any]) -> str:
    """The photo path a (valid) record belongs to, exactly as the photo list gives it."""
    raw = rec.get("photo_raw")
    return os.fsdecode(bytes.fromhex(raw)) if isinstance(raw, str) else str(rec["photo"])


def utf8_safe(value: Any) -> Any:
    """``value`` with every string that cannot be UTF-8 (lone surrogates from undecodable file
    names) written with backslash escapes."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {utf8_safe(k): utf8_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [utf8_safe(v) for v in value]
    return value


def storable(rec: dict[str, Any]) -> dict[str, Any]:
    """The record as it is written: a photo name that is not UTF-8 gets ``photo_raw`` (its bytes in
    hex) and a readable ``photo``; any other undecodable text is backslash-escaped."""
    photo = rec["photo"]
    try:
        photo.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = os.fsencode(photo)
        except UnicodeEncodeError:  # a surrogate that surrogateescape did not make
            raw = photo.encode("utf-8", "surrogatepass")
        rec = {**utf8_safe(rec), "photo": raw.decode("utf-8", "backslashreplace"), "photo_raw": raw.hex()}
    return rec


def encode_record(rec: dict[str, Any]) -> bytes:
    """One log line (ends in a newline)."""
    try:
        return (json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(utf8_safe(storable(rec)), ensure_ascii=False, separators=(",", ":"))
                + "\n").encode("utf-8")


# ---------------------------------------------------------------- reading the log


@dataclass
class LogReport:
    """What reading a log skipped: how many damaged lines (and the first few: line number, why)
    and how many duplicated records."""

    damaged: list[tuple[int, str]] = field(default_factory=list)
    n_damaged: int = 0
    duplicates: int = 0
    keep: int = 20

    def add_damage(self, line: int, why: str) -> None:
        self.n_damaged += 1
        if len(self.damaged) < self.keep:
            self.damaged.append((line, why))

    def summary(self, log: Path) -> str | None:
        """One line for the user, or None when nothing was skipped."""
        parts = []
        if self.damaged:
            line, why = self.damaged[0]
            parts.append(f"{self.n_damaged} line(s) that are not valid records were skipped and "
                         f"their photos are done again (line {line}: {why})")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicated record(s) were skipped (the first one counts)")
        return f"{log}: " + "; ".join(parts) if parts else None


def open_log(path: Path, *, write: bool) -> int:
    """A descriptor of the commit log: never through a symbolic link, a regular file with one link."""
    flags = (os.O_RDWR | os.O_CREAT | os.O_APPEND) if write else os.O_RDONLY
    try:
        fd = os.open(path, flags | _O_NOFOLLOW | _O_CLOEXEC | os.O_NONBLOCK, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InputError(f"{path}: the commit log is a symbolic link; edgevl never follows it (it would "
                             "write into another file): remove it or use another --out") from None
        if e.errno == errno.EISDIR:
            raise InputError(f"{path}: the commit log is a directory; remove it or use another --out"
                             ) from None
        raise InputError(f"{path}: cannot open the commit log ({e.strerror or e})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise InputError(f"{path}: the commit log is {kind}; remove it or use another --out")
        if st.st_nlink > 1:
            raise InputError(f"{path}: the commit log is a hard link to another file ({st.st_nlink} links); "
                             "edgevl never writes into another file: use another --out")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _lines(f: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """(line number, complete line) of a log; an over-long line comes as None, a torn tail not at all."""
    n = 0
    while True:
        line = f.readline(MAX_LINE)
        if not line:
            return
        n += 1
        if line.endswith(b"\n"):
            yield n, line
            continue
        if len(line) < MAX_LINE:
            return  # torn tail (cut off by the next writer)
        while line and not line.endswith(b"\n"):  # skip the rest of an over-long line
            line = f.readline(MAX_LINE)
        if not line:
            return
        yield n, None


def _iter_records(f: IO[bytes], where: Path, report: LogReport | None) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    for n, line in _lines(f):
        why: str | None
        if line is None:
            why, rec = f"longer than {MAX_LINE} bytes", None
        else:
            try:
                rec = parse_json(line.decode("utf-8"), f"{where}:{n}")
                why = record_problem(rec)
            except (InputError, UnicodeDecodeError) as e:
                why, rec = ("not UTF-8" if isinstance(e, UnicodeDecodeError) else "not valid JSON"), None
        if why is not None or rec is None:
            if report is not None and (line is None or line.strip()):  # a blank line is no damage
                report.add_damage(n, why or "not a record")
            continue
        key = record_key(rec)
        if key in seen:
            if report is not None:
                report.duplicates += 1
            continue
        seen.add(key)
        yield rec


def read_log(path: Path, report: LogReport | None = None) -> Iterator[dict[str, Any]]:
    """The valid records of a log in file order, the first of each photo only (see the module doc).
    A missing log has none; one that is a link, a directory or a device is an :class:`InputError`."""
    if not os.path.lexists(path):
        return
    fd = open_log(path, write=False)
    with os.fdopen(fd, "rb") as f:
        yield from _iter_records(f, path, report)


def _repair_tail(fd: int) -> int:
    """Cut a torn last line (no trailing newline) off the log; returns the bytes removed."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    pos, block, keep = size, 1 << 16, 0
    while pos > 0:
        start = max(0, pos - block)
        k = os.pread(fd, pos - start, start).rfind(b"\n")
        if k >= 0:
            keep = start + k + 1
            break
        pos = start
    os.ftruncate(fd, keep)
    os.fsync(fd)
    return size - keep


# ---------------------------------------------------------------- the folder


def _load_settings(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """run.json as a dict, or (None, why it is unusable)."""
    try:
        old = read_json_file(path, "run settings", max_bytes=1 << 20)
    except InputError as e:
        return None, str(e)
    if not isinstance(old, dict):
        return None, f"{path}: holds a JSON {type(old).__name__}, not the run settings object"
    return old, None


class ResultStore:
    """A results folder. ``open()`` takes an exclusive lock (one run at a time per folder), repairs a
    torn tail, checks the run settings against the folder's and returns the photos already done."""

    def __init__(self, out: Path | str) -> None:
        self.out = Path(out)
        self.log = self.out / LOG
        self.report = LogReport()
        self._lock: int | None = None
        self._fd: int | None = None
        self.committed = 0

    def _take_lock(self) -> None:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"{self.out}: cannot create the results folder ({e.strerror or e})") from None
        if not self.out.is_dir():
            raise InputError(f"{self.out}: the results folder is not a directory")
        try:
            fd = os.open(self.out / LOCK, os.O_WRONLY | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC | os.O_NONBLOCK,
                         0o666)
        except OSError as e:
            raise InputError(f"{self.out / LOCK}: cannot create the lock file ({e.strerror or e})") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise InputError(f"{self.out / LOCK}: the lock file is not a regular file")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            raise InputError(f"{self.out}: another run is writing to this results folder") from e
        except BaseException:
            os.close(fd)
            raise
        self._lock = fd

    def _check_settings(self, settings: dict[str, Any], fd: int) -> None:
        run = self.out / RUN
        if os.path.lexists(run):
            old, why = _load_settings(run)
            if old is None:
                if os.fstat(fd).st_size > 0:  # results of unknown settings: never mix them
                    raise InputError(f"{why}; the catalogue and model of the results in {self.out} are "
                                     f"unknown: restore {RUN}, delete it to continue with this catalogue and "
                                     "model, or use another --out")
                old = None  # an empty folder with a damaged run.json: written anew below
            else:
                for k in COMPARED:
                    if k in old and k in settings and old[k] != settings[k]:
                        raise InputError(f"{self.out}: holds results of a run with {k}={old[k]!r}, not "
                                         f"{settings[k]!r}; use another --out folder")
                return
        write_text_atomic(run, json.dumps(settings, indent=2, ensure_ascii=False), "run settings")

    def _remove_stale_temporaries(self) -> None:
        """Temporary files of a run killed while writing run.json or a table (ours, by their names:
        see :func:`edgevl.safeio.atomic_output`; we hold the lock)."""
        for name in (RUN, CSV, PARQUET):
            for tmp in [*self.out.glob(f".{name}.*.tmp"), self.out / f".{name}.tmp"]:
                with contextlib.suppress(OSError):
                    if tmp.is_file() and not tmp.is_symlink():
                        tmp.unlink()

    def open(self, settings: dict[str, Any]) -> tuple[set[str], Counts]:
        self._take_lock()
        self._remove_stale_temporaries()
        try:
            for table in (CSV, PARQUET):  # a table that cannot be written fails now, not after the run
                check_output(self.out / table, "results table")
            fd = open_log(self.log, write=True)
        except BaseException:
            self.close()
            raise
        self._fd = fd
        try:
            self._check_settings(utf8_safe(settings), fd)
            _repair_tail(fd)
            done: set[str] = set()
            counts = Counts()
            self.report = LogReport()
            with os.fdopen(os.dup(fd), "rb") as f:
                f.seek(0)
                for rec in _iter_records(f, self.log, self.report):
                    done.add(record_key(rec))
                    counts = counts.add(rec)
        except OSError as e:
            self.close()
            raise InputError(f"{self.log}: cannot read or repair the commit log ({e.strerror or e})"
                             ) from None
        except BaseException:
            self.close()
            raise
        return done, counts

    def append(self, record: dict[str, Any]) -> None:
        """Commit one photo: its whole record as one line, on disk before returning. A failed write
        (full disk, file-size limit) is cut off again and raised as an :class:`InputError`."""
        if self._fd is None:
            raise RuntimeError("ResultStore.append before open")
        line = encode_record(record)
        fd = self._fd
        start = os.fstat(fd).st_size
        try:
            view = memoryview(line)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)  # the log ends with the last whole record again
                os.fsync(fd)
            raise InputError(f"{self.log}: cannot commit a photo ({e.strerror or e}); the {self.committed} "
                             "photos committed by this run are kept: make room and run the same command "
                             "again to resume") from None
        self.committed += 1

    def close_log(self) -> None:
        """Stop appending (the folder stays locked until :meth:`close`)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        self.close_log()
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None

    def write_tables(self, parquet: bool = True) -> dict[str, str]:
        """results.csv (and results.parquet when pyarrow is installed) from the log, atomically."""
        out: dict[str, str] = {"log": str(self.log)}
        with atomic_output(self.out / CSV, "results table", newline="") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            for rec in read_log(self.log):
                for row in table_rows(rec):
                    q = row["quad"]
                    row["quad"] = "" if q is None else " ".join(f"{q[i]:.1f},{q[i + 1]:.1f}"
                                                                for i in range(0, len(q), 2))
                    for c in _TEXT_COLUMNS:
                        row[c] = csv_cell(row[c])
                    w.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
        out["csv"] = str(self.out / CSV)
        if parquet:
            path = write_parquet(self.log, self.out / PARQUET)
            if path is not None:
                out["parquet"] = str(path)
        return out


def write_parquet(log: Path, dest: Path, batch: int = 20_000) -> Path | None:
    """The table as Parquet (row groups of ``batch`` rows, streamed); None when pyarrow is missing."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    schema = pa.schema([("photo", pa.string()), ("spine", pa.int32()), ("quad", pa.list_(pa.float32())),
                        ("ocr", pa.string()), ("book_id", pa.int64()), ("title", pa.string()),
                        ("author", pa.string()), ("tag", pa.string()), ("score", pa.float32()),
                        ("status", pa.string()), ("error", pa.string())])
    rows: list[dict[str, Any]] = []
    with atomic_output(dest, "results table", mode="wb") as f:
        try:
            with pq.ParquetWriter(f, schema) as w:
                for rec in read_log(log):
                    rows.extend(table_rows(rec))
                    if len(rows) >= batch:
                        w.write_table(pa.Table.from_pylist(rows, schema=schema))
                        rows = []
                if rows:
                    w.write_table(pa.Table.from_pylist(rows, schema=schema))
        except pa.ArrowException as e:  # pyarrow's own OSError subclasses pass through as OSError
            raise InputError(f"{dest}: cannot write the results table ({e})") from None
    return dest
