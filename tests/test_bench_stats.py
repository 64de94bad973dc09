"""Pure benchmark maths on known samples: percentiles, summaries, bootstrap ratios, comparisons."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgevl.bench.compare import compare_results, compare_runs
from edgevl.bench.results import BenchResult, BenchRun
from edgevl.bench.stats import (
    block_medians,
    bootstrap_median_ratio,
    percentile,
    relative_spread,
    summarize,
    thin,
    throughput,
)
from edgevl.errors import InputError


def test_percentiles_of_1_to_100_interpolate_linearly() -> None:
    xs = list(range(1, 101))[::-1]  # order must not matter
    # rank h = (n - 1) q / 100 on the sorted samples, interpolated: q=90 -> h=89.1 -> 90 + 0.1
    assert percentile(xs, 50) == pytest.approx(50.5)
    assert percentile(xs, 90) == pytest.approx(90.1)
    assert percentile(xs, 99) == pytest.approx(99.01)
    assert percentile(xs, 0) == 1 and percentile(xs, 100) == 100


def test_percentile_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary_of_known_samples() -> None:
    s = summarize([10.0, 20.0, 30.0, 40.0], items_per_iter=8)
    assert s.count == 4
    assert s.mean_ms == pytest.approx(25.0)
    assert s.std_ms == pytest.approx(math.sqrt((15**2 + 5**2 + 5**2 + 15**2) / 3))  # sample std
    assert s.p50_ms == pytest.approx(25.0)
    assert s.p90_ms == pytest.approx(37.0)  # h = 3 * 0.9 = 2.7 -> 30 + 0.7 * 10
    assert (s.min_ms, s.max_ms) == (10.0, 40.0)
    # 4 calls of 8 items in 100 ms -> 320 items/s
    assert s.throughput_items_s == pytest.approx(320.0)
    assert s.to_dict()["throughput_items_s"] == s.throughput_items_s


def test_single_sample_and_bad_input() -> None:
    s = summarize([5.0])
    assert s.std_ms == 0.0 and s.p99_ms == 5.0 and s.throughput_items_s == pytest.approx(200.0)
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        summarize([1.0], items_per_iter=0)
    assert throughput(4, 0.0, 3) == 0.0
    assert throughput(4, 2.0, 3) == pytest.approx(6.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0.001, max_value=1e4), min_size=1, max_size=60))
def test_summary_orders_hold(samples: list[float]) -> None:
    s = summarize(samples)
    assert s.min_ms <= s.p50_ms <= s.p90_ms <= s.p99_ms <= s.max_ms
    assert s.min_ms <= s.mean_ms * (1 + 1e-12) and s.mean_ms <= s.max_ms * (1 + 1e-12)
    assert s.std_ms >= 0.0


def test_thin_keeps_order_ends_and_count() -> None:
    xs = [float(i) for i in range(1000)]
    t = thin(xs, 10)
    assert len(t) == 10 and t[0] == 0.0 and t[-1] == 999.0 and t == sorted(t)
    assert thin(xs[:5], 10) == xs[:5]


def test_spread_and_blocks() -> None:
    assert relative_spread([9.0, 10.0, 11.0]) == pytest.approx(0.1)
    assert relative_spread([10.0]) == 0.0
    assert block_medians([1.0] * 4 + [2.0] * 4, blocks=2) == [1.0, 2.0]
    assert block_medians([1.0, 2.0], blocks=4) == []


def _lat(n: int, scale: float, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(scale * (1.0 + 0.1 * rng.standard_normal(n)).clip(0.5))


def test_bootstrap_ratio_ci() -> None:
    same = bootstrap_median_ratio(_lat(400, 10.0, 1), _lat(400, 10.0, 2))
    assert same.low <= 1.0 <= same.high
    double = bootstrap_median_ratio(_lat(400, 10.0, 1), _lat(400, 20.0, 2))
    assert double.ratio == pytest.approx(2.0, rel=0.05)
    assert double.low > 1.5


def _res(samples: list[float], *, precision: str = "fp32", batch: int = 1,
         repeats: tuple[float, ...] = ()) -> BenchResult:
    return BenchResult(kind="model", bundle="m", task="t", role="model", precision=precision,
                       backend="ort-cpu", batch=batch, threads=0, status="ok", stats=summarize(samples),
                       samples_ms=tuple(samples), repeat_p50_ms=repeats)


def test_compare_flags_noise_but_not_a_clear_2x() -> None:
    a = _res(_lat(300, 10.0, 1))
    noise = compare_results(a, _res(_lat(300, 10.0, 2)))
    assert noise.within_noise and noise.verdict == "within noise"
    tiny = compare_results(a, _res([x * 1.01 for x in a.samples_ms]))  # 1 %, under the 2 % floor
    assert tiny.within_noise
    twice = compare_results(a, _res(_lat(300, 20.0, 3)))
    assert not twice.within_noise
    assert twice.ratio == pytest.approx(2.0, rel=0.05)
    assert "slower" in twice.verdict
    faster = compare_results(a, _res(_lat(300, 5.0, 4)))
    assert not faster.within_noise and "faster" in faster.verdict


def test_run_to_run_spread_widens_the_interval() -> None:
    a_s, b_s = _lat(300, 10.0, 1), _lat(300, 11.0, 2)  # a 10 % shift
    steady = compare_results(_res(a_s, repeats=(10.0, 10.1, 9.9)), _res(b_s, repeats=(11.0, 11.1, 10.9)))
    assert not steady.within_noise
    jumpy = compare_results(_res(a_s, repeats=(8.0, 10.0, 12.0)), _res(b_s, repeats=(9.0, 11.0, 13.0)))
    assert jumpy.within_noise and jumpy.run_spread > 0.2


def _run(*results: BenchResult) -> BenchRun:
    return BenchRun(created="now", command="test", machine={"cpu": "x"}, settings={}, results=results)


def test_compare_runs_pairs_by_configuration() -> None:
    a = _run(_res(_lat(50, 10.0, 1), batch=1), _res(_lat(50, 40.0, 2), batch=8))
    b = _run(_res(_lat(50, 5.0, 3), batch=1, precision="int8"),
             _res(_lat(50, 20.0, 4), batch=8, precision="int8"))
    assert compare_runs(a, b).rows == ()
    rep = compare_runs(a, b, ignore=["precision"])
    assert [dict(r.key)["batch"] for r in rep.rows] == [1, 8]
    assert all(r.ratio == pytest.approx(0.5, rel=0.1) for r in rep.rows)
    with pytest.raises(InputError, match="share the configuration"):
        compare_runs(a, b, ignore=["precision", "batch"])
    with pytest.raises(InputError, match="fields are"):
        compare_runs(a, b, ignore=["colour"])


def test_repeated_files_give_between_run_noise_and_busy_machines_warn() -> None:
    a = _run(_res(_lat(300, 10.0, 1)))
    b1 = _run(_res(_lat(300, 13.0, 2)))  # 30 % slower in this run...
    b2 = _run(_res(_lat(300, 8.0, 3)))  # ...20 % faster in the next one: no real difference
    single = compare_runs(a, b1)
    assert not single.rows[0].within_noise
    assert any("one file per side" in w for w in single.warnings)
    both = compare_runs(a, b1, more_b=[b2])
    assert both.rows[0].within_noise and both.rows[0].run_spread > 0.2
    assert both.files == (1, 2) and not any("one file" in w for w in both.warnings)
    assert single.busy_load is None
    loaded = BenchRun(created="now", command="t", settings={}, results=a.results,
                      machine={"cpu": "x", "cores_logical": 2, "load_average_before": [5.0, 5.0, 5.0]})
    rep = compare_runs(loaded, b1)
    assert rep.busy_load == pytest.approx(2.5) and any("busy" in w for w in rep.warnings)
    assert rep.to_dict()["warnings"] == rep.warnings
