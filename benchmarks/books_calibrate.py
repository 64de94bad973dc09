"""Refit the matcher calibration on the dev split and check it for overfitting by cross-validation.

5-fold cross-validation grouped by shelf photo (all crops of one photo in the same fold): fit the
logistic model on 4 folds, predict the 5th with the per-image assignment, and compare the pooled
out-of-fold metrics with the shipped default calibration's in-sample metrics.

    python benchmarks/books_calibrate.py

Writes benchmarks/results/books_calibration.{json,md}. Needs ../shared/data/library.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from edgevl.bench import script as bench
from edgevl.books import BookMatcher, build_index, load_catalogue
from edgevl.books.calibration import DEFAULT_CALIBRATION, fit_calibration
from edgevl.books.catalogue import normalize, work_key
from edgevl.books.evaluate import metrics, predict_segments, read_segments
from edgevl.books.match import all_features, retrieve

PATHS = bench.bench_paths(__file__)
DATA = PATHS.library
OUT = PATHS.results / "books_calibration"


def headline(rows: dict[str, dict[str, float]]) -> str:
    cv = max((r for name, r in rows.items() if "CV" in name), key=lambda r: r["f1"])
    return (f"grouped CV F1 {cv['f1']:.4f} (best reject) vs shipped in-sample "
            f"{rows['shipped default (in-sample)']['f1']:.4f}")


def render(result: dict[str, Any]) -> str:
    rows = [[name, f"{r['recall']:.4f}", f"{r['precision']:.4f}", f"{r['f1']:.4f}", f"{r['reject_rate']:.3f}"]
            for name, r in result["rows"].items()]
    return bench.render_markdown(result, "Matcher calibration: in-sample vs cross-validated (dev split)", [
        bench.Table(["calibration", "recall", "precision", "F1", "reject rate"], rows),
    ], [f"{result['segments']} segments from {result['photos']} shelf photos, folds grouped by photo"])


def main() -> int:
    if not (DATA / "library_books.csv").is_file():
        print(f"skip: {DATA} not found")
        return 0
    load_before = bench.start()
    segs = read_segments(DATA / "annotations_dev.csv")
    index = build_index(load_catalogue(DATA / "library_books.csv"))
    matcher = BookMatcher(index)
    k = matcher.k
    queries = [normalize(s.ocr) for s in segs]
    cands = retrieve(index, queries, k)
    feats = all_features(index, queries, cands)
    keys = {int(w): work_key(index.titles[w], index.authors[w]) for w in np.unique(cands.works) if w >= 0}
    labels = np.array([[1.0 if w >= 0 and keys[int(w)] == s.truth else 0.0 for w in cands.works[i]]
                       for i, s in enumerate(segs)])
    photos = np.array(["_".join(s.image_name.split("_")[:2]) for s in segs])
    uniq = np.unique(photos)
    np.random.default_rng(0).shuffle(uniq)
    rows = {}
    default = metrics(segs, predict_segments(BookMatcher(index, DEFAULT_CALIBRATION), segs))
    rows["shipped default (in-sample)"] = default
    for reject in (-1.5, -1.0, -0.5):
        preds: list = [None] * len(segs)
        for fold in np.array_split(uniq, 5):
            test = np.where(np.isin(photos, fold))[0]
            train = np.where(~np.isin(photos, fold))[0]
            cal = fit_calibration(feats[train], cands.works[train], labels[train], k)
            cal["reject"] = reject
            fold_segs = [segs[i] for i in test]
            for i, p in zip(test, predict_segments(BookMatcher(index, cal), fold_segs), strict=True):
                preds[i] = p
        rows[f"5-fold grouped CV, reject {reject}"] = metrics(segs, preds)
    keep = ("recall", "precision", "f1", "reject_rate")
    kept = {name: {k2: r[k2] for k2 in keep} for name, r in rows.items()}
    result = bench.new_result("books_calibration", bench.command_line(PATHS.repo), load_before=load_before,
                              photos=len(uniq), segments=len(segs), headline=headline(kept), rows=kept)
    bench.write_result(result, OUT, render)
    return 0


if __name__ == "__main__":
    sys.exit(main())
