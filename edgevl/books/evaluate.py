"""Matching-only evaluation on segments in the library-dataset format.

Segments CSV: ``image_name, mask_id, ocr`` and, optionally, the truth ``title, author`` (empty when
the segment is not a catalogued book) with the flags ``not_book, not_in_db,
segmentation_merged_books``. Metrics exactly as in the dataset README: a prediction is correct when
its normalised title and author equal the truth's.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgevl.books.catalogue import read_csv_rows, work_key
from edgevl.books.matcher import BookMatch, BookMatcher
from edgevl.errors import CatalogueError
from edgevl.safeio import atomic_output, csv_cell

_FLAGS = ("not_book", "not_in_db", "segmentation_merged_books")


@dataclass(frozen=True)
class Segment:
    image_name: str
    mask_id: str
    ocr: str
    truth: tuple[str, str] | None = None  # normalised (title, author); None = truth is "no match"
    has_truth: bool = False
    section: str = ""  # the library section of the photo, when the CSV has one


def read_segments(path: Path | str) -> list[Segment]:
    rows, _, _ = read_csv_rows(path, ["image_name", "mask_id", "ocr"])
    if not rows:
        raise CatalogueError(f"{path}: no segments (header only)")
    has_truth = "title" in rows[0] and "author" in rows[0]
    segs = []
    for r in rows:
        truth = None
        if has_truth:
            flagged = any(r.get(f, "").strip().lower() in ("true", "1", "yes") for f in _FLAGS)
            if r["title"].strip() and not flagged:
                truth = work_key(r["title"], r["author"])
        segs.append(Segment(r["image_name"], r["mask_id"], r["ocr"], truth, has_truth, r.get("section", "")))
    return segs


def group_by_image(segments: Sequence[Segment]) -> list[list[int]]:
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(segments):
        groups.setdefault(s.image_name, []).append(i)
    return list(groups.values())


def predict_segments(matcher: BookMatcher, segments: Sequence[Segment]) -> list[BookMatch]:
    groups = group_by_image(segments)
    results = matcher.match_groups([[segments[i].ocr for i in g] for g in groups])
    out: list[BookMatch | None] = [None] * len(segments)
    for g, res in zip(groups, results, strict=True):
        for i, m in zip(g, res, strict=True):
            out[i] = m
    return [m for m in out if m is not None]


def metrics(segments: Sequence[Segment], preds: Sequence[BookMatch]) -> dict[str, Any]:
    """recall, precision, F1 and reject rate (dataset README definitions)."""
    n_pos = n_neg = correct = n_pred = rejected = 0
    for s, p in zip(segments, preds, strict=True):
        if p.matched:
            n_pred += 1
        if s.truth is None:
            n_neg += 1
            rejected += 0 if p.matched else 1
        else:
            n_pos += 1
            if p.matched and work_key(p.title, p.author) == s.truth:
                correct += 1
    recall = correct / n_pos if n_pos else 0.0
    precision = correct / n_pred if n_pred else 0.0
    f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
    return {"segments": len(segments), "catalogued": n_pos, "no_match_truth": n_neg, "predicted": n_pred,
            "correct": correct, "recall": recall, "precision": precision, "f1": f1,
            "reject_rate": rejected / n_neg if n_neg else 0.0}


def write_predictions(path: Path | str, segments: Sequence[Segment], preds: Sequence[BookMatch], *,
                      inputs: Iterable[Path | str | None] = ()) -> None:
    """The predictions CSV, written whole or not at all (never over one of ``inputs``); text cells
    through :func:`edgevl.safeio.csv_cell`, so a title such as ``=HYPERLINK(…)`` is not a formula."""
    with atomic_output(path, "predictions file", inputs=[i for i in inputs if i is not None],
                       newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_name", "mask_id", "pred_title", "pred_author", "score"])
        for s, m in zip(segments, preds, strict=True):
            text = [csv_cell(v) for v in (s.image_name, s.mask_id, m.title, m.author)]
            w.writerow([*text, f"{m.score:.4f}"])


def evaluate(matcher: BookMatcher, segments: Sequence[Segment]) -> tuple[list[BookMatch], dict[str, Any]]:
    """Predict every segment (per-image assignment); metrics when truth is present, and timing."""
    t0 = time.perf_counter()
    preds = predict_segments(matcher, segments)
    dt = time.perf_counter() - t0
    out: dict[str, Any] = {"ms_per_segment": 1000 * dt / max(1, len(segments))}
    if segments and segments[0].has_truth:
        out.update(metrics(segments, preds))
    else:
        out.update({"segments": len(segments), "predicted": sum(p.matched for p in preds)})
    return preds, out
