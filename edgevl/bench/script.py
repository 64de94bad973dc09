"""What every script in ``benchmarks/`` shares: paths, the bench lock, the timing loop, the result
file (``"schema": "edgevl-bench-script/1"``) and its Markdown renderer.

A script's result is one flat JSON object: the envelope below plus the script's own keys (its
tables, targets, settings)::

    {"schema": "edgevl-bench-script/1", "benchmark": "encoders_speed", "created": ISO-8601 UTC,
     "command": "flock /tmp/edgevl-bench.lock python benchmarks/encoders_speed.py ...",
     "machine": {...machine_record()...},  # edgevl.bench.machine: the one machine record
     "headline": "...", "target": "...",   # optional: read by results/README.md
     ...the script's own keys...}

The Markdown file next to it is rendered from the JSON alone by :func:`render_markdown`: a title, the
common lines (machine, command, date and load average) and the script's blocks (lines and
:class:`Table`), so the file can be re-rendered without re-measuring.

The ``edgevl bench`` files (``edgevl-bench/1``, :mod:`edgevl.bench.results`) share the machine record
and the Markdown tables with these.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgevl.bench.machine import load_average, machine_record
from edgevl.errors import InputError

SCHEMA = "edgevl-bench-script/1"
#: the shared lock every timed run holds (``flock /tmp/edgevl-bench.lock CMD`` takes the same one)
DEFAULT_LOCK = "/tmp/edgevl-bench.lock"
#: environment variables that move the folders a script reads and writes
ENV_RESULTS = "EDGEVL_BENCH_RESULTS"
ENV_LIBRARY = "EDGEVL_LIBRARY_DATA"
ENV_LOCK = "EDGEVL_BENCH_LOCK"


# ----------------------------------------------------------------------------- paths


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


# ----------------------------------------------------------------------------- the declared suite

RUNNERS = ("script", "edgevl-bench", "manual")
LOCKS = ("outer", "self")


@dataclass(frozen=True)
class Benchmark:
    """One entry of the declared suite (``benchmarks/suite.py``) that ``run_all.py`` runs.

    ``name`` is the result's stem in ``results/``; ``outputs`` the files it writes there. ``runner``:
    ``script`` runs ``python benchmarks/<script> <args>``; ``edgevl-bench`` is run_all's own
    ``edgevl bench`` runs; ``manual`` is made by hand with ``command`` (listed, never run). ``quick``:
    the arguments for ``run_all.py --quick`` (None: the full ``args`` are quick enough). ``lock``:
    ``outer`` when run_all holds the bench lock around the run, ``self`` when the script takes it
    around its own timed loops (holding it twice would deadlock).
    """

    name: str
    outputs: tuple[str, ...]
    script: str | None = None
    args: tuple[str, ...] = ()
    quick: tuple[str, ...] | None = None
    lock: str = "outer"
    runner: str = "script"
    command: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.runner not in RUNNERS or self.lock not in LOCKS:
            raise ValueError(f"{self.name}: runner {self.runner!r} not in {RUNNERS} or lock {self.lock!r} "
                             f"not in {LOCKS}")
        if (self.runner == "script") != (self.script is not None):
            raise ValueError(f"{self.name}: a 'script' runner needs a script, other runners none")
        if self.runner == "manual" and not self.command:
            raise ValueError(f"{self.name}: a manual result says the command that made it")
        if not self.outputs:
            raise ValueError(f"{self.name}: declares no outputs")

    def argv(self, quick: bool = False) -> list[str]:
        """The script's arguments (the quick variant with ``quick``)."""
        return list(self.quick if quick and self.quick is not None else self.args)


# ----------------------------------------------------------------------------- timing


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


# ----------------------------------------------------------------------------- result file


_REQUIRED: dict[str, tuple[type, ...]] = {
    "schema": (str,), "benchmark": (str,), "created": (str,), "command": (str,), "machine": (dict,),
}
_OPTIONAL: dict[str, tuple[type, ...]] = {"headline": (str,), "target": (str,), "git": (dict,)}
#: the machine keys every result carries; null is "not recorded" (results that predate this schema
#: and were converted to it: :func:`machine_record` fills every one of them)
_MACHINE: dict[str, tuple[type, ...]] = {
    "cpu": (str, type(None)), "cores_logical": (int, type(None)), "os": (str, type(None)),
    "python": (str, type(None)), "onnxruntime": (str, type(None)),
    "load_average_before": (list, type(None)), "load_average_after": (list, type(None)),
}

#: the same rules as a JSON Schema document (for other tools; edgevl checks with :func:`validate_result`)
JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://edgevl.invalid/schemas/edgevl-bench-script-1.json",
    "type": "object",
    "required": list(_REQUIRED),
    "properties": {
        "schema": {"const": SCHEMA},
        "benchmark": {"type": "string", "minLength": 1},
        "created": {"type": "string", "format": "date-time"},
        "command": {"type": "string", "minLength": 1},
        "headline": {"type": "string"},
        "target": {"type": "string"},
        "git": {"type": "object", "required": ["commit", "uncommitted"]},
        "machine": {
            "type": "object",
            "required": list(_MACHINE),
            "properties": {"cores_logical": {"type": ["integer", "null"], "minimum": 1},
                           "load_average_before": {"type": ["array", "null"], "items": {"type": "number"}},
                           "load_average_after": {"type": ["array", "null"], "items": {"type": "number"}}},
        },
    },
    "additionalProperties": True,
}


def _is(v: Any, types: tuple[type, ...]) -> bool:
    if isinstance(v, bool) and bool not in types:
        return False
    return isinstance(v, types)


def _names(types: tuple[type, ...]) -> str:
    return "/".join("null" if t is type(None) else t.__name__ for t in types)


def _finite(v: Any, at: str) -> None:
    """No NaN or infinity anywhere: JSON has no such numbers (Python writes them, others cannot read)."""
    if isinstance(v, float) and not math.isfinite(v):
        raise InputError(f"{at}: {v} is not a finite number")
    if isinstance(v, Mapping):
        for k, x in v.items():
            _finite(x, f"{at}.{k}")
    elif isinstance(v, list | tuple):
        for i, x in enumerate(v):
            _finite(x, f"{at}[{i}]")


def validate_result(doc: Any, where: str = "result file") -> None:
    """Raise InputError naming the first field that breaks the ``edgevl-bench-script/1`` schema."""
    if not isinstance(doc, Mapping):
        raise InputError(f"{where}: expected a JSON object")
    if doc.get("schema") != SCHEMA:
        raise InputError(f"{where}: schema {doc.get('schema')!r} is not {SCHEMA!r}")
    for k, types in _REQUIRED.items():
        if k not in doc or not _is(doc[k], types) or doc[k] in ("", {}):
            raise InputError(f"{where}: key {k!r} missing, empty or not {_names(types)}")
    for k, types in _OPTIONAL.items():
        if k in doc and not _is(doc[k], types):
            raise InputError(f"{where}: key {k!r} is not {_names(types)}")
    try:
        datetime.fromisoformat(doc["created"])
    except ValueError as e:
        raise InputError(f"{where}: created {doc['created']!r} is not an ISO-8601 time") from e
    m = doc["machine"]
    for k, types in _MACHINE.items():
        if k not in m or not _is(m[k], types):
            raise InputError(f"{where}: machine.{k} missing or not {_names(types)}")
    if m["cores_logical"] is not None and m["cores_logical"] < 1:
        raise InputError(f"{where}: machine.cores_logical {m['cores_logical']} < 1")
    for k in ("load_average_before", "load_average_after"):
        if m[k] is not None and not all(_is(x, (int, float)) for x in m[k]):
            raise InputError(f"{where}: machine.{k} must be numbers")
    _finite(dict(doc), where)


def new_result(benchmark: str, command: str, *, load_before: list[float] | None,
               packages: Sequence[str] = (), machine_extra: Mapping[str, Any] | None = None,
               **data: Any) -> dict[str, Any]:
    """A result document: the envelope (machine record taken now, with ``load_before`` from the start
    of the run) and the script's own keys ``data``."""
    return {
        "schema": SCHEMA,
        "benchmark": benchmark,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine_record(load_before, tuple(packages), **dict(machine_extra or {})),
        **data,
    }


def start() -> list[float] | None:
    """The load average at the start of a run (pass it to :func:`new_result` as ``load_before``)."""
    return load_average()


def write_result(doc: Mapping[str, Any], out: Path, render: Callable[[Mapping[str, Any]], str] | None = None,
                 *, echo: bool = True) -> Path:
    """Validate ``doc``, write ``<out>.json`` (``out`` is a path stem) and, with ``render``, the
    Markdown ``<out>.md`` from the JSON as written; returns the JSON path."""
    validate_result(doc, str(out.with_suffix(".json")))
    out.parent.mkdir(parents=True, exist_ok=True)
    js = out.with_suffix(".json")
    js.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if render is not None:
        text = render(json.loads(js.read_text(encoding="utf-8")))
        out.with_suffix(".md").write_text(text, encoding="utf-8")
        if echo:
            print(text)
    return js


def read_json(path: Path, missing: str = "no such result file") -> Any:
    """A JSON file's content; InputError with the path when it is absent, not a regular file, over
    64 MiB, nested over 64 levels or not strict JSON (:func:`edgevl.safeio.read_json_file`)."""
    from edgevl.safeio import read_json_file

    if not path.exists():
        raise InputError(f"{path}: {missing}")
    return read_json_file(path, "result file")


def load_result(path: Path) -> dict[str, Any]:
    """Read and validate a result file (InputError with the path when it is not one)."""
    doc = read_json(path)
    validate_result(doc, str(path))
    return dict(doc)


# ----------------------------------------------------------------------------- Markdown


@dataclass(frozen=True)
class Table:
    """A Markdown table: a header row and rows of cells (any value; ``str()`` of it, ``|`` escaped)."""

    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]


Block = str | Table


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """The one Markdown table writer (result files of the scripts and of ``edgevl bench``)."""
    def cell(c: Any) -> str:
        return str(c).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _load(v: Any) -> str:
    if isinstance(v, list | tuple) and v:
        v = v[0]
    return f"{v:.1f}" if isinstance(v, int | float) and not isinstance(v, bool) else "?"


def machine_line(machine: Mapping[str, Any]) -> str:
    """One line for a machine record: CPU and cores, OS, Python, runtimes, GPU, load average (a field
    that was not recorded is left out)."""
    cores = machine.get("cores_logical", machine.get("cores"))
    parts = [f"{machine.get('cpu') or 'not recorded'}"
             + (f" ({cores} logical cores)" if cores is not None else "")]
    if machine.get("os"):
        parts.append(str(machine["os"]))
    if machine.get("python"):
        parts.append(f"Python {machine['python']}")
    if machine.get("onnxruntime"):
        parts.append(f"onnxruntime {machine['onnxruntime']}")
    for name, version in (machine.get("packages") or {}).items():
        if version:
            parts.append(f"{name} {version}")
    if machine.get("tensorrt"):
        parts.append(f"TensorRT {machine['tensorrt']}")
    if "gpus" in machine:
        gpus = ", ".join(f"{g.get('name')} (driver {g.get('driver')})" for g in machine.get("gpus") or [])
        parts.append(f"GPU: {gpus}" if gpus else "no GPU")
    jetson = machine.get("jetson") or {}
    if jetson.get("detected"):
        mode = (jetson.get("nvpmodel") or {}).get("name")
        locked = {True: "locked", False: "NOT locked", None: "unknown"}[jetson.get("clocks_locked")]
        parts.append(f"{jetson.get('model') or 'Jetson'}, L4T {jetson.get('l4t')} "
                     f"(JetPack {jetson.get('jetpack')}), nvpmodel {mode}, clocks {locked}")
    before, after = machine.get("load_average_before"), machine.get("load_average_after")
    if before or after:
        parts.append(f"load average (1 min) {_load(before)} before, {_load(after)} after"
                     + (f" on {cores} cores" if cores is not None else ""))
    return "; ".join(parts)


def render_markdown(doc: Mapping[str, Any], title: str, blocks: Sequence[Block] = (),
                    notes: Sequence[str] = ()) -> str:
    """The one Markdown renderer of a script's result: title, machine / command / date lines, the
    script's ``notes`` (more ``- `` lines) and ``blocks`` (text lines and tables, a blank line after
    each table)."""
    out = [f"# {title}", "", f"- machine: {machine_line(doc['machine'])}", f"- command: `{doc['command']}`",
           f"- date: {doc['created']}"]
    git = doc.get("git")
    if isinstance(git, Mapping) and git.get("commit"):
        dirty = git.get("uncommitted") or []
        out.append(f"- code: commit {git['commit']}"
                   + (f", with uncommitted changes in {', '.join(dirty)}" if dirty else ""))
    out += [f"- {n}" for n in notes]
    out.append("")
    for b in blocks:
        if isinstance(b, Table):
            out += [md_table(b.headers, b.rows), ""]
        else:
            out.append(b)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"
