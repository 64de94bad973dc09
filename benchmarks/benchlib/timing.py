"""The side-by-side timing loop of the benchmark scripts (``edgevl bench`` keeps its own loop,
:func:`edgevl.bench.harness.time_loop`: a time budget per configuration, Ctrl-C)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping

from benchlib.paths import bench_lock


def interleaved(fns: Mapping[str, Callable[[], object]], rounds: int, *, warmup: int = 2,
                clock: Callable[[], float] = time.perf_counter, rotate: bool = True,
                lock: bool = False) -> dict[str, list[float]]:
    """Call every function once per round, in milliseconds per call (``clock``: wall time by default,
    ``time.process_time`` for CPU time).

    Side by side: each round runs every peer once, and with ``rotate`` the order shifts by one each
    round (A B, B A, ... for two), so slow drift of a shared machine hits all peers alike. ``warmup``
    rounds are run first and not recorded. ``lock``: hold the shared bench lock around the timed part
    only (for scripts whose other work — exporting, quantising, scoring — need not wait for it).
    """
    if rounds < 1 or warmup < 0:
        raise ValueError(f"rounds {rounds} must be >= 1 and warmup {warmup} >= 0")
    with bench_lock() if lock else contextlib.nullcontext(0.0):
        for _ in range(warmup):
            for f in fns.values():
                f()
        out: dict[str, list[float]] = {k: [] for k in fns}
        keys = list(fns)
        for r in range(rounds):
            shift = r % len(keys) if rotate else 0
            for k in keys[shift:] + keys[:shift]:
                t0 = clock()
                fns[k]()
                out[k].append((clock() - t0) * 1000.0)
    return out
