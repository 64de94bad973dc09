"""``run_library``: the photo list, the results folder, the shared index, a runner and the summary."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgevl.books.catalogue import Columns, load_catalogue
from edgevl.books.index import load_or_build, save_shared
from edgevl.errors import InputError
from edgevl.library.records import Counts, RunSummary
from edgevl.library.store import ResultStore, read_log
from edgevl.library.worker import WorkerOptions


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


def read_photo_list(paths: Sequence[Path | str], list_file: Path | None = None) -> list[str]:
    """Absolute photo paths from the arguments and a list file (one path per line; blank lines and
    ``#`` comments skipped; relative paths are relative to the current folder), duplicates dropped."""
    items = [str(p) for p in paths]
    if list_file is not None:
        try:
            text = list_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{list_file}: cannot read the photo list ({e})") from e
        items += [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
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
                progress: Callable[[int, int], Callable[[dict[str, Any]], None]] | None = None) -> RunSummary:
    """Process the photos not yet in ``cfg.out``, committing each one as it completes.

    ``progress(todo, skipped)`` is called once before the work starts and returns a callback that
    receives each new record.
    """
    from edgevl.models.ppocr import ocr_model

    model = ocr_model(cfg.model).name  # an unknown model fails before anything is written
    cat = load_catalogue(cfg.catalogue, cfg.columns)
    store = ResultStore(cfg.out)
    # a folder holds the results of one catalogue and one OCR model: a resumed run cannot mix them
    done, _ = store.open({"catalogue_sha256": cat.sha256, "catalogue": str(cfg.catalogue),
                          "ocr_model": model})
    try:
        todo = [p for p in photos if p not in done]
        skipped = len(photos) - len(todo)
        index, folder, _ = load_or_build(cat, cfg.cache_dir)  # built once, here, not per worker
        workers = cfg.workers if cfg.workers > 0 else cpu_count()
        backend = "ray" if cfg.ray else "local"
        threads = cfg.threads if cfg.threads > 0 else max(1, cpu_count() // max(1, workers))
        if cfg.ray:
            threads = cfg.threads if cfg.threads > 0 else max(1, int(cfg.num_cpus))
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
        for rec in records:
            store.append(rec)
            processed += 1
            failed += rec["status"] != "ok"
            w = rec.get("worker") or {}
            if "pid" in w:
                key = f"{w.get('host', '')}:{w['pid']}"
                peaks[key] = max(peaks.get(key, 0.0), float(w.get("peak_rss_mb", 0.0)))
            if on_record:
                on_record(rec)
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
