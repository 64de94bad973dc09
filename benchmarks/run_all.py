"""Regenerate every committed result in benchmarks/results/.

Runs each benchmark script in benchmarks/ (discovered: a ``*.py`` with a ``__main__`` guard that
writes into ``results/``; helpers such as ``ocr_common.py`` or ``strgen.py`` are skipped, and a
script can opt out with a module-level ``RUN_ALL = False``), then ``edgevl bench`` on the PP-OCRv4
bundles at batch 1/8/32 (→ results/bench_ppocr.json/.md/.png), then rewrites results/README.md:
an index linking every result file with its headline ratio when the file exposes one.

Every run holds the shared bench lock (/tmp/edgevl-bench.lock, the same flock(2) lock as
``flock /tmp/edgevl-bench.lock CMD``) so timings never overlap — except scripts that take the lock
around their own timed loops (``fcntl.flock`` in their source), which run without the outer lock
so they cannot deadlock — and results/run_all.json records each command, its exit code and
duration, and the machine.

    python benchmarks/run_all.py                 # everything
    python benchmarks/run_all.py --quick         # scripts that accept --quick get it; small bench
    python benchmarks/run_all.py --only bench_ppocr --only str_eval
    python benchmarks/run_all.py --skip ocr_vs_rapidocr
    python benchmarks/run_all.py --index-only    # just rewrite results/README.md
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
LOCK = Path(os.environ.get("EDGEVL_BENCH_LOCK", "/tmp/edgevl-bench.lock"))
BENCH_PPOCR = "bench_ppocr"


# ----------------------------------------------------------------------------- discovery


def discover() -> tuple[list[Path], dict[str, str]]:
    """Benchmark scripts to run, and the skipped ``*.py`` files with why."""
    scripts: list[Path] = []
    skipped: dict[str, str] = {}
    for p in sorted(HERE.glob("*.py")):
        if p.name == Path(__file__).name or p.name.startswith("_"):
            continue
        src = p.read_text(encoding="utf-8", errors="replace")
        if "__main__" not in src:
            skipped[p.stem] = "a helper module (no __main__)"
        elif re.search(r"^RUN_ALL\s*=\s*False", src, re.M):
            skipped[p.stem] = "opted out (RUN_ALL = False)"
        elif "results" not in src:
            skipped[p.stem] = "writes nothing into results/"
        elif re.search(r"add_argument\([^)]*required=True", src):
            skipped[p.stem] = "needs arguments (a generator, not a benchmark)"
        else:
            scripts.append(p)
    return scripts, skipped


def locks_itself(script: Path) -> bool:
    """A script that takes the bench lock around its own timed loops (holding it around the whole
    script as well would deadlock: flock(2) locks from two open files exclude each other)."""
    return re.search(r"fcntl\.flock\(", script.read_text(encoding="utf-8", errors="replace")) is not None


def accepts_quick(script: Path) -> bool:
    return '"--quick"' in script.read_text(encoding="utf-8", errors="replace")


# ----------------------------------------------------------------------------- running


@contextlib.contextmanager
def bench_lock() -> Iterator[float]:
    """Hold the shared bench lock; yields the seconds spent waiting for it."""
    t0 = time.monotonic()
    with open(LOCK, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield time.monotonic() - t0
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def machine() -> dict[str, Any]:
    from edgevl.bench.machine import machine_info

    return machine_info().to_dict()


def run_locked(name: str, cmd: list[str], log_dir: Path, *, lock: bool = True) -> dict[str, Any]:
    """Run ``cmd`` from the repo root under the bench lock (unless the script takes it itself);
    its output goes to a log file."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name.replace(':', '_')}.log"
    if lock:
        print(f"[run_all] {name}: waiting for {LOCK} ...", flush=True)
    with bench_lock() if lock else contextlib.nullcontext(0.0) as waited:
        print(f"[run_all] {name}: {shlex.join(cmd)}", flush=True)
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        t0 = time.monotonic()
        env = {**os.environ, "EDGEVL_BENCH_LOCKED": "1"}
        with open(log, "w") as out:
            rc = subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env,
                                check=False).returncode
        took = time.monotonic() - t0
    print(f"[run_all] {name}: exit {rc} after {took:.0f} s (log {log})", flush=True)
    shown = (f"flock {LOCK} " if lock else "") + shlex.join(_display(cmd))
    return {"name": name, "command": shown, "lock": "held around the run" if lock else "taken by the script",
            "returncode": rc,
            "seconds": round(took, 1), "waited_for_lock_s": round(waited, 1),
            "started": started, "log": str(log)}


def _display(cmd: list[str]) -> list[str]:
    """The command as a person would type it from the repo root."""
    out = ["python" if c == sys.executable else c for c in cmd]
    return [os.path.relpath(c, ROOT) if c.startswith(str(ROOT)) else c for c in out]


def bench_ppocr_commands(quick: bool) -> list[tuple[str, list[str], Path]]:
    """The ``edgevl bench`` runs behind results/bench_ppocr: (name, command, result JSON).

    The detector runs at batch 1 and 8 only: at its real input (960x960) a batch of 32 needs more
    memory than a 24 GB machine has (the process was OOM-killed), and the OCR pipeline never batches
    the detector. The classifier and recogniser run at 1, 8 and 32.
    """
    from edgevl.models.ppocr import default_bundles

    det, cls, rec = (str(b.path) for b in default_bundles())  # built from the rapidocr wheel if needed
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "edgevl-run-all"
    tmp.mkdir(parents=True, exist_ok=True)
    timing = ["--warmup", "1"] + (["--iters", "3"] if quick else ["--seconds", "3", "--repeats", "3"])
    out = []
    small = "1,8" if quick else "1,8,32"
    for name, paths, batches in (("det", [det], "1,8"), ("cls_rec", [cls, rec], small)):
        js = tmp / f"{BENCH_PPOCR}_{name}.json"
        cmd = [sys.executable, "-m", "edgevl", "bench", *paths, "--batch", batches, *timing,
               "--json", str(js)]
        out.append((f"{BENCH_PPOCR}:{name}", cmd, js))
    return out


def merge_bench(parts: list[Path], stem: Path, commands: list[str]) -> None:
    """One result file (+ Markdown table + plot) from several ``edgevl bench`` runs on one machine."""
    import dataclasses

    from edgevl.bench import load_run, write_run
    from edgevl.bench.plot import plot_results
    from edgevl.bench.report import run_markdown

    runs = [load_run(p) for p in parts]
    merged = dataclasses.replace(
        runs[0], command=" && ".join(commands), results=tuple(r for run in runs for r in run.results),
        interrupted=any(r.interrupted for r in runs),
        settings={**runs[0].settings, "batches": "det 1,8; cls/rec " + ",".join(
            str(b) for b in runs[-1].settings.get("batches", []))})
    write_run(merged, stem.with_suffix(".json"))
    stem.with_suffix(".md").write_text(run_markdown(merged, "edgevl bench: PP-OCRv4 det / cls / rec"),
                                       encoding="utf-8")
    plot_results(merged.results, stem.with_suffix(".png"), title=f"PP-OCRv4 on {merged.machine.get('cpu')}")


# ----------------------------------------------------------------------------- index


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


_LABEL_KEYS = ("image", "model", "input", "name", "config", "bundle", "kind")


def _ratios(d: dict[str, Any]) -> list[str]:
    """``key value (label)`` for every measured ratio/speedup number in one flat record."""
    label = ", ".join(str(d[k]) for k in _LABEL_KEYS if isinstance(d.get(k), str))[:60]
    out = []
    for k, v in d.items():
        n = _num(v)
        if n is not None and not k.startswith("target") and re.search(r"ratio|speedup|x_faster", k):
            out.append(f"{k} {n:.2f}" + (f" ({label})" if label else ""))
    return out


def headline(doc: Any) -> str:
    """A one-line headline from a result JSON, read defensively (no format is agreed on)."""
    if not isinstance(doc, dict):
        return ""
    h = doc.get("headline")
    if isinstance(h, (str, int, float)):
        return str(h)
    if isinstance(h, dict):
        return "; ".join(f"{k}: {v}" for k, v in h.items() if isinstance(v, (str, int, float)))
    if doc.get("schema") == "edgevl-bench/1":
        parts = []
        for r in doc.get("results", []):
            st = r.get("stats") if isinstance(r, dict) else None
            if st and r.get("batch") == 1:
                p50 = float(st.get("p50_ms", 0))
                parts.append(f"{r.get('bundle')}/{r.get('role')} {r.get('backend')} b1 p50 "
                             + (f"{p50:,.0f}" if p50 >= 100 else f"{p50:.3g}") + " ms")
        return "; ".join(parts)
    found: list[str] = []
    summary = doc.get("summary")
    if isinstance(summary, list):
        for item in summary:
            if isinstance(item, dict):
                found += _ratios(item)
    elif isinstance(summary, dict):
        found += _ratios(summary)
        for v in summary.values():
            if isinstance(v, dict):
                found += _ratios(v)
    for key in ("rows", "results"):  # a table of records, as several scripts write
        rows = doc.get(key)
        if not found and isinstance(rows, list):
            for item in rows:
                if isinstance(item, dict):
                    found += _ratios(item)
    if not found:
        found = _ratios(doc)
    return "; ".join(found[:4]) + (f" (+{len(found) - 4} more)" if len(found) > 4 else "")


def _machine_line(m: Any) -> str:
    if not isinstance(m, dict):
        return ""
    cores = m.get("cores_logical", m.get("cores", ""))
    gpus = m.get("gpus") or []
    gpu = ", ".join(str(g.get("name")) for g in gpus if isinstance(g, dict)) if isinstance(gpus, list) else ""
    return f"{m.get('cpu', '?')}, {cores} cores" + (f", {gpu}" if gpu else "")


def write_index(results: Path = RESULTS) -> Path:
    """results/README.md: one row per result (JSON with its .md/.png siblings, or a lone file)."""
    rows = []
    stems = sorted({p.stem for p in results.iterdir()
                    if p.is_file() and p.suffix in (".json", ".md", ".png", ".csv") and p.name != "README.md"
                    and p.stem != "run_all"})
    for stem in stems:
        files = [results / f"{stem}{ext}" for ext in (".md", ".json", ".png", ".csv")]
        links = " · ".join(f"[{f.suffix[1:]}]({f.name})" for f in files if f.is_file())
        doc: Any = None
        js = results / f"{stem}.json"
        if js.is_file():
            try:
                doc = json.loads(js.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                doc = None
        d = doc if isinstance(doc, dict) else {}
        cmd = d.get("command", "")
        date = d.get("date") or d.get("created") or ""
        target = d.get("target") or "; ".join(f"{k} {v}" for k, v in d.items()
                                              if k.startswith("target") and isinstance(v, (int, float, str)))
        head = (headline(doc) or "—").replace("|", "/")
        cells = [f"**{stem}**", links, head, str(target).replace("|", "/"),
                 f"`{cmd}`" if cmd else "", _machine_line(d.get("machine")), str(date)[:25]]
        rows.append("| " + " | ".join(cells) + " |")
    lines = [
        "# Benchmark results",
        "",
        "Regenerate everything with `python benchmarks/run_all.py` (each run holds "
        "`/tmp/edgevl-bench.lock`; see `run_all.json` for the last run's commands and exit codes).",
        "Headlines are read from each result file as it stands; ratios are measured side by side in one run.",
        "",
        "| result | files | headline | target | command | machine | date |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    out = results / "README.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", default=[], help="run only this benchmark (repeatable)")
    ap.add_argument("--skip", action="append", default=[], help="do not run this benchmark (repeatable)")
    ap.add_argument("--quick", action="store_true", help="pass --quick to scripts that take it; small bench")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    ap.add_argument("--index-only", action="store_true", help="only rewrite results/README.md")
    args = ap.parse_args(argv)

    scripts, skipped = discover()
    names = [p.stem for p in scripts] + [BENCH_PPOCR]
    unknown = [n for n in args.only + args.skip if n not in names]
    if unknown:
        ap.error(f"unknown benchmark(s) {unknown}; known: {', '.join(names)}")
    if args.list:
        for n in names:
            print(n)
        for n, why in skipped.items():
            print(f"{n}  (skipped: {why})")
        return 0
    RESULTS.mkdir(exist_ok=True)
    runs: list[dict[str, Any]] = []
    if not args.index_only:
        selected = [n for n in names if (not args.only or n in args.only) and n not in args.skip]
        log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "edgevl-run-all"
        for p in scripts:
            if p.stem not in selected:
                continue
            cmd = [sys.executable, str(p)]
            if args.quick and accepts_quick(p):
                cmd.append("--quick")
            runs.append(run_locked(p.stem, cmd, log_dir, lock=not locks_itself(p)))
        if BENCH_PPOCR in selected:
            parts = bench_ppocr_commands(args.quick)
            done = [run_locked(name, cmd, log_dir) for name, cmd, _ in parts]
            runs += done
            if all(r["returncode"] == 0 for r in done):
                merge_bench([js for _, _, js in parts], RESULTS / BENCH_PPOCR, [r["command"] for r in done])
        record = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "command": shlex.join(["python", "benchmarks/run_all.py", *(argv or sys.argv[1:])]),
                  "quick": args.quick, "machine": machine(), "runs": runs, "skipped_files": skipped}
        (RESULTS / "run_all.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"[run_all] wrote {write_index()}")
    failed = [r["name"] for r in runs if r["returncode"] != 0]
    if failed:
        print(f"[run_all] FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
