"""``edgevl quantize BUNDLE --calibration DATA --out BUNDLE_INT8``: guarded static int8 (QDQ)."""

from __future__ import annotations

from pathlib import Path

import typer

from edgevl.cli.app import app, emit_json
from edgevl.cli.checks import flag, number_in
from edgevl.errors import BackendError
from edgevl.tasks.registry import task_spec
from edgevl.tasks.spec import QuantDefaults

#: the defaults of a task the registry does not know
OTHER_DEFAULTS = QuantDefaults()


def family_defaults(task: str) -> QuantDefaults:
    """--samples, --holdout and --outlier-ratio for a bundle of ``task`` when the user gives none (the
    task spec's ``quantize_defaults``)."""
    spec = task_spec(task)
    return OTHER_DEFAULTS if spec is None else spec.quantize_defaults


def _quiet_onnxruntime() -> None:
    """ONNX Runtime's own logger off below ERROR: its warnings (raw ANSI colour codes, one per node
    the quantiser's sessions cannot fuse) are noise beside quantize's report. Sessions made later
    in this process inherit the default logger's severity."""
    import logging

    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # 0 verbose, 1 info, 2 warning, 3 error, 4 fatal
    logging.getLogger("onnxruntime").setLevel(logging.ERROR)  # onnxruntime.quantization's Python logs


@app.command()
def quantize(
    bundle: Path = typer.Argument(..., help="fp32 bundle directory"),
    calibration: Path = typer.Option(..., "--calibration", "-c", help=(
        "calibration data: a text file (one sentence a line) for text encoders; a folder of images for "
        "CLIP and the detector (a .txt in it calibrates CLIP's text tower); a folder of word crops "
        "(optional labels.tsv: file<TAB>word) for the recogniser")),
    out: Path = typer.Option(..., "--out", "-o", help="int8 bundle directory to write"),
    method: str = typer.Option("minmax", "--method", help="calibration: minmax, percentile or entropy"),
    samples: int | None = typer.Option(None, "--samples", callback=number_in(1, 1_000_000), help=(
        "items used for calibration (default: 1200 for sentence encoders, 128 otherwise)")),
    holdout: int | None = typer.Option(None, "--holdout", callback=number_in(1, 1_000_000), help=(
        "other items the guard compares int8 with fp32 on (default: 500 for sentence encoders, "
        "64 otherwise)")),
    min_cosine: float = typer.Option(0.99, "--min-cosine", help="worst-case embedding cosine",
                                     callback=number_in(-1.0, 1.0)),
    min_mean_cosine: float = typer.Option(0.995, "--min-mean-cosine", help="mean embedding cosine",
                                          callback=number_in(-1.0, 1.0)),
    min_top1: float = typer.Option(0.95, "--min-top1-agreement", help="CLIP zero-shot top-1 agreement",
                                   callback=number_in(0.0, 1.0)),
    max_accuracy_drop: float = typer.Option(0.01, "--max-accuracy-drop", callback=number_in(0.0, 1.0),
                                            help="recogniser word-accuracy drop (0.01 = 1 point)"),
    min_agreement: float = typer.Option(0.95, "--min-agreement", callback=number_in(0.0, 1.0),
                                        help="outputs identical to fp32 (unlabelled crops, orientation)"),
    min_box_agreement: float = typer.Option(0.95, "--min-box-agreement", help="detector box F1 vs fp32",
                                            callback=number_in(0.0, 1.0)),
    smooth_alpha: float = typer.Option(0.9, "--smooth-alpha", help="SmoothQuant strength (0 = off)",
                                       callback=number_in(0.0, 1.0)),
    max_float: float = typer.Option(0.5, "--max-float", help="largest share of nodes the sweep keeps float",
                                    callback=number_in(0.0, 1.0)),
    outlier_ratio: float | None = typer.Option(None, "--outlier-ratio", callback=number_in(0.0, 1e6), help=(
        "compute in float the input channels of a down-projection MatMul (e.g. a transformer's FFN output) "
        "whose calibrated range is at least this many times the median channel's, beside the int8 MatMul "
        "(default: 6 for sentence encoders such as all-MiniLM-L6-v2, 0 = off otherwise; needs "
        "--smooth-alpha)")),
    keep_float: list[str] = typer.Option([], "--keep-float", help=(
        "node-name pattern (shell-style, e.g. '*/attn/out/MatMul') kept in float whatever the guard says; "
        "repeatable; a pattern that matches no node is an error")),
    as_json: bool = flag("--json", help="print the quantisation report as JSON"),
) -> None:
    """Quantise a bundle to int8 QDQ ONNX, keeping sensitive nodes in float until the guard passes."""
    try:  # build side: onnx and onnxruntime.quantization are imported only when the command runs
        from edgevl_export.quantize import (  # type: ignore[import-not-found, unused-ignore]
            GuardThresholds,
            format_report,
            quantize_bundle,
        )
    except ImportError as e:
        raise BackendError("edgevl quantize needs the export extra "
                           f"(pip install 'edgevl[export]'): {e}") from e

    guard = GuardThresholds(min_cosine=min_cosine, min_mean_cosine=min_mean_cosine,
                            min_top1_agreement=min_top1, max_accuracy_drop=max_accuracy_drop,
                            min_agreement=min_agreement,
                            min_box_agreement=min_box_agreement)
    _quiet_onnxruntime()
    log = (lambda _m: None) if as_json else (lambda m: typer.echo(m, err=True))
    from edgevl.bundle import load_bundle

    task = load_bundle(bundle).manifest.task
    family = family_defaults(task)
    samples = family.samples if samples is None else samples
    holdout = family.holdout if holdout is None else holdout
    outlier_ratio = family.outlier_ratio if outlier_ratio is None else outlier_ratio
    used = f"--samples {samples} --holdout {holdout} --outlier-ratio {outlier_ratio:g}"
    b = quantize_bundle(bundle, calibration, out, method=method, samples=samples, holdout=holdout,
                        guard=guard, smooth_alpha=smooth_alpha or None, max_float_fraction=max_float,
                        outlier_ratio=outlier_ratio or None, keep_float=tuple(keep_float), log=log)
    report = dict(b.manifest.extra["quantization"])
    if as_json:
        emit_json({"bundle": str(b.path), "precision": b.manifest.precision, "quantization": report})
        return
    typer.echo(format_report(report))
    typer.echo(f"wrote {b.path} (int8; {used}, unset ones by the {task} defaults)")
