"""The timing harness: warm-up, then per-iteration wall times for each configuration.

Pure statistics live in :mod:`edgevl.bench.stats`; this module only runs things and records
``time.perf_counter_ns`` around each call. Repeats are interleaved across batch sizes (repeat 1 of
every batch, then repeat 2…) so slow drift on a shared machine spreads over all configurations
and shows up as run-to-run spread instead of a bias.
"""

from __future__ import annotations

import math
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from edgevl.backends import (
    BACKENDS,
    Array,
    Engine,
    EngineOptions,
    TensorRTOptions,
    backend_unavailable,
    open_engine,
)
from edgevl.bench.inputs import describe_shapes, dim_role, folder_feeds, synthetic_feeds
from edgevl.bench.jetson import JetsonRun
from edgevl.bench.machine import load_average, machine_record, peak_rss_mb, process_gpu_memory_mb
from edgevl.bench.memory import GiB, check_bundle_role
from edgevl.bench.results import BenchResult, BenchRun
from edgevl.bench.stats import summarize, thin
from edgevl.bundle import Bundle, load_bundle
from edgevl.errors import BackendError, EdgevlError, InputError

DEFAULT_SECONDS = 2.0
#: bounds of the counting options: a hostile --iters 10**12 or --warmup 10**9 is refused, not run for days
MAX_WARMUP = 100_000
MAX_ITERS = 10_000_000
MAX_REPEATS = 1_000
#: the CLI's default limit on a whole run's wall time (--max-seconds); past it the run stops with what
#: it measured, like Ctrl-C
DEFAULT_MAX_SECONDS = 3600.0
LIMIT_REASON = "stopped at the --max-seconds limit"
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class BenchSettings:
    """How to measure. With neither ``iters`` nor ``seconds``, each configuration runs for
    :data:`DEFAULT_SECONDS` (and at least ``min_iters`` iterations)."""

    backend: str = "ort-cpu"
    batches: tuple[int, ...] = (1,)
    threads: int = 0
    warmup: int = 5
    iters: int | None = None
    seconds: float | None = None
    min_iters: int = 3
    repeats: int = 1
    dims: Mapping[str, int] = field(default_factory=dict)
    inputs: Path | None = None
    roles: tuple[str, ...] = ()
    keep_samples: int = 1000
    seed: int = 0
    max_memory_gb: float | None = None  # None: 75% of the memory available (edgevl.bench.memory)
    max_seconds: float | None = None  # wall-time limit of the whole run, from when the settings are made
    started_ns: int = field(default_factory=time.perf_counter_ns, compare=False)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InputError(f"--backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        if not self.batches or any(b < 1 for b in self.batches):
            raise InputError(f"--batch {list(self.batches)}: batch sizes must be positive integers")
        if self.iters is not None and self.seconds is not None:
            raise InputError("give --iters or --seconds, not both")
        if self.iters is not None and self.iters < 1:
            raise InputError(f"--iters {self.iters}: must be >= 1")
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds > 0):
            raise InputError(f"--seconds {self.seconds}: must be > 0")
        mem = self.max_memory_gb
        if mem is not None and not (math.isfinite(mem) and mem > 0):
            raise InputError(f"--max-memory-gb {self.max_memory_gb}: must be a finite number > 0")
        if self.warmup < 0 or self.repeats < 1 or self.threads < 0:
            raise InputError("--warmup and --threads must be >= 0, --repeats >= 1")
        for name, value, hi in (("--warmup", self.warmup, MAX_WARMUP), ("--iters", self.iters, MAX_ITERS),
                                ("--repeats", self.repeats, MAX_REPEATS)):
            if value is not None and value > hi:
                raise InputError(f"{name} {value}: at most {hi}")
        lim = self.max_seconds
        if lim is not None and not (math.isfinite(lim) and lim > 0):
            raise InputError(f"--max-seconds {lim}: must be a finite number > 0")

    @property
    def deadline_ns(self) -> int | None:
        """perf_counter_ns at which the run stops (None: no limit)."""
        return None if self.max_seconds is None else self.started_ns + int(self.max_seconds * 1e9)

    def past_deadline(self) -> bool:
        d = self.deadline_ns
        return d is not None and time.perf_counter_ns() >= d

    @property
    def memory_limit(self) -> int | None:
        return None if self.max_memory_gb is None else int(self.max_memory_gb * GiB)

    @property
    def budget_seconds(self) -> float | None:
        if self.iters is not None:
            return None
        return self.seconds if self.seconds is not None else DEFAULT_SECONDS

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "batches": list(self.batches),
            "threads": self.threads,
            "warmup": self.warmup,
            "iters": self.iters,
            "seconds": self.budget_seconds,
            "min_iters": self.min_iters,
            "repeats": self.repeats,
            "dims": dict(self.dims),
            "inputs": str(self.inputs) if self.inputs else None,
            "roles": list(self.roles),
            "max_seconds": self.max_seconds,
        }


@dataclass
class _Loop:
    samples_ms: list[float]
    interrupted: bool = False
    timed_out: bool = False  # the run's deadline came first


def time_loop(
    fn: Callable[[int], object],
    *,
    iters: int | None,
    seconds: float | None,
    min_iters: int = 1,
    label: str = "",
    progress: Progress | None = None,
    clock: Callable[[], int] = time.perf_counter_ns,
    deadline_ns: int | None = None,
) -> _Loop:
    """Call ``fn(i)`` ``iters`` times, or for ``seconds`` (at least ``min_iters`` calls), timing each.

    Ctrl-C stops the loop and returns what was measured, flagged ``interrupted``; reaching
    ``deadline_ns`` (a ``clock`` value) stops it too, flagged ``timed_out``.
    """
    out = _Loop(samples_ms=[])
    start = clock()
    last_report = start
    budget_ns = None if seconds is None else int(seconds * 1e9)
    i = 0
    try:
        while True:
            if iters is not None and i >= iters:
                break
            if budget_ns is not None and i >= min_iters and clock() - start >= budget_ns:
                break
            if deadline_ns is not None and clock() >= deadline_ns:
                out.timed_out = True
                break
            t0 = clock()
            fn(i)
            t1 = clock()
            out.samples_ms.append((t1 - t0) / 1e6)
            i += 1
            if progress is not None and t1 - last_report > 100_000_000:
                last_report = t1
                frac = i / iters if iters else min(1.0, (t1 - start) / budget_ns) if budget_ns else 0.0
                progress(label, frac)
    except KeyboardInterrupt:
        out.interrupted = True
    if progress is not None:
        progress(label, 1.0)
    return out


def bench_options(settings: BenchSettings) -> EngineOptions:
    """The engine options a benchmark opens models with (the TensorRT profile's batch capped at the
    largest batch measured; ``--dim`` moves its optimum)."""
    return EngineOptions(backend=settings.backend, threads=settings.threads,
                         tensorrt=TensorRTOptions(max_batch=max(settings.batches), dims=dict(settings.dims)))


def _device_memory(engine: Engine) -> float | None:
    """GPU memory of a GPU engine: its own figure when it has one, else the process' (nvidia-smi)."""
    if engine.device_kind != "gpu":
        return None
    v = engine.device_memory_mb()
    return float(v) if v is not None else process_gpu_memory_mb()


def _base(bundle: Bundle, role: str, settings: BenchSettings, batch: int) -> dict[str, Any]:
    m = bundle.manifest
    return {
        "kind": "model", "bundle": m.name, "task": m.task, "role": role, "precision": m.precision,
        "backend": settings.backend, "batch": batch, "threads": settings.threads,
        "bundle_path": str(bundle.path), "digest": bundle.digest,
        "inputs": str(settings.inputs) if settings.inputs else "synthetic",
    }


class Interrupted(Exception):
    """Raised inside the harness when the user pressed Ctrl-C; carries the results so far."""

    def __init__(self, results: list[BenchResult]) -> None:
        super().__init__("interrupted")
        self.results = results


def bench_role(
    bundle: Bundle,
    role: str,
    settings: BenchSettings,
    progress: Progress | None = None,
) -> list[BenchResult]:
    """Every batch size of one model of a bundle. Raises :class:`Interrupted` on Ctrl-C."""
    batches = settings.batches
    why = backend_unavailable(settings.backend)
    if why is not None:
        return [BenchResult(**_base(bundle, role, settings, b), status="unavailable", reason=why)
                for b in batches]
    # refuse before any input is allocated or an engine is built for an absurd batch
    check_bundle_role(bundle, role, batches, settings.dims, settings.memory_limit)
    try:
        engine = open_engine(bundle, role, bench_options(settings))
    except BackendError as e:
        return [BenchResult(**_base(bundle, role, settings, b), status="unavailable", reason=str(e))
                for b in batches]
    providers = tuple(engine.providers)

    feeds: dict[int, list[dict[str, Array]]] = {}
    skipped: dict[int, str] = {}
    for b in batches:
        try:
            if settings.inputs is not None:
                feeds[b] = folder_feeds(settings.inputs, engine.inputs, bundle, role, b)
            else:
                feeds[b] = [synthetic_feeds(engine.inputs, bundle, b, settings.dims, settings.seed)]
        except InputError as e:
            if settings.inputs is not None:
                raise
            skipped[b] = str(e)

    samples: dict[int, list[float]] = {b: [] for b in feeds}
    medians: dict[int, list[float]] = {b: [] for b in feeds}
    errors: dict[int, str] = {}
    interrupted = False
    timed_out = False  # stopped by the run's --max-seconds limit, not Ctrl-C
    cut: int | None = None  # the batch whose loop Ctrl-C stopped
    per_repeat_iters = None if settings.iters is None else -(-settings.iters // settings.repeats)
    per_repeat_secs = None
    if settings.budget_seconds is not None:
        per_repeat_secs = settings.budget_seconds / settings.repeats

    def caller(fs: list[dict[str, Array]]) -> Callable[[int], object]:
        return lambda i: engine.run(fs[i % len(fs)])

    try:
        for r in range(settings.repeats):
            for b, fs in feeds.items():
                if b in errors:
                    continue
                label = f"{bundle.manifest.name}/{role} b={b}"
                if settings.repeats > 1:
                    label += f" r{r + 1}"
                run = caller(fs)
                try:
                    n_warm = settings.warmup if r == 0 else min(1, settings.warmup)
                    for i in range(n_warm):
                        if settings.past_deadline():
                            timed_out = True
                            raise KeyboardInterrupt
                        run(i)
                except EdgevlError as e:
                    errors[b] = str(e)
                    continue
                except Exception as e:  # a backend runtime failure (ORT raises its own types)
                    errors[b] = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
                    continue
                loop = time_loop(run, iters=per_repeat_iters, seconds=per_repeat_secs,
                                 min_iters=max(1, -(-settings.min_iters // settings.repeats)),
                                 label=label, progress=progress, deadline_ns=settings.deadline_ns)
                samples[b].extend(loop.samples_ms)
                if loop.samples_ms:
                    medians[b].append(float(np.median(loop.samples_ms)))
                if loop.interrupted or loop.timed_out:
                    cut = b
                    timed_out = loop.timed_out
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        interrupted = True

    dev_mem = _device_memory(engine)
    engine.close()
    rss = round(peak_rss_mb(), 1)
    out: list[BenchResult] = []
    for b in batches:
        base = _base(bundle, role, settings, b)
        if b in skipped:
            out.append(BenchResult(**base, status="skipped", reason=skipped[b]))
            continue
        if b in errors:
            out.append(BenchResult(**base, status="error", reason=errors[b], providers=providers))
            continue
        s = samples.get(b, [])
        if not s:
            if interrupted:
                continue  # never reached: nothing to report
            out.append(BenchResult(**base, status="error", reason="no iteration completed"))
            continue
        complete = len(medians[b]) == settings.repeats and b != cut
        out.append(BenchResult(
            **base,
            status="ok" if complete else "interrupted",
            reason=None if complete else (LIMIT_REASON if timed_out else "stopped with Ctrl-C"),
            shapes=describe_shapes(feeds[b][0]),
            stats=summarize(s, items_per_iter=b),
            repeat_p50_ms=tuple(medians[b]),
            samples_ms=tuple(thin(s, settings.keep_samples)),
            peak_rss_mb=rss,
            device_memory_mb=dev_mem,
            providers=providers,
        ))
    if interrupted:
        raise Interrupted(out)
    return out


def make_run(results: Sequence[BenchResult], settings: Mapping[str, Any], *, interrupted: bool = False,
             command: str | None = None, load_before: list[float] | None = None,
             jetson: JetsonRun | None = None) -> BenchRun:
    """A result file; the machine record carries the load average before and after the run (and, on a
    Jetson, the power mode, clock state and tegrastats sampled during the run)."""
    machine = machine_record(load_before, jetson=jetson.info if jetson else None)
    if jetson is not None:
        machine["jetson"]["tegrastats"] = jetson.stop()
    return BenchRun(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=command if command is not None else shlex.join(["edgevl", *sys.argv[1:]]),
        machine=machine,
        settings=dict(settings),
        results=tuple(results),
        interrupted=interrupted,
    )


def check_dim_names(bundles: Sequence[Bundle], settings: BenchSettings) -> None:
    """Every ``--dim NAME=N`` names a symbolic dim (or its role: batch, seq, height, width...) of an
    input of a benchmarked model: a misspelt or foreign name is an error, never silently ignored.
    (Its value is then checked against the manifest's range for that axis when inputs are made.)"""
    if not settings.dims:
        return
    known: set[str] = set()
    for b in bundles:
        for role in settings.roles or tuple(b.manifest.models):
            for spec in b.model(role).inputs:
                for axis, d in enumerate(spec.shape):
                    if not (isinstance(d, int) and d > 0):
                        known.update((str(d), dim_role(spec, axis)))
    unknown = sorted(set(settings.dims) - known)
    if unknown:
        raise InputError(f"--dim {', '.join(unknown)}: no input of the benchmarked models has such a "
                         f"dimension (they have: {', '.join(sorted(known)) or 'none, all fixed'})")


def bench_bundles(
    paths: Sequence[Path | str],
    settings: BenchSettings,
    progress: Progress | None = None,
    command: str | None = None,
) -> BenchRun:
    """Benchmark every model (or ``settings.roles``) of every bundle; Ctrl-C returns a partial run."""
    load_before = load_average()
    jetson = JetsonRun.start()
    bundles = [load_bundle(p) for p in paths]
    for b in bundles:
        missing = [r for r in settings.roles if r not in b.manifest.models]
        if missing:
            raise InputError(f"{b.path}: no model {missing} (has {sorted(b.manifest.models)})")
    check_dim_names(bundles, settings)
    results: list[BenchResult] = []
    interrupted = False
    try:
        for b in bundles:
            for role in settings.roles or tuple(b.manifest.models):
                results.extend(bench_role(b, role, settings, progress))
    except Interrupted as e:
        results.extend(e.results)
        interrupted = True
    except KeyboardInterrupt:  # while loading an engine: keep what earlier models measured
        interrupted = True
    return make_run(results, settings.to_dict(), interrupted=interrupted, command=command,
                    load_before=load_before, jetson=jetson)
