"""``edgevl ocr IMAGE...``: read the text in photos (or, with ``--crops``, in word crops)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer

from edgevl.backends import BACKENDS, EngineOptions, OpenVinoOptions, require_backend
from edgevl.cli.app import app, emit_json
from edgevl.cli.checks import (
    BatchErrors,
    check_image_name,
    check_outputs,
    flag,
    number_in,
    threads_option,
)
from edgevl.errors import ImageError, InputError
from edgevl.models import ppocr
from edgevl.models.ppocr import DEFAULT_MODEL, MODELS, OcrModel, ocr_model
from edgevl.models.recognizers import check_rec
from edgevl.safeio import term_safe
from edgevl.tasks.ocr import OcrPipeline, Reading, TextDetector, TextRecognizer
from edgevl.vision.draw import draw_lines, write_picture
from edgevl.vision.io import Image, read_image


def _draw_path(out: Path, index: int, count: int) -> Path:
    return out if count == 1 else out.with_name(f"{out.stem}_{index}{out.suffix or '.png'}")


def _notice(text: str) -> None:
    typer.echo(f"edgevl: {text}", err=True)


@app.command()
def ocr(
    images: list[Path] = typer.Argument(..., help="image files (photos; word crops with --crops): "
                                        "PNG, JPEG, BMP, WebP, TIFF"),
    as_json: bool = flag("--json", help="print the result as JSON"),
    draw: Path | None = typer.Option(None, "--draw", help="write the photo with boxes and text to this "
                                     "image file (.png, .jpg, .bmp or .webp; OUT_0.png, OUT_1.png… for "
                                     "several images); never one of the inputs"),
    crops: bool = flag("--crops", help="STR mode: each image is one word crop (the detector is not loaded)"),
    model: str | None = typer.Option(None, "--model",
                                     help=f"OCR model: {', '.join(MODELS)} (default {DEFAULT_MODEL})"),
    threads: int = threads_option(),
    backend: str = typer.Option("auto", "--backend",
                                help=f"auto (the fastest installed: openvino, else ort-cpu) or one of "
                                f"{', '.join(BACKENDS)}"),
    precision: str = typer.Option("auto", "--precision",
                                  help="OpenVINO inference precision: auto (bf16 on CPUs with native "
                                  "bf16, else f32; docs/ocr.md), f32 (the models' numbers), bf16, f16"),
    limit_side: int | None = typer.Option(None, "--limit-side", callback=number_in(64, allow=(0,)),
                                          help="detector input: longest side in pixels "
                                          "(default 1792; 0 = full resolution, tiled: slower, reads "
                                          "more small text)"),
    min_score: float = typer.Option(0.5, "--min-score", callback=number_in(0.0, 1.0),
                                    help="lines whose reading confidence is below this are not listed"),
    vertical: str = typer.Option("auto", "--vertical",
                                 help="tall boxes: 'auto' (classifier decides, both if unsure), 'both'; "
                                 "with --crops also 'none' (read crops as they are)"),
    rec: str | None = typer.Option(None, "--rec", help="recogniser: a model name (ppocrv6 default, "
                                   "ppocrv5, ppocrv4, svtrv2) or a text-recognition bundle folder"),
    rec_cascade: str | None = typer.Option(None, "--rec-cascade",
                                           help="re-read uncertain lines with this stronger recogniser "
                                           "(a name such as svtrv2, or a bundle folder)"),
    cascade_below: float | None = typer.Option(None, "--cascade-below", callback=number_in(0.0, 1.0),
                                               help="with --rec-cascade: re-read readings whose confidence "
                                               "is below this (default: 0.9 crops, 0.6 photos; docs/ocr.md)"),
) -> None:
    """Read the text in IMAGE(s): one line per detected text box, in reading order.

    Images are decoded one at a time. An image that cannot be read is reported as one `edgevl: error:`
    line and the others are still read; the exit code is then 2.
    """
    if draw is not None and crops:
        raise InputError("--draw needs photos; it cannot be used with --crops")
    check_image_name(draw, "--draw")
    if vertical not in (("auto", "both", "none") if crops else ("auto", "both")):
        allowed = "'auto', 'both' or 'none' with --crops" if crops else "'auto' or 'both' for photos"
        raise InputError(f"--vertical must be {allowed}, got {vertical!r}")
    family = ocr_model(model)  # resolved once (an unknown name fails before any image is read)
    name = family.name
    if precision not in ("auto", "f32", "bf16", "f16"):
        raise InputError(f"--precision must be auto, f32, bf16 or f16, got {precision!r}")
    require_backend(backend)  # a backend that cannot run here fails before any bundle is built
    draws = [None if draw is None else _draw_path(draw, i, len(images)) for i in range(len(images))]
    check_outputs([(d, "--draw picture") for d in draws], images)
    ppocr.BUILD_NOTICE = _notice
    opts = EngineOptions(backend=backend, threads=threads, openvino=OpenVinoOptions(precision=precision))
    if cascade_below is not None and rec_cascade is None:
        raise InputError("--cascade-below needs --rec-cascade")
    for spec, opt in ((rec, "--rec"), (rec_cascade, "--rec-cascade")):
        if spec is not None:
            check_rec(spec, opt)  # an unknown name fails before any image is read
    errors = BatchErrors()
    if crops:
        _read_crops(images, opts, family, vertical, as_json, errors, rec, rec_cascade, cascade_below)
        errors.finish()
        return
    pipe: OcrPipeline | None = None  # built at the first readable image: a batch of bad files loads nothing
    results = []
    for p, drawn in zip(images, draws, strict=True):
        try:
            img = read_image(p)  # one decoded photo in memory at a time
        except ImageError as e:
            errors.report(e)
            continue
        if pipe is None:
            pipe = OcrPipeline(TextDetector(options=opts, limit_side=limit_side, model=family), options=opts,
                               recognizer=None if rec is None else TextRecognizer(options=opts, rec=rec),
                               vertical=vertical, min_score=min_score, model=family,
                               rec_cascade=rec_cascade, cascade_below=cascade_below)
        lines = pipe(img)
        t = lines.timings
        if drawn is not None:
            write_picture(draw_lines(img, lines), drawn, images, "--draw picture")
        results.append({"path": str(p), "model": name, "width": img.shape[1], "height": img.shape[0],
                        "lines": [ln.to_dict() for ln in lines],
                        "timings": {"det": round(t.det, 4), "cls": round(t.cls, 4),
                                    "rec": round(t.rec, 4), "total": round(t.total, 4),
                                    "boxes": t.boxes, "reads": t.reads, "cascaded": t.cascaded},
                        **({"draw": str(drawn)} if drawn else {})})
        del img
        if not as_json:
            if len(images) > 1:
                typer.echo(f"== {term_safe(str(p))}")
            for ln in lines:
                typer.echo(f"{ln.score:.2f}  {term_safe(ln.text)}")
            if drawn:
                typer.echo(f"(drawn to {term_safe(str(drawn))})")
    if as_json:
        emit_json({"images": results, **({"failed": errors.failed} if errors.failed else {})})
    errors.finish()


def _read_crops(images: list[Path], opts: EngineOptions, family: OcrModel, vertical: str, as_json: bool,
                errors: BatchErrors, rec: str | None = None, rec_cascade: str | None = None,
                cascade_below: float | None = None) -> None:
    """--crops: word crops are small, so the readable ones are decoded, then read in one batch."""
    good: list[Path] = []
    imgs: list[Image] = []
    for p in images:
        try:
            imgs.append(read_image(p))
            good.append(p)
        except ImageError as e:
            errors.report(e)
    if not imgs:
        return
    readings: Sequence[Reading]
    recognizer = TextRecognizer(options=opts, rec=rec) if rec is not None else None
    if vertical == "none":
        readings = (recognizer or TextRecognizer(options=opts, model=family)).read(imgs)
    else:
        readings = OcrPipeline(recognizer=recognizer, options=opts, vertical=vertical, model=family,
                               rec_cascade=rec_cascade, cascade_below=cascade_below).read_crops(imgs)
    if as_json:
        emit_json({"crops": [{"path": str(p), **r.to_dict()} for p, r in zip(good, readings, strict=True)]})
        return
    for p, r in zip(good, readings, strict=True):
        typer.echo(f"{term_safe(str(p))}\t{term_safe(r.text)}\t{r.score:.3f}")
