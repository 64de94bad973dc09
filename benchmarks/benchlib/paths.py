"""Where a benchmark script runs: its paths (repository, results, library data), the shared bench
lock, the command line that produced a result and the commit measured."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the shared lock every timed run holds (``flock /tmp/edgevl-bench.lock CMD`` takes the same one)
DEFAULT_LOCK = "/tmp/edgevl-bench.lock"
#: environment variables that move the folders a script reads and writes
ENV_RESULTS = "EDGEVL_BENCH_RESULTS"
ENV_LIBRARY = "EDGEVL_LIBRARY_DATA"
ENV_LOCK = "EDGEVL_BENCH_LOCK"


@dataclass(frozen=True)
class BenchPaths:
    """Where a benchmark script lives, writes and reads (no absolute path is written in a script)."""

    repo: Path
    results: Path
    library: Path

    def stem(self, out: str | Path) -> Path:
        """A result's path stem: a bare name goes into ``results``, a path is taken as it is."""
        p = Path(out)
        return p if p.parent != Path(".") else self.results / p


def bench_paths(script: str | Path) -> BenchPaths:
    """Paths for the script at ``script`` (its ``__file__``): the repository is its folder's parent;
    results go to ``benchmarks/results`` (or ``$EDGEVL_BENCH_RESULTS``); the library data set is
    ``<repo>/../shared/data/library`` (or ``$EDGEVL_LIBRARY_DATA``)."""
    repo = Path(script).resolve().parent.parent
    results = Path(os.environ.get(ENV_RESULTS) or repo / "benchmarks" / "results")
    library = Path(os.environ.get(ENV_LIBRARY) or repo.parent / "shared" / "data" / "library")
    return BenchPaths(repo=repo, results=results, library=library)


def lock_path() -> Path:
    return Path(os.environ.get(ENV_LOCK) or DEFAULT_LOCK)


#: set to "1" for a process whose parent already holds the bench lock (run_all does, for the
#: scripts it runs under the lock): :func:`bench_lock` then takes nothing (a second flock from
#: another open file would wait for the parent forever)
ENV_LOCKED = "EDGEVL_BENCH_LOCKED"


@contextlib.contextmanager
def bench_lock(path: Path | None = None) -> Iterator[float]:
    """Hold the shared bench lock (flock(2)); yields the seconds spent waiting for it. A no-op where
    ``$EDGEVL_BENCH_LOCKED`` is 1 (a parent process holds it)."""
    if os.environ.get(ENV_LOCKED) == "1":
        yield 0.0
        return
    t0 = time.monotonic()
    with open(path or lock_path(), "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield time.monotonic() - t0
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def command_line(repo: Path, argv: Sequence[str] | None = None, *, locked: bool = False) -> str:
    """The command that produced a result as a person types it from the repository root
    (``python benchmarks/x.py ARGS``), with the ``flock`` prefix when the whole run holds the lock."""
    args = list(sys.argv if argv is None else argv)
    if args:
        with contextlib.suppress(ValueError):
            args[0] = str(Path(args[0]).resolve().relative_to(repo))
    cmd = "python " + shlex.join(args)
    return f"flock {DEFAULT_LOCK} {cmd}" if locked else cmd


def git_state(repo: Path, paths: Sequence[str] = ("edgevl",)) -> dict[str, Any]:
    """The commit measured, and the files under ``paths`` that differ from it (work in progress)."""

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
        except OSError:
            return ""
        return out.stdout

    dirty = [line[3:] for line in git("status", "--porcelain", "--", *paths).splitlines() if len(line) > 3]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "uncommitted": dirty}
