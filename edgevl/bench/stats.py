"""Pure latency statistics: percentiles, mean, standard deviation, throughput, bootstrap ratios.

No timing happens here; every function takes samples (seconds or milliseconds, the caller's
choice) and returns numbers, so it is tested on known samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation between closest ranks.

    This is numpy's default ("linear", type 7 of Hyndman & Fan): for samples 1..100 the 90th
    percentile is 90.1. Raises ValueError on an empty sequence or q outside [0, 100].
    """
    if len(samples) == 0:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q={q} outside [0, 100]")
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q))


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-iteration wall times, in milliseconds; throughput in items per second."""

    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    items_per_iter: int
    throughput_items_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
            "std_ms": self.std_ms,
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
            "items_per_iter": self.items_per_iter,
            "throughput_items_s": self.throughput_items_s,
        }


def throughput(items_per_iter: int, total_seconds: float, iterations: int) -> float:
    """Items per second over ``iterations`` runs that took ``total_seconds`` together."""
    if total_seconds <= 0.0 or iterations <= 0:
        return 0.0
    return items_per_iter * iterations / total_seconds


def summarize(samples_ms: Sequence[float], items_per_iter: int = 1) -> LatencyStats:
    """Summarise per-iteration times (ms). Standard deviation is the sample one (ddof=1).

    Throughput is items per second over the summed time of the iterations (= items / mean),
    so it matches the mean, not the median.
    """
    if len(samples_ms) == 0:
        raise ValueError("no samples to summarise")
    if items_per_iter < 1:
        raise ValueError(f"items_per_iter must be >= 1, got {items_per_iter}")
    a = np.asarray(samples_ms, dtype=np.float64)
    p50, p90, p99 = (float(v) for v in np.percentile(a, [50.0, 90.0, 99.0]))
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return LatencyStats(
        count=int(a.size),
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        mean_ms=float(a.mean()),
        std_ms=std,
        min_ms=float(a.min()),
        max_ms=float(a.max()),
        items_per_iter=items_per_iter,
        throughput_items_s=throughput(items_per_iter, float(a.sum()) / 1000.0, int(a.size)),
    )


def thin(samples: Sequence[float], keep: int) -> list[float]:
    """At most ``keep`` samples taken at an even stride (order kept): what result files store."""
    n = len(samples)
    if keep <= 0 or n <= keep:
        return [float(s) for s in samples]
    idx = np.linspace(0, n - 1, keep).round().astype(int)
    return [float(samples[i]) for i in idx]


@dataclass(frozen=True)
class RatioCI:
    """``median(b) / median(a)`` with a bootstrap confidence interval."""

    ratio: float
    low: float
    high: float
    confidence: float
    resamples: int


def bootstrap_median_ratio(
    a: Sequence[float],
    b: Sequence[float],
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> RatioCI:
    """Percentile-bootstrap CI of ``median(b) / median(a)`` (each side resampled independently).

    Within-run samples are not independent of slow drift on a shared machine, so this interval is a
    lower bound on the real noise; :mod:`edgevl.bench.compare` widens it with the run-to-run spread.
    """
    if len(a) == 0 or len(b) == 0:
        raise ValueError("bootstrap needs samples on both sides")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence {confidence} outside (0, 1)")
    xa = np.asarray(a, dtype=np.float64)
    xb = np.asarray(b, dtype=np.float64)
    ma = float(np.median(xa))
    if ma <= 0.0:
        raise ValueError("median of the reference samples is not positive")
    ratio = float(np.median(xb)) / ma
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, xa.size, size=(resamples, xa.size))
    ib = rng.integers(0, xb.size, size=(resamples, xb.size))
    ra = np.median(xa[ia], axis=1)
    rb = np.median(xb[ib], axis=1)
    ratios = rb / np.maximum(ra, np.finfo(np.float64).tiny)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = (float(v) for v in np.quantile(ratios, [alpha, 1.0 - alpha]))
    return RatioCI(ratio=ratio, low=min(lo, ratio), high=max(hi, ratio), confidence=confidence,
                   resamples=resamples)


def relative_spread(values: Sequence[float]) -> float:
    """Half the range of ``values`` over their median: run-to-run noise of repeated medians.

    0.0 with fewer than two values (no repeat, no estimate).
    """
    if len(values) < 2:
        return 0.0
    a = np.asarray(values, dtype=np.float64)
    med = float(np.median(a))
    if med <= 0.0 or not math.isfinite(med):
        return 0.0
    return float((a.max() - a.min()) / 2.0 / med)


def block_medians(samples: Sequence[float], blocks: int = 4) -> list[float]:
    """Medians of ``blocks`` consecutive chunks of time-ordered samples: a stand-in for repeated
    runs when a file holds only one (slow drift within the run shows up as their spread)."""
    n = len(samples)
    if n < 2 * blocks:
        return []
    a = np.asarray(samples, dtype=np.float64)
    return [float(np.median(c)) for c in np.array_split(a, blocks)]
