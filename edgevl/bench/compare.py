"""``edgevl bench compare A.json B.json``: per-configuration latency ratios with a noise estimate.

For each configuration present in both files the ratio is ``median(B) / median(A)`` of the
per-iteration latencies (< 1: B is faster). Its interval combines two noise sources:

- a percentile-bootstrap confidence interval of the ratio of medians from the stored samples
  (within-run noise), and
- the run-to-run spread of the per-repeat medians (``--repeats``) of both sides, which widens the
  interval multiplicatively (drift and neighbours on a shared machine). A side measured without
  repeats uses the spread of the medians of four consecutive blocks of its samples instead.

- with repeated runs of each side as extra files, the spread of their medians (between-run noise,
  which is what a loaded machine mostly adds).

A difference is flagged *within noise* when the widened interval contains 1 or when it is smaller
than ``floor`` (default 2 %: no single-machine benchmark resolves less). A report warns when a run
started on a busy machine (load average per core above :data:`BUSY_LOAD`) or when each side has a
single file.
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
#: 1-minute load average per core, before a run, above which the machine counts as busy
BUSY_LOAD = 0.5


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
    busy_load: float | None = None
    files: tuple[int, int] = (1, 1)

    @property
    def warnings(self) -> list[str]:
        out = []
        if not self.same_machine:
            out.append("A and B come from different machines")
        if self.busy_load is not None:
            out.append(
                f"the machine was busy with other work (1-minute load {self.busy_load:.1f} per core before "
                f"a run): timings can shift between runs by more than the intervals show; repeat each "
                f"side (--more-a/--more-b) or measure on an idle machine")
        if self.files == (1, 1):
            out.append("one file per side: the interval covers noise within each run, not between runs "
                       "(give repeated runs with --more-a/--more-b)")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [r.to_dict() for r in self.rows],
            "only_a": [dict(k) for k in self.only_a],
            "only_b": [dict(k) for k in self.only_b],
            "ignored": list(self.ignored),
            "same_machine": self.same_machine,
            "floor": self.floor,
            "busy_load": self.busy_load,
            "files": list(self.files),
            "warnings": self.warnings,
        }


def compare_results(
    a: BenchResult,
    b: BenchResult,
    *,
    floor: float = DEFAULT_FLOOR,
    confidence: float = 0.95,
    resamples: int = 2000,
    key: tuple[tuple[str, Any], ...] = (),
    a_runs: Sequence[float] = (),
    b_runs: Sequence[float] = (),
) -> Comparison:
    """Compare two measured configurations (pure: uses only what the records hold).

    ``a_runs``/``b_runs``: the medians of the same configuration in other result files of the same
    side (separate runs); their spread, when larger than a file's own, is that side's noise.
    """
    if a.stats is None or b.stats is None:
        raise InputError("both results must hold measurements to be compared")
    if a.samples_ms and b.samples_ms:
        ci = bootstrap_median_ratio(a.samples_ms, b.samples_ms, resamples=resamples, confidence=confidence)
        ratio, low, high, boot = ci.ratio, ci.low, ci.high, True
    else:
        ratio = b.stats.p50_ms / a.stats.p50_ms if a.stats.p50_ms > 0 else math.inf
        low = high = ratio
        boot = False
    sa = max(run_spread(a), relative_spread([a.stats.p50_ms, *a_runs]))
    sb = max(run_spread(b), relative_spread([b.stats.p50_ms, *b_runs]))
    spread = math.hypot(sa, sb)
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


def busy(machine: Mapping[str, Any], threshold: float = BUSY_LOAD) -> float | None:
    """The 1-minute load per core before the run when other work kept the machine busy, else None."""
    before = machine.get("load_average_before")
    cores = machine.get("cores_logical") or 1
    if isinstance(before, (list, tuple)) and before and isinstance(before[0], (int, float)):
        per_core = float(before[0]) / float(cores)
        return per_core if per_core > threshold else None
    return None


def compare_runs(
    a: BenchRun,
    b: BenchRun,
    *,
    ignore: Sequence[str] = (),
    floor: float = DEFAULT_FLOOR,
    confidence: float = 0.95,
    resamples: int = 2000,
    more_a: Sequence[BenchRun] = (),
    more_b: Sequence[BenchRun] = (),
) -> CompareReport:
    """Pair configurations of two result files (matching on every key field not in ``ignore``).

    ``more_a``/``more_b``: repeated runs of each side (other files); the spread of their medians is
    the between-run noise, which within-file repeats cannot see when the machine's load changes.
    """
    bad = [f for f in ignore if f not in KEY_FIELDS]
    if bad:
        raise InputError(f"--ignore {bad}: fields are {', '.join(KEY_FIELDS)}")
    if not 0.0 <= floor < 1.0:
        raise InputError(f"--floor {floor}: must be in [0, 1)")
    fields = [f for f in KEY_FIELDS if f not in ignore]
    ka = _keyed(a.results, fields, "A")
    kb = _keyed(b.results, fields, "B")
    extra_a = [_keyed(r.results, fields, "A") for r in more_a]
    extra_b = [_keyed(r.results, fields, "B") for r in more_b]

    def medians(k: tuple[tuple[str, Any], ...], extra: list[dict[Any, BenchResult]]) -> list[float]:
        return [e[k].stats.p50_ms for e in extra if k in e and e[k].stats is not None]  # type: ignore[union-attr]

    rows = tuple(
        compare_results(ka[k], kb[k], floor=floor, confidence=confidence, resamples=resamples, key=k,
                        a_runs=medians(k, extra_a), b_runs=medians(k, extra_b))
        for k in ka if k in kb
    )
    loads = [x for x in (busy(r.machine) for r in (a, b, *more_a, *more_b)) if x is not None]
    return CompareReport(
        rows=rows,
        only_a=tuple(k for k in ka if k not in kb),
        only_b=tuple(k for k in kb if k not in ka),
        ignored=tuple(ignore),
        same_machine=_same_machine(a.machine, b.machine),
        floor=floor,
        busy_load=max(loads) if loads else None,
        files=(1 + len(more_a), 1 + len(more_b)),
    )


def _same_machine(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = ("cpu", "cores_logical", "os", "gpus")
    return all(a.get(k) == b.get(k) for k in keys)
