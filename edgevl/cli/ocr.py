"""``edgevl ocr IMAGE...``: read the text in photos (or, with ``--crops``, in word crops)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import typer

from edgevl.backends import BACKENDS, EngineOptions
from edgevl.cli.app import app, emit_json
from edgevl.cli.checks import number_in
from edgevl.errors import ImageError, InputError
from edgevl.models.ppocr import DEFAULT_MODEL, MODELS, ocr_model
from edgevl.tasks.ocr import OcrPipeline, Reading, TextDetector, TextLine, TextRecognizer
from edgevl.vision.io import Image, read_image


def draw_lines(image: Image, lines: Sequence[TextLine]) -> Image:
    """The photo with each line's quad drawn and its text written above it (ASCII; others as '?')."""
    out = image.copy()
    scale = max(0.5, max(image.shape[:2]) / 1500)
    thick = max(1, round(scale * 2))
    for ln in lines:
        pts = np.round(np.asarray(ln.quad)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(out, [pts], True, (0, 200, 0), thick)
        label = ln.text.encode("ascii", "replace").decode()
        x, y = int(pts[:, 0, 0].min()), int(pts[:, 0, 1].min())
        org = (x, max(int(14 * scale), y - thick * 2))
        cv2.putText(out, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (255, 255, 255), thick + 2)
        cv2.putText(out, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (200, 0, 0), thick)
    return out


def _draw_path(out: Path, index: int, count: int) -> Path:
    return out if count == 1 else out.with_name(f"{out.stem}_{index}{out.suffix or '.png'}")


@app.command()
def ocr(
    images: list[Path] = typer.Argument(..., help="image files (photos; word crops with --crops)"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
    draw: Path | None = typer.Option(None, "--draw", help="write the photo with boxes and text to "
                                     "this PNG (OUT_0.png, OUT_1.png… for several images)"),
    crops: bool = typer.Option(False, "--crops", help="STR mode: each image is one word crop "
                               "(the detector is not loaded)"),
    model: str | None = typer.Option(None, "--model",
                                     help=f"OCR model: {', '.join(MODELS)} (default {DEFAULT_MODEL})"),
    threads: int = typer.Option(0, "--threads", callback=number_in(0, 1024),
                                help="intra-op threads (0 = runtime default)"),
    backend: str = typer.Option("ort-cpu", "--backend", help=f"one of {', '.join(BACKENDS)}"),
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
    """Read the text in IMAGE(s): one line per detected text box, in reading order."""
    if draw is not None and crops:
        raise InputError("--draw needs photos; it cannot be used with --crops")
    if draw is not None and draw.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".webp"):
        raise InputError(f"{draw}: --draw expects an image file name such as out.png")
    name = ocr_model(model).name  # an unknown model fails before any image is read
    opts = EngineOptions(backend=backend, threads=threads)
    imgs = [read_image(p) for p in images]  # fail on the first bad image before loading models
    if cascade_below is not None and rec_cascade is None:
        raise InputError("--cascade-below needs --rec-cascade")
    recognizer = TextRecognizer(options=opts, rec=rec) if rec is not None else None
    if crops:
        readings: Sequence[Reading]
        if vertical == "none":
            readings = (recognizer or TextRecognizer(options=opts, model=name)).read(imgs)
        else:
            pipe = OcrPipeline(recognizer=recognizer, options=opts, vertical=vertical, model=name,
                               rec_cascade=rec_cascade, cascade_below=cascade_below)
            readings = pipe.read_crops(imgs)
        if as_json:
            emit_json({"crops": [{"path": str(p), **r.to_dict()} for p, r in zip(images, readings,
                                                                                  strict=True)]})
            return
        for p, r in zip(images, readings, strict=True):
            typer.echo(f"{p}\t{r.text}\t{r.score:.3f}")
        return
    if vertical not in ("auto", "both"):
        raise InputError(f"--vertical must be 'auto' or 'both' for photos, got {vertical!r}")
    pipe = OcrPipeline(TextDetector(options=opts, limit_side=limit_side, model=name), options=opts,
                       recognizer=recognizer, vertical=vertical, min_score=min_score, model=name,
                       rec_cascade=rec_cascade, cascade_below=cascade_below)
    results = []
    for i, (p, img) in enumerate(zip(images, imgs, strict=True)):
        lines = pipe(img)
        t = lines.timings
        drawn = None
        if draw is not None:
            drawn = _draw_path(draw, i, len(images))
            if drawn.parent and not drawn.parent.exists():
                raise InputError(f"{drawn.parent}: folder for --draw does not exist")
            ok = cv2.imwrite(str(drawn), draw_lines(img, lines))
            if not ok:
                raise ImageError(f"{drawn}: could not write the drawing")
        results.append({"path": str(p), "model": name, "width": img.shape[1], "height": img.shape[0],
                        "lines": [ln.to_dict() for ln in lines],
                        "timings": {"det": round(t.det, 4), "cls": round(t.cls, 4),
                                    "rec": round(t.rec, 4), "total": round(t.total, 4),
                                    "boxes": t.boxes, "reads": t.reads, "cascaded": t.cascaded},
                        **({"draw": str(drawn)} if drawn else {})})
        if not as_json:
            if len(images) > 1:
                typer.echo(f"== {p}")
            for ln in lines:
                typer.echo(f"{ln.score:.2f}  {ln.text}")
            if drawn:
                typer.echo(f"(drawn to {drawn})")
    if as_json:
        emit_json({"images": results})
