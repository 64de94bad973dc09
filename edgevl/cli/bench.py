"""``edgevl bench``: latency of bundles (or a whole task over photos), and ``edgevl bench compare``.

``edgevl bench BUNDLE...`` is short for ``edgevl bench run BUNDLE...``: the bench group sends any
first argument that is not a subcommand to ``run``.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from edgevl.bench.compare import DEFAULT_FLOOR, busy, compare_runs
from edgevl.bench.harness import (
    DEFAULT_MAX_SECONDS,
    LIMIT_REASON,
    MAX_ITERS,
    MAX_REPEATS,
    MAX_WARMUP,
    BenchSettings,
    Progress,
    bench_bundles,
)
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
from edgevl.cli.checks import check_outputs, flag, number_in, threads_option
from edgevl.errors import BackendError, InputError
from edgevl.safeio import term_safe, write_text_atomic


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
        t.add_row(*(Text(term_safe(c)) for c in r))  # Text: no rich markup in paths or messages
    Console(stderr=err, width=160).print(t)


def _bundle_files(paths: list[Path], limit: int = 10_000) -> list[Path]:
    """The files inside the benchmarked folders (bundles, photos): an output is never one of them."""
    out: list[Path] = []
    for p in paths:
        if p.is_file():
            out.append(p)
            continue
        for root, _, files in os.walk(p):
            out += [Path(root) / f for f in files]
            if len(out) > limit:
                return out
    return out


def load_warning(run: BenchRun) -> str | None:
    """The busy-machine warning ``bench compare`` prints, for one run."""
    load = busy(dict(run.machine))
    if load is None:
        return None
    return (f"the machine was busy with other work (1-minute load {load:.1f} per core before the run): "
            "timings can be slower and noisier than on an idle machine; repeat the run or measure on an "
            "idle machine")


def _finish(run: BenchRun, as_json: bool, out: Path | None, plot: Path | None, markdown: Path | None,
            inputs: list[Path]) -> None:
    title = "edgevl bench" + (" (interrupted: partial results)" if run.interrupted else "")
    _print_table(HEADERS, [result_row(r) for r in run.results], title, err=as_json)
    for line in notes(run.results):
        typer.echo(term_safe(line), err=as_json)
    warning = load_warning(run)
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    for w in (run.machine.get("jetson") or {}).get("warnings") or []:
        typer.echo(f"warning: {term_safe(str(w))}", err=True)
    if out is not None:
        write_run(run, out, inputs=inputs)
        typer.echo(f"wrote {term_safe(str(out))}", err=True)
    if as_json:
        emit_json(run.to_dict())
    if markdown is not None:
        write_text_atomic(markdown, run_markdown(run), "--md file", inputs=inputs)
        typer.echo(f"wrote {term_safe(str(markdown))}", err=True)
    if plot is not None and any(r.stats for r in run.results):
        from edgevl.bench.plot import plot_results

        plot_results(run.results, plot, title=run.machine.get("cpu"), inputs=inputs)
        typer.echo(f"wrote {term_safe(str(plot))}", err=True)


def _old_json_form(paths: list[Path], as_json: bool) -> list[Path]:
    """``--json PATH`` (edgevl < 0.x) now parses as the flag plus PATH among the bundles: say what
    to use instead. ``--json -`` (stdout) is what the flag does now, so the ``-`` is dropped."""
    if not as_json:
        return paths
    kept = [p for p in paths if str(p) != "-"]
    if len(kept) != len(paths):
        typer.echo("edgevl: note: `--json -` is now just `--json` (JSON on stdout)", err=True)
    for p in kept:
        if p.suffix.lower() == ".json" and not p.is_dir():
            raise InputError(f"--json is a flag now (the result as JSON on stdout); write the result file "
                             f"with --out {p}")
    return kept


@bench_app.command("run")
def run_cmd(
    bundles: list[Path] = typer.Argument(None, help="bundle directories (task mode: one folder of photos)"),
    backend: str = typer.Option("ort-cpu", help="ort-cpu | ort-cuda | ort-trt | tensorrt"),
    batch: str = typer.Option("1", help="batch sizes, comma-separated: 1,8,32"),
    threads: int = threads_option(),
    warmup: int = typer.Option(5, help=f"untimed iterations before measuring each configuration "
                               f"(0..{MAX_WARMUP})", callback=number_in(0, MAX_WARMUP)),
    iters: int | None = typer.Option(None, help=f"timed iterations per configuration (1..{MAX_ITERS})",
                                     callback=number_in(1, MAX_ITERS)),
    seconds: float | None = typer.Option(None, help="time budget per configuration (default 2 s)",
                                         callback=number_in(0.0, lo_open=True)),
    repeats: int = typer.Option(1, help=f"interleaved repeats per configuration (noise estimate; "
                                f"1..{MAX_REPEATS})", callback=number_in(1, MAX_REPEATS)),
    max_seconds: float = typer.Option(
        DEFAULT_MAX_SECONDS, "--max-seconds", callback=number_in(0.0, 7 * 86400.0, lo_open=True),
        help="wall-time limit of the whole run: past it the run stops, keeps what it measured, and exits "
             "with code 2"),
    inputs: Path | None = typer.Option(None, help="folder of real inputs: images or .npz feed files"),
    dim: list[str] = typer.Option([], help="symbolic dim override NAME=N (seq=64, height=640, width=480); "
                                  "must be an input's dim, within the manifest's range"),
    role: list[str] = typer.Option([], help="only these models of a bundle (default: all)"),
    max_memory_gb: float | None = typer.Option(
        None, "--max-memory-gb", callback=number_in(0.0, lo_open=True),
        help="refuse a configuration whose memory estimate is over this (default: 75% of available)"),
    task: str | None = typer.Option(None, help="task mode: ocr | books, over a folder of photos"),
    catalogue: Path | None = typer.Option(None, help="--task books: the catalogue CSV to match against"),
    as_json: bool = flag("--json", help="print the result file's JSON on stdout (the table goes to stderr)"),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="write the result file (JSON, for bench compare) here"),
    plot: Path | None = typer.Option(None, help="latency-vs-batch PNG (needs matplotlib: plot extra)"),
    markdown: Path | None = typer.Option(None, "--md", help="also write a Markdown table here"),
) -> None:
    """Measure latency (p50/p90/p99, mean, std), throughput, peak RSS and device memory.

    Outputs (--out, --md, --plot) are checked before anything is measured and written whole.
    """
    paths = _old_json_form(list(bundles or []), as_json)
    settings = BenchSettings(
        backend=backend, batches=parse_batches(batch), threads=threads, warmup=warmup, iters=iters,
        seconds=seconds, repeats=repeats, dims=parse_dims(dim), inputs=inputs, roles=tuple(role),
        max_memory_gb=max_memory_gb, max_seconds=max_seconds,
    )
    read = [*paths, *([inputs] if inputs else []), *([catalogue] if catalogue else [])]
    files = _bundle_files(read)
    check_outputs([(out, "--out result file"), (markdown, "--md file"), (plot, "--plot picture")], files)
    if plot is not None:
        from edgevl.bench.plot import _pyplot

        _pyplot()  # fail before measuring when matplotlib is missing
    # the command as it can be re-run, rebuilt from the parsed options (whatever the entry point)
    words = ["edgevl", "bench", *(["--task", task] if task else []), *map(str, paths), "--backend", backend,
             "--batch", batch, "--threads", str(threads), "--warmup", str(warmup)]
    words += ["--iters", str(iters)] if iters is not None else []
    words += ["--seconds", str(seconds)] if seconds is not None else []
    words += ["--repeats", str(repeats)] if repeats != 1 else []
    words += ["--max-seconds", f"{max_seconds:g}"] if max_seconds != DEFAULT_MAX_SECONDS else []
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
    timed_out = run.interrupted and settings.past_deadline()
    if timed_out and not any(r.stats for r in run.results):
        raise InputError(f"{LIMIT_REASON} ({max_seconds:g} s) before anything was measured")
    _finish(run, as_json, out, plot, markdown, files)
    if timed_out:
        raise InputError(f"{LIMIT_REASON} ({max_seconds:g} s): the results above are partial")
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
    as_json: bool = flag("--json", help="print the comparison as JSON"),
    markdown: Path | None = typer.Option(None, "--md", help="also write a Markdown table here"),
) -> None:
    """Ratios B/A of median latency per configuration, with a noise interval."""
    files = [a, b, *more_a, *more_b]
    check_outputs([(markdown, "--md file")], files)
    ra, rb = load_run(a), load_run(b)
    rep = compare_runs(ra, rb, ignore=ignore, floor=floor, more_a=[load_run(p) for p in more_a],
                       more_b=[load_run(p) for p in more_b])
    if not rep.rows:
        raise InputError(
            f"{a} and {b} share no measured configuration (only in A: {[dict(k) for k in rep.only_a][:3]}, "
            f"only in B: {[dict(k) for k in rep.only_b][:3]}); try --ignore precision or --ignore bundle"
        )
    if markdown is not None:
        write_text_atomic(markdown, compare_markdown(rep, str(a), str(b)), "--md file", inputs=files)
    if as_json:
        emit_json({"a": str(a), "b": str(b), **rep.to_dict()})
        return
    for w in rep.warnings:
        typer.echo(f"warning: {w}", err=True)
    title = f"B/A (A = {term_safe(a.name)}, B = {term_safe(b.name)})"
    _print_table(COMPARE_HEADERS, compare_rows(rep), title, err=False)
    for k in rep.only_a:
        typer.echo(f"only in A: {term_safe(json.dumps(dict(k), ensure_ascii=False))}")
    for k in rep.only_b:
        typer.echo(f"only in B: {term_safe(json.dumps(dict(k), ensure_ascii=False))}")
