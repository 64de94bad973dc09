"""``edgevl bench compare A.json B.json``: per-configuration latency ratios with a noise estimate.

For each configuration present in both files the ratio is ``median(B) / median(A)`` of the
per-iteration latencies (< 1: B is faster). Its interval combines two noise sources:

- a percentile-bootstrap confidence interval of the ratio of medians from the stored samples
  (within-run noise), and
- the run-to-run spread of the per-repeat medians (``--repeats``) of both sides, which widens the
  interval multiplicatively (drift and neighbours on a shared machine). A side measured without
  repeats uses the spread of the medians of four consecutive blocks of its samples instead.

A difference is flagged *within noise* when the widened interval contains 1 or when it is smaller
than ``floor`` (default 2 %: no single-machine benchmark resolves less).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgevl.bench.results import KEY_FIELDS, BenchResult, BenchRun
from edgevl.bench.stats import block_medians, bootstrap_median_ratio, relative_spread
from edgevl.errors import InputError

DEFAULT_FLOOR = 0.02


@dataclass(frozen=True)
class Comparison:
    """One configuration in both files."""

    key: tuple[tuple[str, Any], ...]
    a_p50_ms: float
    b_p50_ms: float
    ratio: float
    low: float
    high: float
    bootstrap: bool
    run_spread: float
    within_noise: bool

    @property
    def verdict(self) -> str:
        if self.within_noise:
            return "within noise"
        return f"B {1.0 / self.ratio:.2f}x faster" if self.ratio < 1.0 else f"B {self.ratio:.2f}x slower"

    def to_dict(self) -> dict[str, Any]:
        return {
            **dict(self.key),
            "a_p50_ms": self.a_p50_ms,
            "b_p50_ms": self.b_p50_ms,
            "ratio": self.ratio,
            "low": self.low,
            "high": self.high,
            "bootstrap": self.bootstrap,
            "run_spread": self.run_spread,
            "within_noise": self.within_noise,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class CompareReport:
    rows: tuple[Comparison, ...]
    only_a: tuple[tuple[tuple[str, Any], ...], ...]
    only_b: tuple[tuple[tuple[str, Any], ...], ...]
    ignored: tuple[str, ...]
    same_machine: bool
    floor: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [r.to_dict() for r in self.rows],
            "only_a": [dict(k) for k in self.only_a],
            "only_b": [dict(k) for k in self.only_b],
            "ignored": list(self.ignored),
            "same_machine": self.same_machine,
            "floor": self.floor,
        }


def compare_results(
    a: BenchResult,
    b: BenchResult,
    *,
    floor: float = DEFAULT_FLOOR,
    confidence: float = 0.95,
    resamples: int = 2000,
    key: tuple[tuple[str, Any], ...] = (),
) -> Comparison:
    """Compare two measured configurations (pure: uses only what the records hold)."""
    if a.stats is None or b.stats is None:
        raise InputError("both results must hold measurements to be compared")
    if a.samples_ms and b.samples_ms:
        ci = bootstrap_median_ratio(a.samples_ms, b.samples_ms, resamples=resamples, confidence=confidence)
        ratio, low, high, boot = ci.ratio, ci.low, ci.high, True
    else:
        ratio = b.stats.p50_ms / a.stats.p50_ms if a.stats.p50_ms > 0 else math.inf
        low = high = ratio
        boot = False
    spread = math.hypot(run_spread(a), run_spread(b))
    low_w, high_w = low * (1.0 - spread), high * (1.0 + spread)
    within = (low_w <= 1.0 <= high_w) or abs(ratio - 1.0) <= floor
    return Comparison(
        key=key, a_p50_ms=a.stats.p50_ms, b_p50_ms=b.stats.p50_ms, ratio=ratio, low=low_w, high=high_w,
        bootstrap=boot, run_spread=spread, within_noise=within,
    )


def run_spread(r: BenchResult) -> float:
    """Relative run-to-run spread of a result: its repeats, else blocks of its samples."""
    if len(r.repeat_p50_ms) >= 2:
        return relative_spread(r.repeat_p50_ms)
    return relative_spread(block_medians(r.samples_ms))


def _keyed(results: Iterable[BenchResult], fields: Sequence[str], where: str
           ) -> dict[tuple[tuple[str, Any], ...], BenchResult]:
    out: dict[tuple[tuple[str, Any], ...], BenchResult] = {}
    for r in results:
        if not r.ok:
            continue
        k = tuple((f, getattr(r, f)) for f in fields)
        if k in out:
            raise InputError(
                f"{where}: two results share the configuration {dict(k)}; ignore fewer fields"
            )
        out[k] = r
    return out


def compare_runs(
    a: BenchRun,
    b: BenchRun,
    *,
    ignore: Sequence[str] = (),
    floor: float = DEFAULT_FLOOR,
    confidence: float = 0.95,
    resamples: int = 2000,
) -> CompareReport:
    """Pair configurations of two result files (matching on every key field not in ``ignore``)."""
    bad = [f for f in ignore if f not in KEY_FIELDS]
    if bad:
        raise InputError(f"--ignore {bad}: fields are {', '.join(KEY_FIELDS)}")
    if not 0.0 <= floor < 1.0:
        raise InputError(f"--floor {floor}: must be in [0, 1)")
    fields = [f for f in KEY_FIELDS if f not in ignore]
    ka = _keyed(a.results, fields, "A")
    kb = _keyed(b.results, fields, "B")
    rows = tuple(
        compare_results(ka[k], kb[k], floor=floor, confidence=confidence, resamples=resamples, key=k)
        for k in ka if k in kb
    )
    return CompareReport(
        rows=rows,
        only_a=tuple(k for k in ka if k not in kb),
        only_b=tuple(k for k in kb if k not in ka),
        ignored=tuple(ignore),
        same_machine=_same_machine(a.machine, b.machine),
        floor=floor,
    )


def _same_machine(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = ("cpu", "cores_logical", "os", "gpus")
    return all(a.get(k) == b.get(k) for k in keys)
