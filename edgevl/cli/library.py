"""``edgevl library run``: thousands of shelf photos against a catalogue, on a local process pool or
on Ray, resumable (docs/scale.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from edgevl.cli.app import app, emit_json
from edgevl.cli.books import _AUTHOR_COL, _CACHE, _CATALOGUE, _TAG_COL, _TITLE_COL, columns_option
from edgevl.cli.checks import flag

library_app = typer.Typer(help="Library-scale runs: many shelf photos on a process pool or a Ray cluster.",
                          no_args_is_help=True)
app.add_typer(library_app, name="library")


def looks_like_address(token: str) -> bool:
    """A Ray address after ``--ray``: ``auto``, ``host:port`` or ``ray://...`` (never a photo path)."""
    return token == "auto" or "://" in token or (
        ":" in token and token.rsplit(":", 1)[1].isdigit() and "/" not in token)


def rewrite_ray_option(argv: list[str]) -> list[str]:
    """``library run ... --ray ADDRESS`` -> ``--ray --ray-address ADDRESS`` (typer has no options with an
    optional value); ``--ray`` followed by anything else stays a plain switch."""
    if argv[:1] != ["library"]:
        return argv
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--ray="):
            out += ["--ray", "--ray-address", a.split("=", 1)[1]]
        elif a == "--ray" and i + 1 < len(argv) and looks_like_address(argv[i + 1]):
            out += ["--ray", "--ray-address", argv[i + 1]]
            i += 1
        else:
            out.append(a)
        i += 1
    return out


def _progress_factory(err: Any) -> tuple[Any, Callable[[int, int], Callable[[dict[str, Any]], None]]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
                        TimeRemainingColumn(), console=err, transient=True)

    def start(todo: int, skipped: int) -> Callable[[dict[str, Any]], None]:
        if skipped:
            err.print(f"resuming: {skipped} photos already done, {todo} to go")
        task = progress.add_task("photos", total=todo, rate="")
        counts = {"spines": 0, "failed": 0}

        def on_record(rec: dict[str, Any]) -> None:
            counts["spines"] += len(rec["spines"])
            counts["failed"] += rec["status"] != "ok"
            progress.advance(task)
            t = progress.tasks[task]
            elapsed = t.elapsed or 0.0
            rate = t.completed / elapsed if elapsed > 0 else 0.0
            progress.update(task, rate=f"{rate:.2f} photos/s, {counts['spines']} spines, "
                            f"{counts['failed']} failed")

        return on_record

    return progress, start


@library_app.command("run")
def run_cmd(
    photos: list[Path] = typer.Argument(None, help="shelf photos (JPEG/PNG); or --from-list"),
    from_list: Path | None = typer.Option(None, "--from-list", help="a file with one photo path per line"),
    catalogue: Path = _CATALOGUE,
    out: Path = typer.Option(..., "--out", "-o", help="results folder (created; an existing one is resumed)"),
    workers: int = typer.Option(0, "--workers", "-w", help="local worker processes (0 = one per CPU core)"),
    threads: int = typer.Option(0, "--threads", help="ONNX Runtime threads per worker, at most 1024 "
                                "(0 = cores / workers; with --ray: --num-cpus)"),
    backend: str = typer.Option("ort-cpu", "--backend",
                                help="OCR backend: ort-cpu, ort-cuda, ort-trt, tensorrt"),
    model: str | None = typer.Option(None, "--model", help="OCR model (as `edgevl ocr --model`; default: "
                                     "edgevl's default)"),
    ray: bool = typer.Option(False, "--ray", help="run on Ray: a local Ray, or the cluster at --ray ADDRESS "
                             "('auto', host:port, ray://host:10001)"),
    ray_address: str | None = typer.Option(None, "--ray-address",
                                           help="the Ray cluster (also: --ray ADDRESS)"),
    actors: int = typer.Option(0, "--actors",
                               help="with --ray: number of actors (0 = as the cluster allows)"),
    num_cpus: float = typer.Option(1.0, "--num-cpus", help="with --ray: CPUs per actor"),
    num_gpus: float = typer.Option(0.0, "--num-gpus",
                                   help="with --ray: GPUs per actor (use --backend ort-cuda)"),
    shared_fs: bool = flag("--shared-fs", help="with --ray: actors read the photo paths "
                           "themselves (default: the driver sends each photo's bytes)"),
    cache_dir: Path | None = _CACHE,
    title_col: str = _TITLE_COL,
    author_col: str = _AUTHOR_COL,
    tag_col: str = _TAG_COL,
    as_json: bool = flag("--json", help="print the summary as JSON"),
) -> None:
    """OCR and match every photo, committing each photo's rows as it completes; rerun to resume."""
    import os

    from rich.console import Console

    from edgevl.library import RunConfig, read_photo_list, run_library
    from edgevl.library.lifecycle import RunInterrupted
    from edgevl.library.run import check_config
    from edgevl.library.store import utf8_safe
    from edgevl.safeio import term_safe

    def show(path: Path | str) -> str:  # a name that is not UTF-8 (or holds control characters)
        return term_safe(os.fsencode(path).decode("utf-8", "backslashreplace"))

    cfg = RunConfig(catalogue=catalogue, out=out, workers=workers, threads=threads, backend=backend,
                    model=model, cache_dir=cache_dir, columns=columns_option(title_col, author_col, tag_col),
                    ray=ray or ray_address is not None, ray_address=ray_address,
                    actors=actors, num_cpus=num_cpus, num_gpus=num_gpus, send_bytes=not shared_fs)
    check_config(cfg)  # bad numbers or backend: one line before anything is read
    if cfg.ray:
        from edgevl.library.ray_runner import import_ray

        import_ray()  # without the scale extra: one line, exit 2
    paths = read_photo_list(photos or [], from_list)
    err = Console(stderr=True)

    def warn(text: str) -> None:
        print(f"edgevl: warning: {term_safe(os.fsencode(text).decode('utf-8', 'backslashreplace'))}",
              file=sys.stderr)

    progress, start = _progress_factory(err)
    try:
        with progress:
            summary = run_library(paths, cfg, start, warn)
    except KeyboardInterrupt as e:
        signum = e.signum if isinstance(e, RunInterrupted) else 2
        print(f"edgevl: interrupted: finished photos are kept in {show(out)}; run the same command again to "
              "resume", file=sys.stderr)
        raise typer.Exit(128 + signum) from None
    d = utf8_safe(summary.to_dict())
    if as_json:
        emit_json(d)
        return
    t = summary.total
    typer.echo(f"{show(out)}: {t.photos} photos, {t.spines} spines, {t.matched} matched, "
               f"{t.rejected} rejected, {t.failures} failures, {t.no_spines} without spines")
    typer.echo(f"this run: {summary.processed} photos in {summary.seconds:.1f} s "
               f"({summary.photos_per_s:.2f} photos/s, {summary.backend}, {summary.workers} workers), "
               f"{summary.skipped} already done, {summary.failed_now} failed")
    typer.echo("tables: " + ", ".join(show(v) for k, v in summary.tables.items() if k != "log"))
