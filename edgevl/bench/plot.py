"""``--plot``: latency against batch size, one panel per model, one line per backend × precision.

matplotlib is the optional ``plot`` extra and is imported only here, lazily.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgevl.bench.report import input_shape
from edgevl.bench.results import BenchResult
from edgevl.errors import InputError
from edgevl.safeio import write_bytes_atomic


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise InputError("--plot needs matplotlib: pip install 'edgevl[plot]'") from e
    return plt


def _fmt(ms: float) -> str:
    """Plain numbers on the plot: 3,728 / 77 / 1.47 / 0.0105 (never 3.73e+03)."""
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.3g}"


def series(results: Sequence[BenchResult]) -> dict[str, dict[str, list[tuple[int, float, float]]]]:
    """``{panel: {line: [(batch, p50_ms, p90_ms), ...]}}`` sorted by batch (pure; plotted below).

    A panel is one task and model role, so an fp32 bundle and its int8 sibling share a panel; a line
    is one backend × precision (prefixed with the bundle name when a panel holds several bundles).
    """
    panels: dict[str, list[BenchResult]] = defaultdict(list)
    for r in results:
        if r.stats is not None:
            panels[f"{r.task} / {r.role}"].append(r)
    out: dict[str, dict[str, list[tuple[int, float, float]]]] = {}
    for panel, rs in panels.items():
        several = len({r.bundle for r in rs}) > 1
        lines: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
        for r in rs:
            assert r.stats is not None
            line = (f"{r.bundle} " if several else "") + f"{r.backend} {r.precision}"
            line += f" {r.threads}t" if r.threads else ""
            lines[line].append((r.batch, r.stats.p50_ms, r.stats.p90_ms))
        title = panel if several else f"{rs[0].bundle} ({panel})"
        shapes = {input_shape(r, batch_symbol=True) for r in rs} - {""}
        if len(shapes) == 1:  # one input shape (batch as B) for the whole panel: say it
            title += f", input {shapes.pop()}"
        out[title] = {ln: sorted(pts) for ln, pts in lines.items()}
    return out


def plot_results(results: Sequence[BenchResult], out: Path | str, title: str | None = None, *,
                 inputs: Sequence[Path | str] = ()) -> Path:
    """Write a PNG; InputError when matplotlib is missing or nothing was measured."""
    data = series(results)
    if not data:
        raise InputError("--plot: no measured configuration to plot")
    plt = _pyplot()
    n = len(data)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.9 * rows), squeeze=False)
    for ax, (panel, lines) in zip(axes.flat, sorted(data.items()), strict=False):
        for line, pts in sorted(lines.items()):
            xs = [p[0] for p in pts]
            p50 = [p[1] for p in pts]
            p90 = [p[2] for p in pts]
            (h,) = ax.plot(xs, p50, marker="o", label=f"{line} (p50)")
            ax.fill_between(xs, p50, p90, color=h.get_color(), alpha=0.18, linewidth=0)
            for x, y in zip(xs, p50, strict=True):
                ax.annotate(_fmt(y), (x, y), textcoords="offset points", xytext=(0, 6),
                            ha="center", fontsize=7, color=h.get_color())
        ax.set_xscale("log", base=2)
        ys = [v for pts in lines.values() for p in pts for v in p[1:]]
        if max(ys) / max(min(ys), 1e-12) > 20:  # a wide range: log scale, plain-number ticks
            from matplotlib.ticker import FuncFormatter

            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        else:
            ax.set_ylim(bottom=0, top=max(ys) * 1.15)
        batches = sorted({p[0] for pts in lines.values() for p in pts})
        ax.set_xticks(batches)
        ax.set_xticklabels([str(b) for b in batches])
        ax.set_xlabel("batch size")
        ax.set_ylabel("latency per call, ms (p50; band to p90)")
        ax.set_title(panel, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=110, format="png")
    plt.close(fig)
    return write_bytes_atomic(p, buf.getvalue(), "--plot picture", inputs=inputs)
