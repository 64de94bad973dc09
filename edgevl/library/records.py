"""One photo's record (what the result log stores, one JSON line per photo) and its table rows.

A record is a plain JSON-able dict so that it crosses process and Ray boundaries as it is:
``{"photo", "status": "ok" | "error", "error", "lines", "spines": [...], "seconds", "worker"}``.
Each spine: ``{"spine", "quad", "ocr", "matched", "work", "book_id", "title", "author", "tag", "score"}``
(``book_id``: the catalogue row of the work's first copy, 0-based, data rows only).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from edgevl.bench.machine import peak_rss_mb
from edgevl.books.shelf import ShelfResult

#: columns of the results table (CSV and Parquet), one row per spine; a photo without spines or
#: whose processing failed has one row with ``spine`` -1 and status ``no_spines`` / ``error``
COLUMNS = ("photo", "spine", "quad", "ocr", "book_id", "title", "author", "tag", "score", "status", "error")
STATUSES = ("matched", "rejected", "no_spines", "error")  # of a table row


def worker_info() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "peak_rss_mb": round(peak_rss_mb(), 1)}


def photo_record(photo: str, result: ShelfResult, seconds: float) -> dict[str, Any]:
    """The record of a photo that was read and matched."""
    spines = []
    for s in result.spines:
        m = s.match
        spines.append({"spine": s.index, "quad": [[round(x, 1), round(y, 1)] for x, y in s.polygon],
                       "ocr": s.text, "matched": m.matched, "work": m.work,
                       "book_id": m.rows[0] if m.rows else None, "title": m.title, "author": m.author,
                       "tag": m.tag, "score": round(m.score, 4)})
    secs = {k: round(v, 3) for k, v in result.seconds.items()}
    secs["total"] = round(seconds, 3)
    return {"photo": photo, "status": "ok", "error": "", "lines": result.n_lines, "spines": spines,
            "seconds": secs, "worker": worker_info()}


def error_record(photo: str, error: BaseException | str, seconds: float = 0.0, *,
                 worker: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record of a photo that could not be processed (the run goes on). ``worker``: who found
    the error (default: this process; ``{}`` for the driver, which is no worker)."""
    msg = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return {"photo": photo, "status": "error", "error": msg, "lines": 0, "spines": [],
            "seconds": {"total": round(seconds, 3)}, "worker": worker_info() if worker is None else worker}


def table_rows(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The results-table rows of one photo record (see :data:`COLUMNS`)."""
    photo = record["photo"]
    if record["status"] != "ok" or not record["spines"]:
        status = "error" if record["status"] != "ok" else "no_spines"
        yield {"photo": photo, "spine": -1, "quad": None, "ocr": "", "book_id": None, "title": "",
               "author": "", "tag": "", "score": None, "status": status, "error": record.get("error", "")}
        return
    for s in record["spines"]:
        yield {"photo": photo, "spine": s["spine"], "quad": [float(v) for p in s["quad"] for v in p],
               "ocr": s["ocr"], "book_id": s["book_id"], "title": s["title"], "author": s["author"],
               "tag": s["tag"], "score": s["score"], "status": "matched" if s["matched"] else "rejected",
               "error": ""}


@dataclass(frozen=True)
class Counts:
    """What a set of photo records holds."""

    photos: int = 0
    spines: int = 0
    matched: int = 0
    rejected: int = 0
    failures: int = 0
    no_spines: int = 0

    def add(self, record: dict[str, Any]) -> Counts:
        ok = record["status"] == "ok"
        sp = record["spines"] if ok else []
        m = sum(1 for s in sp if s["matched"])
        return Counts(self.photos + 1, self.spines + len(sp), self.matched + m, self.rejected + len(sp) - m,
                      self.failures + (not ok), self.no_spines + (ok and not sp))

    @classmethod
    def of(cls, records: Iterable[dict[str, Any]]) -> Counts:
        c = cls()
        for r in records:
            c = c.add(r)
        return c


@dataclass(frozen=True)
class RunSummary:
    """A run's summary: totals over the whole results folder (this run and the runs it resumed) and
    this run's own throughput."""

    out: str
    total: Counts
    listed: int  # photos in this run's list
    skipped: int  # already in the results (earlier runs)
    processed: int  # done by this run
    failed_now: int
    seconds: float
    backend: str  # "local" or "ray"
    workers: int
    peak_rss_mb: dict[str, float]  # worker (host:pid) -> its peak RSS
    tables: dict[str, str]

    @property
    def photos_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["photos_per_s"] = round(self.photos_per_s, 4)
        d["seconds"] = round(self.seconds, 3)
        return d
