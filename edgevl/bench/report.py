"""Human-readable tables of benchmark runs and comparisons (Markdown and rows for rich).

:func:`md_table` and :func:`machine_line` are the one Markdown table writer and the one machine line;
the benchmark scripts' reports (``benchmarks/benchlib``, outside the runtime package) use them too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgevl.bench.compare import CompareReport
from edgevl.bench.results import BenchResult, BenchRun


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """The one Markdown table writer (result files of ``edgevl bench`` and of the scripts)."""
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


HEADERS = ("model", "backend", "prec", "batch", "input", "p50 ms", "p90 ms", "p99 ms", "mean±std ms",
           "items/s", "peak RSS MB", "dev MB", "status")


def _f(v: float | None, nd: int = 3) -> str:
    if v is None:
        return "–"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.{nd}g}" if v < 1 else f"{v:.2f}"


def input_shape(r: BenchResult, batch_symbol: bool = False) -> str:
    """The measured input shape(s), e.g. ``1×8`` (input_ids and attention_mask alike) or
    ``1×3×224×224``; with ``batch_symbol`` the batch axis is written ``B``."""
    out: list[str] = []
    for dims in r.shapes.values():
        parts = [str(d) for d in dims]
        if batch_symbol and parts and dims[0] == r.batch:
            parts[0] = "B"
        text = "×".join(parts)
        if text not in out:
            out.append(text)
    return ", ".join(out)


def result_row(r: BenchResult) -> tuple[str, ...]:
    model = f"{r.bundle}/{r.role}"
    status = r.status
    shape = input_shape(r) or "–"
    if r.stats is None:
        return (model, r.backend, r.precision, str(r.batch), shape, "–", "–", "–", "–", "–", "–", "–", status)
    s = r.stats
    return (model, r.backend, r.precision, str(r.batch), shape, _f(s.p50_ms), _f(s.p90_ms), _f(s.p99_ms),
            f"{_f(s.mean_ms)}±{_f(s.std_ms)}", _f(s.throughput_items_s), _f(r.peak_rss_mb),
            _f(r.device_memory_mb), status if r.status != "ok" else f"ok ({s.count} it)")


def notes(results: Sequence[BenchResult]) -> list[str]:
    """One line per configuration that has a reason (unavailable backend, skipped batch, error)."""
    return [f"{r.bundle}/{r.role} {r.backend} batch {r.batch}: {r.status}: {r.reason}"
            for r in results if r.reason]


def run_markdown(run: BenchRun, title: str = "edgevl bench") -> str:
    """A Markdown report: the command, the machine, one row per configuration."""
    rows = [result_row(r) for r in run.results]
    out = [f"# {title}", "", f"- command: `{run.command}`", f"- created: {run.created}",
           f"- machine: {machine_line(dict(run.machine))}",
           f"- settings: {', '.join(f'{k}={v}' for k, v in run.settings.items() if v not in (None, [], {}))}"]
    if run.interrupted:
        out.append("- **interrupted (Ctrl-C or --max-seconds): partial results**")
    out += ["", md_table(HEADERS, rows), ""]
    out += [f"- {n}" for n in notes(run.results)]
    if notes(run.results):
        out.append("")
    out.append("Latency is wall time per call (one batch); items/s = batch / mean latency. Peak RSS is the "
               "process high-water mark after that model's runs (all its batch sizes: repeats interleave "
               "them), so it belongs to the largest batch.")
    return "\n".join(out) + "\n"


COMPARE_HEADERS = ("configuration", "A p50 ms", "B p50 ms", "B/A", "interval", "verdict")


def compare_rows(rep: CompareReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for c in rep.rows:
        k = dict(c.key)
        name = " ".join(f"{v}" if f in ("bundle", "backend", "precision") else f"{f}={v}"
                        for f, v in k.items() if f != "threads" or v)
        rows.append((name, _f(c.a_p50_ms), _f(c.b_p50_ms), f"{c.ratio:.3f}", f"[{c.low:.3f}, {c.high:.3f}]",
                     c.verdict))
    return rows


def compare_markdown(rep: CompareReport, a_name: str, b_name: str) -> str:
    out = [f"# edgevl bench compare: A = `{a_name}`, B = `{b_name}`", ""]
    for w in rep.warnings:
        out.append(f"**Warning: {w}.**\n")
    out.append(md_table(COMPARE_HEADERS, compare_rows(rep)))
    out.append("")
    out.append(f"B/A < 1: B is faster. Interval: bootstrap 95 % CI of the ratio of medians, widened by the "
               f"run-to-run spread of repeated runs; 'within noise' when it contains 1 or |B/A − 1| ≤ "
               f"{rep.floor:.0%}.")
    return "\n".join(out) + "\n"
