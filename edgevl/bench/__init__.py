"""Latency benchmarks: the harness behind ``edgevl bench`` and the scripts in ``benchmarks/``.

- :mod:`edgevl.bench.stats`: pure maths (percentiles, mean, std, throughput, bootstrap ratios)
- :mod:`edgevl.bench.inputs`: feeds shaped from the manifest, or real ones from a folder
- :mod:`edgevl.bench.harness`: warm-up + per-iteration wall times per configuration
- :mod:`edgevl.bench.results`: result records and the ``edgevl-bench/1`` file schema
- :mod:`edgevl.bench.compare`: ratios between two result files with a noise estimate
- :mod:`edgevl.bench.machine`: what machine a result came from (the one machine record)
- :mod:`edgevl.bench.report`: Markdown tables and the machine line (the scripts in ``benchmarks/``
  use the same two through their own package, ``benchmarks/benchlib``, which is not shipped)
"""

from __future__ import annotations

from edgevl.bench.harness import BenchSettings, bench_bundles, bench_role
from edgevl.bench.results import SCHEMA, BenchResult, BenchRun, load_run, validate, write_run
from edgevl.bench.stats import LatencyStats, percentile, summarize

__all__ = [
    "SCHEMA",
    "BenchResult",
    "BenchRun",
    "BenchSettings",
    "LatencyStats",
    "bench_bundles",
    "bench_role",
    "load_run",
    "percentile",
    "summarize",
    "validate",
    "write_run",
]
