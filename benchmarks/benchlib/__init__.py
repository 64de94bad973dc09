"""What every script in ``benchmarks/`` shares (repository tooling, not part of the runtime package
``edgevl``): paths, the bench lock, the side-by-side timing loop, the ``edgevl-bench-script/1`` result
file and its Markdown renderer; and :mod:`benchlib.synth`, images whose text is known (tests and
``examples/make_examples.py`` use it too).

The scripts run as ``python benchmarks/<script>.py``, so ``benchmarks/`` is on ``sys.path`` and this
package imports as ``benchlib`` (the tests get the same through pytest's ``pythonpath``)::

    import benchlib as bench

    paths = bench.bench_paths(__file__)
    load_before = bench.start()
    ms = bench.interleaved({"edgevl": run_edgevl, "peer": run_peer}, rounds=20)
    doc = bench.new_result("demo", bench.command_line(paths.repo), load_before=load_before, ms=ms)
    bench.write_result(doc, paths.stem("demo"), render)

- :mod:`benchlib.paths`: ``bench_paths``, ``bench_lock``, ``command_line``, ``git_state``
- :mod:`benchlib.timing`: ``interleaved``
- :mod:`benchlib.result`: the result file (``new_result``, ``write_result``, ``load_result``,
  ``validate_result``, ``JSON_SCHEMA``)
- :mod:`benchlib.markdown`: ``render_markdown``, ``Table`` (tables and the machine line come from
  :mod:`edgevl.bench.report`, shared with ``edgevl bench``)

The declared suite's entry type, ``Benchmark``, lives with the suite (``benchmarks/suite.py``).
"""

from __future__ import annotations

from benchlib.markdown import Block, Table, render_markdown
from benchlib.paths import (
    DEFAULT_LOCK,
    ENV_LIBRARY,
    ENV_LOCK,
    ENV_LOCKED,
    ENV_RESULTS,
    BenchPaths,
    bench_lock,
    bench_paths,
    command_line,
    git_state,
    lock_path,
)
from benchlib.result import (
    JSON_SCHEMA,
    SCHEMA,
    load_result,
    new_result,
    start,
    validate_result,
    write_result,
)
from benchlib.timing import interleaved
from edgevl.bench.report import machine_line, md_table

__all__ = [
    "DEFAULT_LOCK",
    "ENV_LIBRARY",
    "ENV_LOCK",
    "ENV_LOCKED",
    "ENV_RESULTS",
    "JSON_SCHEMA",
    "SCHEMA",
    "BenchPaths",
    "Block",
    "Table",
    "bench_lock",
    "bench_paths",
    "command_line",
    "git_state",
    "interleaved",
    "load_result",
    "lock_path",
    "machine_line",
    "md_table",
    "new_result",
    "render_markdown",
    "start",
    "validate_result",
    "write_result",
]
