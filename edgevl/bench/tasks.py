"""Task mode: a whole pipeline over a folder of photos, with per-stage times.

``ocr``: :class:`edgevl.tasks.ocr.OcrPipeline` on every photo; stages ``det``, ``cls`` (crops +
orientation), ``rec`` and ``total`` come from the pipeline's own ``timings`` after each call.
``books``: the OCR pipeline, then :class:`edgevl.books.BookMatcher` on the photo's text lines
(``--catalogue CSV``); stages ``det``, ``cls``, ``rec``, ``ocr``, ``match`` and ``total``.

One iteration = one photo (photos are cycled); batch is 1 and items/s = photos per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edgevl.backends import EngineOptions, backend_device_kind, backend_unavailable
from edgevl.bench.harness import LIMIT_REASON, BenchSettings, Progress, make_run
from edgevl.bench.inputs import IMAGE_SUFFIXES
from edgevl.bench.jetson import JetsonRun
from edgevl.bench.machine import load_average, peak_rss_mb, process_gpu_memory_mb
from edgevl.bench.results import BenchResult, BenchRun
from edgevl.bench.stats import summarize, thin
from edgevl.errors import InputError
from edgevl.vision.io import Image, read_image

StageTimer = Callable[[Image], Mapping[str, float]]  # one photo → seconds per stage


def photos_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"{folder}: task mode needs a folder of photos ({', '.join(IMAGE_SUFFIXES)})")
    photos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not photos:
        raise InputError(f"{folder}: no photos ({', '.join(IMAGE_SUFFIXES)}) in it")
    return photos


def _stage_dict(obj: Any) -> dict[str, float]:
    """Seconds per stage from a timings object or mapping (numbers only; counts are skipped)."""
    items: list[tuple[Any, Any]]
    if isinstance(obj, Mapping):
        items = list(obj.items())
    elif hasattr(obj, "__dataclass_fields__"):
        items = [(k, getattr(obj, k)) for k in obj.__dataclass_fields__]
    else:
        items = list(vars(obj).items()) if hasattr(obj, "__dict__") else []
    out: dict[str, float] = {}
    for k, v in items:
        if isinstance(v, float) and not isinstance(v, bool):  # counts (boxes, reads) are ints
            out[str(k)] = v
    return out


def ocr_timer(options: EngineOptions) -> tuple[StageTimer, str]:
    from edgevl.tasks.ocr import OcrPipeline

    pipe = OcrPipeline(options=options)

    def run(img: Image) -> Mapping[str, float]:
        t0 = time.perf_counter()
        res = pipe(img)
        total = time.perf_counter() - t0
        stages = _stage_dict(res.timings)
        stages["total"] = total
        return stages

    precision = getattr(getattr(pipe.detector, "bundle", None), "manifest", None)
    return run, str(getattr(precision, "precision", "fp32"))


def books_timer(options: EngineOptions, catalogue: Path | None) -> tuple[StageTimer, str]:
    """OCR the photo, then match its text lines against the catalogue (stage ``match``)."""
    if catalogue is None:
        raise InputError("--task books needs --catalogue CSV (the library catalogue to match against)")
    from edgevl.books import BookMatcher
    from edgevl.tasks.ocr import OcrPipeline

    matcher = BookMatcher.from_catalogue(catalogue)
    pipe = OcrPipeline(options=options)

    def run(img: Image) -> Mapping[str, float]:
        t0 = time.perf_counter()
        lines = pipe(img)
        t1 = time.perf_counter()
        matcher.match([ln.text for ln in lines])
        t2 = time.perf_counter()
        stages = _stage_dict(lines.timings)
        stages.pop("total", None)
        stages.update({"ocr": t1 - t0, "match": t2 - t1, "total": t2 - t0})
        return stages

    precision = getattr(getattr(pipe.detector, "bundle", None), "manifest", None)
    return run, str(getattr(precision, "precision", "fp32"))


#: the benchmark scenarios ``edgevl bench --task`` runs, each a timer factory ``(options, catalogue)``
SCENARIOS: dict[str, Callable[[EngineOptions, Path | None], tuple[StageTimer, str]]] = {
    "ocr": lambda options, catalogue: ocr_timer(options),
    "books": books_timer,
}


def bench_task(
    task: str,
    folder: Path,
    settings: BenchSettings,
    progress: Progress | None = None,
    command: str | None = None,
    timer: StageTimer | None = None,
    precision: str = "fp32",
    catalogue: Path | None = None,
) -> BenchRun:
    """Time ``task`` over the photos in ``folder``; one result per stage (Ctrl-C: partial run)."""
    if task not in SCENARIOS:
        raise InputError(f"--task {task!r}: choose one of {', '.join(SCENARIOS)}")
    load_before = load_average()
    photos = photos_in(folder)
    images = [read_image(p) for p in photos]
    base: dict[str, Any] = {"kind": "task", "bundle": task, "task": task, "backend": settings.backend,
                            "batch": 1, "threads": settings.threads, "inputs": str(folder)}
    if timer is None:
        why = backend_unavailable(settings.backend)
        if why is not None:
            r = BenchResult(**base, role="total", precision=precision, status="unavailable", reason=why)
            return make_run([r], {**settings.to_dict(), "task": task}, command=command)
        opts = EngineOptions(backend=settings.backend, threads=settings.threads)
        timer, precision = SCENARIOS[task](opts, catalogue)
    per_stage: dict[str, list[float]] = {}
    jetson = JetsonRun.start()
    iters = settings.iters if settings.iters is not None else (None if settings.seconds else len(images))
    budget = None if settings.seconds is None else settings.seconds * 1e9
    interrupted = False
    start = time.perf_counter_ns()
    i = 0
    try:
        for w in range(settings.warmup):
            if settings.past_deadline():
                raise KeyboardInterrupt
            timer(images[w % len(images)])
        while (iters is None or i < iters) and (budget is None or i < settings.min_iters
                                                 or time.perf_counter_ns() - start < budget):
            if settings.past_deadline():
                raise KeyboardInterrupt
            stages = timer(images[i % len(images)])
            for k, v in stages.items():
                per_stage.setdefault(k, []).append(v * 1000.0)
            i += 1
            if progress is not None:
                frac = i / iters if iters else min(1.0, (time.perf_counter_ns() - start) / (budget or 1))
                progress(f"{task} {photos[(i - 1) % len(photos)].name}", frac)
    except KeyboardInterrupt:
        interrupted = True
    rss = round(peak_rss_mb(), 1)
    dev = process_gpu_memory_mb() if backend_device_kind(settings.backend) == "gpu" else None
    n = len(per_stage.get("total", []))
    results = [
        BenchResult(**base, role=stage, precision=precision,
                    status="interrupted" if interrupted else "ok",
                    reason=(LIMIT_REASON if settings.past_deadline() else "stopped with Ctrl-C")
                    if interrupted else None,
                    stats=summarize(v), samples_ms=tuple(thin(v, settings.keep_samples)),
                    repeat_p50_ms=(), peak_rss_mb=rss, device_memory_mb=dev)
        for stage, v in per_stage.items() if len(v) == n
    ]
    return make_run(results, {**settings.to_dict(), "task": task, "photos": len(photos)},
                    interrupted=interrupted, command=command, load_before=load_before, jetson=jetson)
