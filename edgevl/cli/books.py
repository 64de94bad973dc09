"""``edgevl books index|eval``: build the catalogue index; evaluate matching on OCR segments."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import typer

from edgevl.books.calibration import Calibration, load_calibration, save_calibration
from edgevl.books.catalogue import Columns, load_catalogue
from edgevl.books.index import load_or_build
from edgevl.books.matcher import BookMatcher
from edgevl.cli.app import app, emit_json
from edgevl.cli.checks import (
    BatchErrors,
    check_cache_dir,
    check_image_name,
    check_outputs,
    flag,
    number_in,
)
from edgevl.errors import ImageError, InputError
from edgevl.safeio import atomic_output, csv_cell, term_safe

books_app = typer.Typer(help="Book catalogue: build the matching index, evaluate matching on OCR segments.",
                        no_args_is_help=True)
app.add_typer(books_app, name="books")

_CATALOGUE = typer.Option(..., "--catalogue", "-c", help="catalogue CSV (title, author[, tag, isbn, series])")
_CACHE = typer.Option(None, "--cache-dir",
                      help="index cache folder (default $EDGEVL_HOME/books, ~/.cache/edgevl/books)")
_TITLE_COL = typer.Option("title", "--title-col", help="catalogue column holding the title")
_AUTHOR_COL = typer.Option("author", "--author-col", help="catalogue column holding the author")
_TAG_COL = typer.Option("tag", "--tag-col", help="catalogue column holding the call-number tag")

_CALIBRATION = typer.Option(None, "--calibration",
                             help="matcher calibration JSON written by `books index --calibrate "
                                  "--calibration-out` (default: the shipped calibration)")
_MIN_CONF = typer.Option(None, "--min-confidence",
                         help="reject a spine whose best match is less likely than this to be correct "
                              "(a calibrated probability; default: the calibration's operating point)")


def _calibration(path: Path | None) -> Calibration | None:
    """The calibration a user passed with ``--calibration`` (None: the matcher's default)."""
    return None if path is None else load_calibration(path)


def columns_option(title: str, author: str, tag: str) -> Columns:
    return Columns(title=title, author=author, tag=tag)


@books_app.command("index")
def index_cmd(
    catalogue: Path = _CATALOGUE,
    cache_dir: Path | None = _CACHE,
    rebuild: bool = flag("--rebuild", help="rebuild even when a cached index exists"),
    calibrate_on: Path | None = typer.Option(
        None, "--calibrate", help="labelled segments CSV (library-dataset format) to fit the calibration on"),
    min_recall: float = typer.Option(0.0, "--min-recall", callback=number_in(0.0, 1.0),
                                     help="with --calibrate: pick the confidence "
                                     "threshold with the best out-of-fold F1 among those reaching "
                                     "this recall"),
    calibration_out: Path | None = typer.Option(
        None, "--calibration-out", help="with --calibrate: write the fitted calibration JSON here (required; "
        "the shared index cache is never changed; use it with --calibration)"),
    title_col: str = _TITLE_COL,
    author_col: str = _AUTHOR_COL,
    tag_col: str = _TAG_COL,
    as_json: bool = flag("--json", help="print the result as JSON"),
) -> None:
    """Build (or load) the n-gram index of a catalogue and save it, keyed by the catalogue's sha256."""
    if calibrate_on is not None and calibration_out is None:
        # a fitted calibration never goes silently into the shared cache, where every later run would use it
        raise InputError("--calibrate needs --calibration-out PATH (the fitted calibration is written there, "
                         "never into the shared index cache; pass it to books eval / match-books with "
                         "--calibration)")
    if calibration_out is not None and calibrate_on is None:
        raise InputError("--calibration-out is only used with --calibrate SEGMENTS")
    check_outputs([(calibration_out, "--calibration-out file")],
                  [catalogue, *([calibrate_on] if calibrate_on else [])])
    check_cache_dir(cache_dir)
    cat = load_catalogue(catalogue, columns_option(title_col, author_col, tag_col))
    idx, folder, built = load_or_build(cat, cache_dir, rebuild=rebuild)
    out: dict[str, Any] = {"catalogue": str(catalogue), "encoding": cat.encoding, "books": len(cat),
                           "works": len(idx), "index": str(folder), "built": built,
                           "build_seconds": round(idx.build_seconds, 3)}
    if calibrate_on is not None:
        from edgevl.books.crossval import calibrate
        from edgevl.books.evaluate import read_segments

        cal, point = calibrate(idx, read_segments(calibrate_on), min_recall=min_recall,
                               source=f"fitted on {calibrate_on.name}")
        assert calibration_out is not None
        save_calibration(cal, calibration_out, inputs=(catalogue, calibrate_on))
        out["calibration"] = str(calibration_out)
        out["out_of_fold"] = point
    if as_json:
        emit_json(out)
        return
    typer.echo(f"{term_safe(str(catalogue))}: {len(cat)} books ({cat.encoding}), {len(idx)} distinct works")
    typer.echo(f"index {'built' if built else 'loaded'}: {term_safe(str(folder))}" + (
        f" in {idx.build_seconds:.2f} s" if built else ""))
    if calibrate_on is not None:
        p = out["out_of_fold"]
        typer.echo(f"calibration fitted on {term_safe(str(calibrate_on))}: "
                   f"min confidence {p['min_confidence']:.3f} "
                   f"(out of fold: recall {p['recall']:.4f}, precision {p['precision']:.4f}, "
                   f"F1 {p['f1']:.4f}), written to {term_safe(str(calibration_out))}")


@books_app.command("eval")
def eval_cmd(
    catalogue: Path = _CATALOGUE,
    segments: Path = typer.Option(..., "--segments", "-s", help="segments CSV: image_name, mask_id, ocr "
                                  "[, title, author, not_book, not_in_db, segmentation_merged_books]"),
    predictions_out: Path | None = typer.Option(
        None, "--predictions-out", "-o", help="write image_name, mask_id, pred_title, pred_author, score"),
    cache_dir: Path | None = _CACHE,
    calibration: Path | None = _CALIBRATION,
    min_confidence: float | None = _MIN_CONF,
    title_col: str = _TITLE_COL,
    author_col: str = _AUTHOR_COL,
    tag_col: str = _TAG_COL,
    as_json: bool = flag("--json", help="print the metrics as JSON"),
    unlabelled_shelves: bool = typer.Option(
        False, "--unlabelled-shelves/--labelled-only",
        help="an image whose segments show no library label is matched with the calibration for "
             "unlabelled shelves (default here: off, the library's own segments)"),
) -> None:
    """Match OCR segments (per image, one-to-one) and print recall, precision, F1 and reject rate."""
    from edgevl.books.evaluate import evaluate, read_segments, write_predictions

    check_outputs([(predictions_out, "--predictions-out file")],
                  [catalogue, segments, *([calibration] if calibration else [])])
    check_cache_dir(cache_dir)

    matcher = BookMatcher.from_catalogue(catalogue, cache_dir, columns_option(title_col, author_col, tag_col),
                                         min_confidence=min_confidence,
                                         calibration=_calibration(calibration),
                                         unlabelled_shelves=unlabelled_shelves)
    segs = read_segments(segments)
    preds, res = evaluate(matcher, segs)
    if predictions_out is not None:
        write_predictions(predictions_out, segs, preds, inputs=(catalogue, segments))
        res["predictions"] = str(predictions_out)
    if as_json:
        emit_json(res)
        return
    typer.echo(f"{len(segs)} segments, {res['predicted']} matched, {res['ms_per_segment']:.3f} ms/segment")
    if "recall" in res:
        typer.echo(f"recall {res['recall']:.4f}  precision {res['precision']:.4f}  F1 {res['f1']:.4f}  "
                   f"reject rate {res['reject_rate']:.4f}")
    if predictions_out is not None:
        typer.echo(f"predictions: {term_safe(str(predictions_out))}")


def _draw_paths(draw: Path | None, photos: list[Path]) -> list[Path | None]:
    if draw is None:
        return [None] * len(photos)
    if len(photos) == 1:
        return [draw]
    return [draw.with_name(f"{draw.stem}_{p.stem}{draw.suffix}") for p in photos]


@app.command("match-books")
def match_books_cmd(
    photos: list[Path] = typer.Argument(..., help="shelf photos (JPEG, PNG, BMP, WebP, TIFF)"),
    catalogue: Path = _CATALOGUE,
    cache_dir: Path | None = _CACHE,
    csv_out: Path | None = typer.Option(None, "--csv", help="write one row per spine to this CSV (cells "
                                        "starting with = + - @ get a leading ' for spreadsheets)"),
    draw: Path | None = typer.Option(None, "--draw", help="write the photo with outlined spines and titles "
                                     "to this .png/.jpg/.webp (several photos: OUT_<photo>.png)"),
    draw_max_side: int = typer.Option(1600, "--draw-max-side", callback=number_in(64, 32_767),
                                      help="downscale drawings to this longer side"),
    calibration: Path | None = _CALIBRATION,
    min_confidence: float | None = _MIN_CONF,
    title_col: str = _TITLE_COL,
    author_col: str = _AUTHOR_COL,
    tag_col: str = _TAG_COL,
    as_json: bool = flag("--json", help="print the spines as JSON"),
    limit_side: int = typer.Option(
        0, "--limit-side", callback=number_in(64, allow=(0,)),
        help="OCR detector input: longest side in pixels (default 0 = full resolution, tiled: reads the "
             "small spine text; 1792 = edgevl ocr's faster default, fewer books found; docs/books.md)"),
    unlabelled_shelves: bool = typer.Option(
        True, "--unlabelled-shelves/--labelled-only",
        help="a photo whose spines show no library label (a home shelf, another library) is matched "
             "with the calibration for unlabelled shelves (default: on; --labelled-only: as any photo)"),
) -> None:
    """Match every spine on shelf photos to a catalogue: OCR, spine grouping, per-photo assignment.

    Photos are decoded one at a time; one that cannot be read is reported as one `edgevl: error:` line,
    the others are still matched, and the exit code is then 2. Outputs are checked before any work:
    never one of the inputs, never a folder or device; they are written whole or not at all.
    """
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table
    from rich.text import Text

    from edgevl.books.shelf import ShelfMatcher, ShelfResult, draw_spines, shelf_ocr
    from edgevl.cli.ocr import _notice
    from edgevl.models import ppocr
    from edgevl.vision.draw import write_picture
    from edgevl.vision.io import read_image

    check_image_name(draw, "--draw")
    inputs = [*photos, catalogue, *([calibration] if calibration else [])]
    draws = _draw_paths(draw, photos)
    check_outputs([(csv_out, "--csv file"), *((d, "--draw picture") for d in draws)], inputs)
    check_cache_dir(cache_dir)
    ppocr.BUILD_NOTICE = _notice
    shelf = ShelfMatcher(
        BookMatcher.from_catalogue(catalogue, cache_dir, columns_option(title_col, author_col, tag_col),
                                   min_confidence=min_confidence,
                                   calibration=_calibration(calibration),
                                   unlabelled_shelves=unlabelled_shelves),
        shelf_ocr(limit_side=limit_side))
    results: list[ShelfResult] = []
    errors = BatchErrors()
    err = Console(stderr=True)
    live = len(photos) > 1 and sys.stderr.isatty()  # a progress bar on a terminal only: logs stay clean
    with Progress(console=err, transient=True, disable=not live) as progress:
        task = progress.add_task("matching shelves", total=len(photos))
        for photo, out in zip(photos, draws, strict=True):
            try:
                image = read_image(photo)  # one decoded photo in memory at a time
            except ImageError as e:
                errors.report(e, progress.console if live else None)
                progress.advance(task)
                continue
            res = shelf(image)
            res = dataclasses.replace(res, source=str(photo))
            results.append(res)
            if out is not None:
                write_picture(draw_spines(image, res.spines, draw_max_side, rows=res.rows, signs=res.signs),
                              out, inputs, "--draw picture")
            del image
            progress.advance(task)
    if csv_out is not None:
        _write_spines_csv(csv_out, results, inputs)
    if as_json:
        emit_json([r.to_dict() for r in results])
        errors.finish()
        return
    for r in results:
        table = Table(title=Text(f"{term_safe(r.source)}: {len(r.spines)} spines, {r.matched} matched "
                                 f"(OCR {r.seconds.get('ocr', 0):.1f} s, matching "
                                 f"{r.seconds.get('match', 0):.2f} s)"))
        for col in ("#", "title", "author", "tag", "score", "OCR"):
            table.add_column(col)
        for s in r.spines:
            m = s.match
            cells = (str(s.index), m.title or "-", m.author, m.tag, f"{m.score:.2f}", s.text[:60])
            table.add_row(*(Text(term_safe(c)) for c in cells))  # Text: no rich markup from titles
        Console().print(table)
        Console().print(Text(term_safe(r.found)))
    errors.finish()


def _write_spines_csv(path: Path, results: list[Any], inputs: list[Path]) -> None:
    """One row per spine; every text cell through csv_cell (no formula runs in a spreadsheet)."""
    import csv

    with atomic_output(path, "--csv file", inputs=inputs, newline="") as f:
        w = csv.writer(f)
        w.writerow(["photo", "spine", "ocr", "title", "author", "tag", "score", "polygon"])
        for r in results:
            for s in r.spines:
                poly = " ".join(f"{x:.0f},{y:.0f}" for x, y in s.polygon)
                text = [csv_cell(v) for v in (r.source, s.text, s.match.title, s.match.author, s.match.tag)]
                w.writerow([text[0], s.index, *text[1:], f"{s.match.score:.4f}", poly])  # numbers as they are
