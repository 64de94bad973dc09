"""A long, seeded fuzz run of the property tests in tests/test_fuzz_helpers.py.

CI runs each property on 1,000 derandomised examples; this runs them on many more (default
20,000 each) with an explicit seed, so it explores inputs CI never sees, and records how many
examples ran and how many properties failed (a failure is an untyped exception or a broken
result: a crash).

    flock /tmp/edgevl-bench.lock python benchmarks/fuzz.py [--examples 20000] [--seed 20261201]

Writes benchmarks/results/fuzz.{json,md} (per property: passing/failing/invalid examples; the run's
seconds; the machine record with its load average). Exit code 1 when any property failed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import benchlib as bench

PATHS = bench.bench_paths(__file__)
_HEAD = re.compile(r"^tests/test_fuzz_helpers\.py::(\w+):\s*$")
_COUNTS = re.compile(r"- (\d+) passing, (\d+) failing, and (\d+) invalid test cases")


def parse_statistics(text: str) -> dict[str, dict[str, int]]:
    """Per property, the examples of every phase added up (hypothesis --hypothesis-show-statistics)."""
    out: dict[str, dict[str, int]] = {}
    current: str | None = None
    for line in text.splitlines():
        m = _HEAD.match(line.strip())
        if m:
            current = m.group(1)
            out[current] = {"passing": 0, "failing": 0, "invalid": 0}
            continue
        c = _COUNTS.search(line)
        if c and current is not None:
            for key, v in zip(("passing", "failing", "invalid"), c.groups(), strict=True):
                out[current][key] += int(v)
    return out


def render(result: Mapping[str, Any]) -> str:
    rows = [[name.removeprefix("test_"), p["passing"], p["failing"], p["invalid"]]
            for name, p in result["properties"].items()]
    return bench.render_markdown(result, "Fuzzing the pure helpers (hypothesis, seeded)", [
        bench.Table(["property", "passing examples", "failing", "invalid (filtered)"], rows),
    ], [f"{result['examples_run']} examples over {len(result['properties'])} properties "
        f"({result['examples_per_property']} per property, seed {result['seed']}): "
        f"{result['crashes']} crashes, {result['seconds']:.0f} s",
        "a crash is an exception that is not an EdgevlError, or a malformed result "
        "(tests/test_fuzz_helpers.py; CI runs the same properties on 1,000 derandomised examples)"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=20_000, help="examples per property")
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--out", default="fuzz", help="result stem (a bare name goes into benchmarks/results)")
    args = ap.parse_args(argv)
    load_before = bench.start()
    env = {**os.environ, "EDGEVL_FUZZ_EXAMPLES": str(args.examples), "EDGEVL_FUZZ_SEED": str(args.seed)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz_helpers.py",
           "--hypothesis-show-statistics", f"--hypothesis-seed={args.seed}", "-k", "not memory_estimate"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=PATHS.repo, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    stats = parse_statistics(proc.stdout)
    failed = sorted(set(re.findall(r"FAILED tests/test_fuzz_helpers\.py::(\w+)", proc.stdout)))
    for name in failed:
        stats.setdefault(name, {"passing": 0, "failing": 0, "invalid": 0})
        stats[name]["failing"] = max(1, stats[name]["failing"])
    result = bench.new_result(
        "fuzz", bench.command_line(PATHS.repo, argv=None if argv is None else ["benchmarks/fuzz.py", *argv]),
        load_before=load_before, packages=("hypothesis",),
        git=bench.git_state(PATHS.repo), examples_per_property=args.examples, seed=args.seed,
        properties=stats, examples_run=sum(p["passing"] + p["failing"] for p in stats.values()),
        crashes=len(failed), failed_properties=failed, pytest_exit_code=proc.returncode,
        seconds=round(seconds, 1))
    bench.write_result(result, PATHS.stem(args.out), render)
    if proc.returncode != 0:
        print(proc.stdout[-4000:], file=sys.stderr)
    return 1 if failed or proc.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
