"""``edgevl books index|eval``: build the catalogue index; evaluate matching on OCR segments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from edgevl.books.catalogue import Columns, load_catalogue
from edgevl.books.index import load_or_build
from edgevl.books.matcher import BookMatcher
from edgevl.cli.app import app, emit_json

books_app = typer.Typer(help="Book catalogue: build the matching index, evaluate matching on OCR segments.",
                        no_args_is_help=True)
app.add_typer(books_app, name="books")

_CATALOGUE = typer.Option(..., "--catalogue", "-c", help="catalogue CSV (title, author[, tag, isbn, series])")
_CACHE = typer.Option(None, "--cache-dir", help="index cache folder (default ~/.cache/edgevl/books or $EDGEVL_CACHE)")


def columns_option(title: str, author: str, tag: str) -> Columns:
    return Columns(title=title, author=author, tag=tag)


@books_app.command("index")
def index_cmd(
    catalogue: Path = _CATALOGUE,
    cache_dir: Path | None = _CACHE,
    rebuild: bool = typer.Option(False, "--rebuild", help="rebuild even when a cached index exists"),
    calibrate_on: Path | None = typer.Option(
        None, "--calibrate", help="labelled segments CSV (library-dataset format) to fit the calibration on"),
    min_recall: float = typer.Option(0.0, "--min-recall", help="with --calibrate: pick the reject threshold "
                                     "with the best F1 among those reaching this recall"),
    title_col: str = typer.Option("title", "--title-col"),
    author_col: str = typer.Option("author", "--author-col"),
    tag_col: str = typer.Option("tag", "--tag-col"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Build (or load) the n-gram index of a catalogue and save it, keyed by the catalogue's sha256."""
    cat = load_catalogue(catalogue, columns_option(title_col, author_col, tag_col))
    idx, folder, built = load_or_build(cat, cache_dir, rebuild=rebuild)
    out: dict[str, Any] = {"catalogue": str(catalogue), "encoding": cat.encoding, "books": len(cat),
                           "works": len(idx), "index": str(folder), "built": built,
                           "build_seconds": round(idx.build_seconds, 3)}
    if calibrate_on is not None:
        from edgevl.books.evaluate import calibrate, read_segments

        matcher = BookMatcher(idx)
        cal = calibrate(matcher, read_segments(calibrate_on), min_recall=min_recall)
        cal["source"] = f"fitted on {calibrate_on}"
        idx.calibration = cal
        idx.save(folder)
        out["calibration"] = cal
    if as_json:
        emit_json(out)
        return
    typer.echo(f"{catalogue}: {len(cat)} books ({cat.encoding}), {len(idx)} distinct works")
    typer.echo(f"index {'built' if built else 'loaded'}: {folder}" + (
        f" in {idx.build_seconds:.2f} s" if built else ""))
    if calibrate_on is not None:
        typer.echo(f"calibration fitted on {calibrate_on}: reject log-odds {out['calibration']['reject']}")


@books_app.command("eval")
def eval_cmd(
    catalogue: Path = _CATALOGUE,
    segments: Path = typer.Option(..., "--segments", "-s", help="segments CSV: image_name, mask_id, ocr "
                                  "[, title, author, not_book, not_in_db, segmentation_merged_books]"),
    predictions_out: Path | None = typer.Option(None, "--predictions-out", "-o",
                                                help="write image_name, mask_id, pred_title, pred_author, score"),
    cache_dir: Path | None = _CACHE,
    title_col: str = typer.Option("title", "--title-col"),
    author_col: str = typer.Option("author", "--author-col"),
    tag_col: str = typer.Option("tag", "--tag-col"),
    as_json: bool = typer.Option(False, "--json", help="print the metrics as JSON"),
) -> None:
    """Match OCR segments (per image, one-to-one) and print recall, precision, F1 and reject rate."""
    from edgevl.books.evaluate import evaluate, read_segments, write_predictions

    cat = load_catalogue(catalogue, columns_option(title_col, author_col, tag_col))
    idx, _, _ = load_or_build(cat, cache_dir)
    segs = read_segments(segments)
    preds, res = evaluate(BookMatcher(idx), segs)
    if predictions_out is not None:
        write_predictions(predictions_out, segs, preds)
        res["predictions"] = str(predictions_out)
    if as_json:
        emit_json(res)
        return
    typer.echo(f"{len(segs)} segments, {res['predicted']} matched, {res['ms_per_segment']:.3f} ms/segment")
    if "recall" in res:
        typer.echo(f"recall {res['recall']:.4f}  precision {res['precision']:.4f}  F1 {res['f1']:.4f}  "
                   f"reject rate {res['reject_rate']:.4f}")
    if predictions_out is not None:
        typer.echo(f"predictions: {predictions_out}")
