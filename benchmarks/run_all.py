"""Regenerate every committed result in benchmarks/results/ from the declared suite.

The suite (benchmarks/suite.py) names each result, the script and arguments that make it, the files
it writes, a quick variant and who holds the bench lock; nothing is discovered by reading the
scripts. ``edgevl bench`` on the PP-OCRv4 bundles (→ results/bench_ppocr.json/.md/.png) is run_all's
own entry; ``manual`` entries are listed with their command and never run. Afterwards
results/README.md is rewritten: an index linking every result file with its headline.

Every run holds the shared bench lock (/tmp/edgevl-bench.lock, the same flock(2) lock as
``flock /tmp/edgevl-bench.lock CMD``) so timings never overlap — except entries declared
``lock="self"`` (the script takes the lock around its own timed loops) — and run_all.json records
each command, its exit code and duration, and the machine.

    python benchmarks/run_all.py                 # everything, into benchmarks/results/
    python benchmarks/run_all.py --quick         # the quick variants, into a scratch folder
    python benchmarks/run_all.py --only bench_ppocr --only str_eval
    python benchmarks/run_all.py --skip ocr_vs_rapidocr --results /tmp/rerun
    python benchmarks/run_all.py --index-only    # just rewrite results/README.md
    python benchmarks/run_all.py --render        # re-render every result's Markdown from its JSON
    flock /tmp/edgevl-bench.lock python benchmarks/run_all.py --locked   # one lock for the whole run
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

from edgevl.bench.machine import machine_record

# benchmarks/ itself (on sys.path when run as a script; not when a test imports this file)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ENV_LOCKED, ENV_RESULTS, bench_lock, bench_paths, load_result, lock_path, start
from suite import HELPERS, SUITE, Benchmark

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = bench_paths(__file__).results
BENCH_PPOCR = "bench_ppocr"


# ----------------------------------------------------------------------------- running


def run_locked(name: str, cmd: list[str], log_dir: Path, *, lock: bool = True,
               env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd`` from the repo root under the bench lock (unless the script takes it itself);
    its output goes to a log file."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name.replace(':', '_')}.log"
    if lock:
        print(f"[run_all] {name}: waiting for {lock_path()} ...", flush=True)
    with bench_lock() if lock else contextlib.nullcontext(0.0) as waited:
        print(f"[run_all] {name}: {shlex.join(cmd)}", flush=True)
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        t0 = time.monotonic()
        # a child run under the lock must not take it again (one that locks itself takes it unless
        # the caller of run_all holds it: --locked)
        full_env = {**os.environ, **({ENV_LOCKED: "1"} if lock else {}), **(env or {})}
        with open(log, "w") as out:
            rc = subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=full_env,
                                check=False).returncode
        took = time.monotonic() - t0
    print(f"[run_all] {name}: exit {rc} after {took:.0f} s (log {log})", flush=True)
    shown = (f"flock {lock_path()} " if lock else "") + shlex.join(_display(cmd))
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

    # the PP-OCRv4 bundles this result describes (built from the rapidocr-onnxruntime wheel if needed)
    det, cls, rec = (str(b.path) for b in default_bundles("ppocrv4"))
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "edgevl-run-all"
    tmp.mkdir(parents=True, exist_ok=True)
    timing = ["--warmup", "1"] + (["--iters", "3"] if quick else ["--seconds", "3", "--repeats", "3"])
    out = []
    small = "1,8" if quick else "1,8,32"
    for name, paths, batches in (("det", [det], "1,8"), ("cls_rec", [cls, rec], small)):
        js = tmp / f"{BENCH_PPOCR}_{name}.json"
        cmd = [sys.executable, "-m", "edgevl", "bench", *paths, "--batch", batches, *timing,
               "--out", str(js)]
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
    cores = m.get("cores_logical", m.get("cores"))
    gpus = m.get("gpus") or []
    gpu = ", ".join(str(g.get("name")) for g in gpus if isinstance(g, dict)) if isinstance(gpus, list) else ""
    if not m.get("cpu") and cores is None:
        return "not recorded"
    return f"{m.get('cpu') or '?'}, {cores if cores is not None else '?'} cores" + (f", {gpu}" if gpu else "")


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
        declared = by_name().get(stem)
        cmd = d.get("command") or (declared.command if declared else "")
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


def by_name() -> dict[str, Benchmark]:
    return {b.name: b for b in SUITE}


def import_script(script: str) -> ModuleType:
    """A benchmark script as a module (its ``main`` is not run), for its ``render``."""
    spec = importlib.util.spec_from_file_location(Path(script).stem, HERE / script)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def render_all(results: Path) -> list[Path]:
    """Rewrite every script result's Markdown from its JSON with the script's ``render`` (no run)."""
    written = []
    for b in SUITE:
        js = results / f"{b.name}.json"
        if b.runner != "script" or b.script is None or not js.is_file():
            continue
        md = results / f"{b.name}.md"
        md.write_text(import_script(b.script).render(load_result(js)), encoding="utf-8")
        written.append(md)
    return written


def script_command(b: Benchmark, quick: bool) -> list[str]:
    assert b.script is not None
    return [sys.executable, str(HERE / b.script), *b.argv(quick)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", default=[], help="run only this benchmark (repeatable)")
    ap.add_argument("--skip", action="append", default=[], help="do not run this benchmark (repeatable)")
    ap.add_argument("--quick", action="store_true",
                    help="the quick variants (and a small edgevl bench), written to a scratch folder "
                    "unless --results is given")
    ap.add_argument("--results", type=Path, default=None,
                    help="write results here instead of benchmarks/results (to compare with the "
                    "committed ones)")
    ap.add_argument("--locked", action="store_true",
                    help="the caller holds the bench lock for the whole run (flock /tmp/edgevl-bench.lock "
                    "python benchmarks/run_all.py --locked): take it nowhere else")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    ap.add_argument("--index-only", action="store_true", help="only rewrite results/README.md")
    ap.add_argument("--render", action="store_true",
                    help="only re-render every result's Markdown from its JSON (and the index)")
    args = ap.parse_args(argv)

    if args.locked:
        os.environ[ENV_LOCKED] = "1"  # run_locked and every script's bench_lock take nothing
    suite = by_name()
    unknown = [n for n in args.only + args.skip if n not in suite]
    if unknown:
        ap.error(f"unknown benchmark(s) {unknown}; known: {', '.join(suite)}")
    if args.list:
        for b in SUITE:
            what = {"script": f"benchmarks/{b.script} {shlex.join(b.args)}".strip(),
                    "edgevl-bench": "edgevl bench (run_all's own)",
                    "manual": f"manual: {b.command}"}[b.runner]
            print(f"{b.name:<24} {what}")
        print(f"helpers (not run): {', '.join(HELPERS)}")
        return 0
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / "edgevl-run-all" / "results"
    results = args.results or (scratch if args.quick else RESULTS)
    results = results.resolve()
    results.mkdir(parents=True, exist_ok=True)
    env = {ENV_RESULTS: str(results)}
    runs: list[dict[str, Any]] = []
    if args.render:
        for md in render_all(results):
            print(f"[run_all] rendered {md}")
    elif not args.index_only:
        load_before = start()
        selected = [b for b in SUITE if (not args.only or b.name in args.only) and b.name not in args.skip]
        log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "edgevl-run-all"
        for b in selected:
            if b.runner == "script":
                runs.append(run_locked(b.name, script_command(b, args.quick), log_dir, lock=b.lock == "outer",
                                       env=env))
            elif b.runner == "edgevl-bench":
                parts = bench_ppocr_commands(args.quick)
                done = [run_locked(name, cmd, log_dir, env=env) for name, cmd, _ in parts]
                runs += done
                if all(r["returncode"] == 0 for r in done):
                    merge_bench([js for _, _, js in parts], results / b.name, [r["command"] for r in done])
        record = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "command": shlex.join(["python", "benchmarks/run_all.py", *(argv or sys.argv[1:])]),
                  "quick": args.quick, "results": str(results), "machine": machine_record(load_before),
                  "runs": runs,
                  "manual": {b.name: b.command for b in SUITE if b.runner == "manual"}}
        (results / "run_all.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"[run_all] wrote {write_index(results)}")
    failed = [r["name"] for r in runs if r["returncode"] != 0]
    if failed:
        print(f"[run_all] FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
