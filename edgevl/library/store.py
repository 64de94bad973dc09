"""The results folder: an append-only log with one JSON line per photo, and the tables made from it.

Atomicity: a photo's spines are committed together as ONE line, written by the one driver process in
one ``write`` and flushed (fsync) before the next photo is written. A line counts only when it is
complete (ends in a newline and parses); a run killed in the middle of a write leaves at most one torn
last line, which the next run cuts off before appending (that photo is then simply done again). So a
photo is either wholly in the results or not at all, and a resumed run skips exactly the photos whose
line is there: no row is lost or written twice.

The tables (``results.csv`` and ``results.parquet``, one row per spine) are written from the log at
the end of every run, each to a temporary file renamed into place, so they are never half-written.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from edgevl.errors import InputError
from edgevl.library.records import COLUMNS, Counts, table_rows

LOG = "photos.jsonl"
RUN = "run.json"
LOCK = ".lock"
CSV = "results.csv"
PARQUET = "results.parquet"


def _repair_tail(path: Path) -> int:
    """Cut a torn last line (no trailing newline) off the log; returns the bytes removed."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        # scan back to the previous newline
        pos, block = size, 1 << 16
        while pos > 0:
            start = max(0, pos - block)
            f.seek(start)
            chunk = f.read(pos - start)
            k = chunk.rfind(b"\n")
            if k >= 0:
                keep = start + k + 1
                break
            pos = start
        else:
            keep = 0
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
        return size - keep


def read_log(path: Path) -> Iterator[dict[str, Any]]:
    """Complete, parsable records of a log, first occurrence of each photo only."""
    if not path.is_file():
        return
    seen: set[str] = set()
    with path.open("rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                return  # torn tail (cut off by the next writer)
            try:
                rec = json.loads(line)
                photo = rec["photo"]
            except (ValueError, KeyError, TypeError):
                continue  # a damaged line does not count: that photo is done again
            if photo in seen:
                continue
            seen.add(photo)
            yield rec


class ResultStore:
    """A results folder. ``open()`` takes an exclusive lock (one run at a time per folder), repairs a
    torn tail, checks the run settings against the folder's and returns the photos already done."""

    def __init__(self, out: Path | str) -> None:
        self.out = Path(out)
        self.log = self.out / LOG
        self._lock: IO[bytes] | None = None
        self._f: IO[bytes] | None = None

    def open(self, settings: dict[str, Any]) -> tuple[set[str], Counts]:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            lock = (self.out / LOCK).open("ab")
        except OSError as e:
            raise InputError(f"{self.out}: cannot create the results folder ({e})") from e
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            lock.close()
            raise InputError(f"{self.out}: another run is writing to this results folder") from e
        self._lock = lock
        run = self.out / RUN
        if run.is_file():
            old = json.loads(run.read_text(encoding="utf-8"))
            for k, v in settings.items():
                if k in old and old[k] != v:
                    self.close()
                    raise InputError(f"{self.out}: holds results of a run with {k}={old[k]!r}, not {v!r}; "
                                     "use another --out folder")
        else:
            run.write_text(json.dumps(settings, indent=2), encoding="utf-8")
        if self.log.is_file():
            _repair_tail(self.log)
        done: set[str] = set()
        counts = Counts()
        for rec in read_log(self.log):
            done.add(rec["photo"])
            counts = counts.add(rec)
        self._f = self.log.open("ab")
        return done, counts

    def append(self, record: dict[str, Any]) -> None:
        """Commit one photo: its whole record as one line, flushed to disk before returning."""
        if self._f is None:
            raise RuntimeError("ResultStore.append before open")
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        self._f.write(line)
        self._f.flush()
        os.fsync(self._f.fileno())

    def close_log(self) -> None:
        """Stop appending (the folder stays locked until :meth:`close`)."""
        if self._f is not None:
            self._f.close()
            self._f = None

    def close(self) -> None:
        self.close_log()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    def write_tables(self, parquet: bool = True) -> dict[str, str]:
        """results.csv (and results.parquet when pyarrow is installed) from the log, atomically."""
        out: dict[str, str] = {"log": str(self.log)}
        tmp = self.out / f".{CSV}.tmp"
        with tmp.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            for rec in read_log(self.log):
                for row in table_rows(rec):
                    q = row["quad"]
                    row["quad"] = "" if q is None else " ".join(f"{q[i]:.1f},{q[i + 1]:.1f}"
                                                                for i in range(0, len(q), 2))
                    w.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
        tmp.replace(self.out / CSV)
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
    tmp = dest.with_name(f".{dest.name}.tmp")
    rows: list[dict[str, Any]] = []
    with pq.ParquetWriter(tmp, schema) as w:
        for rec in read_log(log):
            rows.extend(table_rows(rec))
            if len(rows) >= batch:
                w.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows = []
        if rows:
            w.write_table(pa.Table.from_pylist(rows, schema=schema))
    tmp.replace(dest)
    return dest
