"""``run_library``: the photo list, the results folder, the shared index, a runner and the summary."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgevl.books.catalogue import Columns, load_catalogue
from edgevl.books.index import load_or_build, save_shared
from edgevl.errors import InputError
from edgevl.library.lifecycle import interrupts
from edgevl.library.records import Counts, RunSummary
from edgevl.library.store import ResultStore, read_log
from edgevl.library.worker import WorkerOptions

#: the most ONNX Runtime threads per worker (as `edgevl ocr --threads`), workers and actors of a run
MAX_THREADS = 1024
MAX_WORKERS = 1024
#: the largest photo list file read (a million paths of ~100 bytes)
MAX_LIST_BYTES = 256 << 20


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs besides the photo list."""

    catalogue: Path
    out: Path
    workers: int = 0  # local processes; 0 = one per CPU core
    threads: int = 0  # ONNX Runtime threads per worker; 0 = cores / workers
    backend: str = "ort-cpu"
    model: str | None = None  # OCR model family; None: the default
    cache_dir: Path | None = None
    columns: Columns = field(default_factory=Columns)
    ray: bool = False
    ray_address: str | None = None
    actors: int = 0
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    send_bytes: bool = True
    parquet: bool = True


def check_config(cfg: RunConfig) -> None:
    """An :class:`InputError` for a setting no run can use, before anything is read or written."""
    from edgevl.backends import BACKENDS

    if cfg.backend not in BACKENDS:
        raise InputError(f"--backend {cfg.backend!r} is unknown; choose one of {', '.join(BACKENDS)}")
    for name, value, hi in (("--workers", cfg.workers, MAX_WORKERS), ("--threads", cfg.threads, MAX_THREADS),
                            ("--actors", cfg.actors, MAX_WORKERS)):
        if not 0 <= value <= hi:
            raise InputError(f"{name} must be between 0 and {hi}, not {value}")
    if not (math.isfinite(cfg.num_cpus) and 0 < cfg.num_cpus <= MAX_WORKERS):
        raise InputError(f"--num-cpus must be a number > 0 and <= {MAX_WORKERS}, not {cfg.num_cpus}")
    if not (math.isfinite(cfg.num_gpus) and 0 <= cfg.num_gpus <= MAX_WORKERS):
        raise InputError(f"--num-gpus must be a number >= 0 and <= {MAX_WORKERS}, not {cfg.num_gpus}")


def read_photo_list(paths: Sequence[Path | str], list_file: Path | None = None) -> list[str]:
    """Absolute photo paths from the arguments and a list file (one path per line; blank lines and
    ``#`` comments skipped; relative paths are relative to the current folder), duplicates dropped.
    The list file must be a regular file (never a FIFO or a device: nothing blocks); names that are
    not UTF-8 are kept as the file system's bytes (surrogate escapes, as in ``sys.argv``)."""
    from edgevl.safeio import read_bytes_file

    items = [os.fspath(p) for p in paths]
    if list_file is not None:
        data = read_bytes_file(list_file, "photo list", max_bytes=MAX_LIST_BYTES)
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        text = os.fsdecode(data) if os.name != "nt" else data.decode("utf-8", "replace")
        for ln in text.splitlines():
            s = ln.strip()
            if s and not s.startswith("#") and "\0" not in s:
                items.append(s)
    seen: dict[str, None] = {}
    for p in items:
        seen.setdefault(str(Path(p).expanduser().absolute()), None)
    if not seen:
        raise InputError("no photos: give PHOTOS or --from-list FILE")
    return list(seen)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run_library(photos: Sequence[str], cfg: RunConfig,
                progress: Callable[[int, int], Callable[[dict[str, Any]], None]] | None = None,
                warn: Callable[[str], None] | None = None) -> RunSummary:
    """Process the photos not yet in ``cfg.out``, committing each one as it completes.

    ``progress(todo, skipped)`` is called once before the work starts and returns a callback that
    receives each new record; ``warn`` receives what reading the commit log skipped (damaged or
    duplicated lines), once, before the work starts.

    While it runs, SIGTERM / SIGINT / SIGHUP raise :class:`edgevl.library.lifecycle.RunInterrupted`
    (a ``KeyboardInterrupt``) between two commits: the workers are ended, the log keeps every
    photo committed so far, and rerunning resumes.
    """
    from edgevl.models.ppocr import ocr_model

    check_config(cfg)
    if cfg.ray and cfg.ray_address:
        from edgevl.library.ray_runner import check_reachable

        check_reachable(cfg.ray_address)  # before the results folder is made
    model = ocr_model(cfg.model).name  # an unknown model fails before anything is written
    cat = load_catalogue(cfg.catalogue, cfg.columns)
    store = ResultStore(cfg.out)
    cols = cfg.columns
    with interrupts() as guard:
        # a folder holds the results of one catalogue (compared by content: any path to the same
        # file resumes), one OCR model and one choice of columns: a resumed run cannot mix them
        done, _ = store.open({"catalogue_sha256": cat.sha256, "ocr_model": model,
                              "columns": [cols.title, cols.author, cols.tag],
                              "catalogue": os.fsdecode(Path(cfg.catalogue).absolute())})
        try:
            note = store.report.summary(store.log)
            if note and warn:
                warn(note)
            todo = [p for p in photos if p not in done]
            skipped = len(photos) - len(todo)
            try:
                index, folder, _ = load_or_build(cat, cfg.cache_dir)  # built once, here, not per worker
            except OSError as e:
                where = cfg.cache_dir if cfg.cache_dir is not None else "the index cache"
                raise InputError(f"{where}: cannot use it as the index cache folder ({e.strerror or e})"
                                 ) from None
            workers = cfg.workers if cfg.workers > 0 else cpu_count()
            backend = "ray" if cfg.ray else "local"
            threads = cfg.threads if cfg.threads > 0 else max(1, cpu_count() // max(1, workers))
            if cfg.ray:
                threads = cfg.threads if cfg.threads > 0 else max(1, min(MAX_THREADS, int(cfg.num_cpus)))
            options = WorkerOptions(threads=threads, backend=cfg.backend, model=model,
                                    calibration=index.calibration.to_dict() if index.calibration else {})
            records: Iterator[dict[str, Any]]
            if not todo:
                records = iter(())
            elif cfg.ray:
                from edgevl.library.ray_runner import run_ray

                records = run_ray(todo, index, options, address=cfg.ray_address, actors=cfg.actors,
                                  num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, send_bytes=cfg.send_bytes)
                workers = cfg.actors
            else:
                from edgevl.library.local import run_local

                save_shared(index, folder)  # the arrays every worker maps read-only
                del index  # the driver only writes results
                records = run_local(todo, str(folder), min(workers, len(todo)), options)
            on_record = progress(len(todo), skipped) if progress else None
            peaks: dict[str, float] = {}
            processed = failed = 0
            t0 = time.perf_counter()
            try:
                for rec in records:
                    with guard.critical():  # a signal waits until the photo is committed
                        store.append(rec)
                    processed += 1
                    failed += rec["status"] != "ok"
                    w = rec.get("worker") or {}
                    if "pid" in w:
                        key = f"{w.get('host', '')}:{w['pid']}"
                        peaks[key] = max(peaks.get(key, 0.0), float(w.get("peak_rss_mb", 0.0)))
                    if on_record:
                        on_record(rec)
            finally:
                close = getattr(records, "close", None)
                if close is not None:
                    close()  # ends the workers now, not when the generator is collected
            seconds = time.perf_counter() - t0
            store.close_log()
            tables = store.write_tables(cfg.parquet)
            total = Counts.of(read_log(store.log))
        finally:
            store.close()
    if cfg.ray and workers <= 0:
        workers = len(peaks)
    return RunSummary(out=str(cfg.out), total=total, listed=len(photos), skipped=skipped, processed=processed,
                      failed_now=failed, seconds=seconds, backend=backend, workers=workers,
                      peak_rss_mb=peaks, tables=tables)
