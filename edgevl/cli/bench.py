"""``edgevl bench``: latency of bundles (or a whole task over photos), and ``edgevl bench compare``.

``edgevl bench BUNDLE...`` is short for ``edgevl bench run BUNDLE...``: the bench group sends any
first argument that is not a subcommand to ``run``.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from edgevl.bench.compare import DEFAULT_FLOOR, compare_runs
from edgevl.bench.harness import BenchSettings, Progress, bench_bundles
from edgevl.bench.inputs import parse_dims
from edgevl.bench.report import (
    COMPARE_HEADERS,
    HEADERS,
    compare_markdown,
    compare_rows,
    notes,
    result_row,
    run_markdown,
)
from edgevl.bench.results import BenchRun, load_run, write_run
from edgevl.cli.app import app, emit_json
from edgevl.cli.checks import number_in
from edgevl.errors import BackendError, InputError


class _DefaultRunGroup(TyperGroup):
    """A group whose unknown first argument (a bundle path or an option) goes to ``run``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


bench_app = typer.Typer(
    cls=_DefaultRunGroup,
    help="Latency benchmarks: `edgevl bench BUNDLE...` (= bench run) and `edgevl bench compare A B`.",
    no_args_is_help=True,
)
app.add_typer(bench_app, name="bench")


def parse_batches(text: str) -> tuple[int, ...]:
    """``"1,8,32"`` → (1, 8, 32); InputError on anything else."""
    try:
        out = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        out = ()
    if not out or any(b < 1 for b in out):
        raise InputError(f"--batch {text!r}: expected comma-separated positive integers, e.g. 1,8,32")
    return tuple(dict.fromkeys(out))


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    """A rich progress bar on stderr (only on a terminal, so pipes and CI logs stay clean)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    with RichProgress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                      TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(label: str, frac: float) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=1.0)
            bar.update(tasks[label], completed=frac)

        yield update


def _print_table(headers: tuple[str, ...], rows: list[tuple[str, ...]], title: str, err: bool) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    t = Table(title=title, title_justify="left")
    for h in headers:
        t.add_column(h, overflow="fold")
    for r in rows:
        t.add_row(*(Text(c) for c in r))  # Text: no rich markup in paths or messages
    Console(stderr=err, width=160).print(t)


def _finish(run: BenchRun, json_out: str | None, plot: Path | None, markdown: Path | None) -> None:
    to_stdout = json_out == "-"
    title = "edgevl bench" + (" (interrupted: partial results)" if run.interrupted else "")
    _print_table(HEADERS, [result_row(r) for r in run.results], title, err=to_stdout)
    for line in notes(run.results):
        typer.echo(line, err=to_stdout)
    for warning in (run.machine.get("jetson") or {}).get("warnings") or []:
        typer.echo(f"warning: {warning}", err=True)
    if json_out and not to_stdout:
        write_run(run, json_out)
        typer.echo(f"wrote {json_out}", err=True)
    elif to_stdout:
        emit_json(run.to_dict())
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(run_markdown(run), encoding="utf-8")
        typer.echo(f"wrote {markdown}", err=True)
    if plot is not None and any(r.stats for r in run.results):
        from edgevl.bench.plot import plot_results

        plot_results(run.results, plot, title=run.machine.get("cpu"))
        typer.echo(f"wrote {plot}", err=True)


@bench_app.command("run")
def run_cmd(
    bundles: list[Path] = typer.Argument(None, help="bundle directories (task mode: one folder of photos)"),
    backend: str = typer.Option("ort-cpu", help="ort-cpu | openvino | auto | ort-cuda | ort-trt | tensorrt"),
    batch: str = typer.Option("1", help="batch sizes, comma-separated: 1,8,32"),
    threads: int = typer.Option(0, help="intra-op threads (0 = runtime default)",
                                callback=number_in(0, 1024)),
    warmup: int = typer.Option(5, help="untimed iterations before measuring each configuration"),
    iters: int | None = typer.Option(None, help="timed iterations per configuration"),
    seconds: float | None = typer.Option(None, help="time budget per configuration (default 2 s)",
                                         callback=number_in(0.0, lo_open=True)),
    repeats: int = typer.Option(1, help="interleaved repeats per configuration (noise estimate)"),
    inputs: Path | None = typer.Option(None, help="folder of real inputs: images or .npz feed files"),
    dim: list[str] = typer.Option([], help="symbolic dim override NAME=N (seq=64, height=640, width=480)"),
    role: list[str] = typer.Option([], help="only these models of a bundle (default: all)"),
    max_memory_gb: float | None = typer.Option(
        None, "--max-memory-gb", callback=number_in(0.0, lo_open=True),
        help="refuse a configuration whose memory estimate is over this (default: 75% of available)"),
    task: str | None = typer.Option(None, help="task mode: ocr | books, over a folder of photos"),
    catalogue: Path | None = typer.Option(None, help="--task books: the catalogue CSV to match against"),
    json_out: str | None = typer.Option(None, "--json", help="write the result file here ('-' = stdout)"),
    plot: Path | None = typer.Option(None, help="latency-vs-batch PNG (needs matplotlib: plot extra)"),
    markdown: Path | None = typer.Option(None, "--md", help="also write a Markdown table here"),
) -> None:
    """Measure latency (p50/p90/p99, mean, std), throughput, peak RSS and device memory."""
    settings = BenchSettings(
        backend=backend, batches=parse_batches(batch), threads=threads, warmup=warmup, iters=iters,
        seconds=seconds, repeats=repeats, dims=parse_dims(dim), inputs=inputs, roles=tuple(role),
        max_memory_gb=max_memory_gb,
    )
    if plot is not None:
        from edgevl.bench.plot import _pyplot

        _pyplot()  # fail before measuring when matplotlib is missing
    paths = list(bundles or [])
    # the command as it can be re-run, rebuilt from the parsed options (whatever the entry point)
    words = ["edgevl", "bench", *(["--task", task] if task else []), *map(str, paths), "--backend", backend,
             "--batch", batch, "--threads", str(threads), "--warmup", str(warmup)]
    words += ["--iters", str(iters)] if iters is not None else []
    words += ["--seconds", str(seconds)] if seconds is not None else []
    words += ["--repeats", str(repeats)] if repeats != 1 else []
    words += ["--inputs", str(inputs)] if inputs else []
    words += ["--catalogue", str(catalogue)] if catalogue else []
    for d in dim:
        words += ["--dim", d]
    for r in role:
        words += ["--role", r]
    command = shlex.join(words)
    try:
        with _progress(True) as progress:
            if task is not None:
                from edgevl.bench.tasks import bench_task

                if len(paths) != 1:
                    raise InputError(f"--task {task}: give one folder of photos, got {len(paths)} paths")
                run = bench_task(task, paths[0], settings, progress, command=command, catalogue=catalogue)
            else:
                if not paths:
                    raise InputError("give at least one bundle directory (or --task ocr PHOTOS_FOLDER)")
                run = bench_bundles(paths, settings, progress, command=command)
    except KeyboardInterrupt:
        typer.echo("edgevl bench: interrupted before anything was measured", err=True)
        raise typer.Exit(130) from None
    if run.results and all(r.status == "unavailable" for r in run.results):
        # the one backend asked for cannot run here: an error, not a table of dashes and exit 0
        raise BackendError(f"--backend {backend}: {run.results[0].reason}")
    if run.results and all(r.status in ("unavailable", "skipped") for r in run.results):
        first = next(r for r in run.results if r.status == "skipped")
        raise InputError(f"nothing could be measured: batch {first.batch}: {first.reason}")
    _finish(run, json_out, plot, markdown)
    if run.interrupted:
        raise typer.Exit(130)


@bench_app.command("compare")
def compare_cmd(
    a: Path = typer.Argument(..., help="reference result file (edgevl bench --json)"),
    b: Path = typer.Argument(..., help="result file to compare with A"),
    more_a: list[Path] = typer.Option([], help="another run of A (repeatable): between-run noise"),
    more_b: list[Path] = typer.Option([], help="another run of B (repeatable): between-run noise"),
    ignore: list[str] = typer.Option([], help="key field not to match on (e.g. precision, bundle)"),
    floor: float = typer.Option(DEFAULT_FLOOR, help="relative differences below this are noise"),
    as_json: bool = typer.Option(False, "--json", help="print the comparison as JSON"),
    markdown: Path | None = typer.Option(None, "--md", help="also write a Markdown table here"),
) -> None:
    """Ratios B/A of median latency per configuration, with a noise interval."""
    ra, rb = load_run(a), load_run(b)
    rep = compare_runs(ra, rb, ignore=ignore, floor=floor, more_a=[load_run(p) for p in more_a],
                       more_b=[load_run(p) for p in more_b])
    if not rep.rows:
        raise InputError(
            f"{a} and {b} share no measured configuration (only in A: {[dict(k) for k in rep.only_a][:3]}, "
            f"only in B: {[dict(k) for k in rep.only_b][:3]}); try --ignore precision or --ignore bundle"
        )
    if markdown is not None:
        markdown.write_text(compare_markdown(rep, str(a), str(b)), encoding="utf-8")
    if as_json:
        emit_json({"a": str(a), "b": str(b), **rep.to_dict()})
        return
    for w in rep.warnings:
        typer.echo(f"warning: {w}", err=True)
    _print_table(COMPARE_HEADERS, compare_rows(rep), f"B/A (A = {a.name}, B = {b.name})", err=False)
    for k in rep.only_a:
        typer.echo(f"only in A: {json.dumps(dict(k))}")
    for k in rep.only_b:
        typer.echo(f"only in B: {json.dumps(dict(k))}")
