"""Choose the matcher's features, weights and reject threshold by grouped cross-validation only.

Every number here is out of fold: folds grouped by shelf photo (5 folds, 2 different shuffles) and,
separately, by library section (5 folds of whole sections: photos of a kind of book the model has
never seen). For each candidate feature set the two-stage logistic model is fitted on 4 folds and
scored on the 5th, with its probability map fitted on the other folds' out-of-fold scores, at the
operating point (min confidence) with the best pooled out-of-fold F1.

Selection rule (the simpler model wins unless the data say otherwise): starting from the v1
feature set, a librarian feature is kept only when adding it raises F1 in the photo-grouped folds by
more than two standard errors of the per-fold paired differences AND does not lower F1 in the
section-grouped folds; then each v1 feature but the four core ones (n-gram cosine, title, author and
tag evidence) is dropped when removing it does not lower F1 by more than one standard error in
either scheme. The kept set is refitted on all segments and written to
``edgevl/data/books_calibration.json`` (the shipped calibration) with the precision-recall curve.

    flock /tmp/edgevl-bench.lock python benchmarks/books_calibrate.py [--no-write]

Writes benchmarks/results/books_calibration.{json,md} (+ books_pr_curve.png with the plot extra).
Needs ../shared/data/library (skips otherwise).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgevl.bench import script as bench
from edgevl.books import build_index, load_catalogue
from edgevl.books.calibration import _LEGACY_FEATURES, SHIPPED
from edgevl.books.crossval import (
    GRID,
    CrossValidation,
    Labelled,
    choose_operating_point,
    cross_validate,
    fit_final,
    fold_metrics,
    grouped_folds,
    operating_points,
    photo_of,
    summary,
)
from edgevl.books.evaluate import read_segments
from edgevl.books.index import CatalogueIndex

PATHS = bench.bench_paths(__file__)
DATA = PATHS.library
OUT = PATHS.results / "books_calibration"

V1 = tuple(_LEGACY_FEATURES)
LIBRARIAN: dict[str, tuple[str, ...]] = {
    "shelf class (call-number class vs the photo's other spines)": ("shelf_class",),
    "surname read as a whole word": ("surname_exact",),
    "surname at either end of the spine": ("surname_at_end",),
    "series / volume numbers": ("number_match", "number_conflict"),
    "language of title vs OCR": ("lang_conflict",),
}
COARSE = tuple(round(x, 3) for x in np.arange(0.1, 0.91, 0.05))


def section_of(segs: Sequence[Any], photos: Sequence[str]) -> list[str]:
    """The section of each segment's photo (every photo holds one section in the dev split)."""
    by_photo: dict[str, str] = {}
    for s, p in zip(segs, photos, strict=True):
        by_photo.setdefault(p, s.section)
    return [by_photo[p] for p in photos]


def evaluate_set(
    index: CatalogueIndex, data: Labelled, feats: tuple[str, ...], schemes: dict[str, list[list[np.ndarray]]]
) -> dict[str, Any]:
    """Per scheme: per-fold F1 at each repeat's best coarse operating point, pooled metrics."""
    out: dict[str, Any] = {}
    for name, repeats in schemes.items():
        f1s: list[float] = []
        pooled = []
        for folds in repeats:
            cv = cross_validate(index, data, feats, folds)
            pt = choose_operating_point(operating_points(index, data, cv, COARSE))
            p, per_fold = fold_metrics(index, data, cv, pt["min_confidence"])
            f1s += [f["f1"] for f in per_fold]
            pooled.append({**p, "min_confidence": pt["min_confidence"]})
        out[name] = {
            "fold_f1": f1s,
            "pooled": pooled,
            "f1_mean": float(np.mean(f1s)),
            "f1_std": float(np.std(f1s, ddof=1)),
        }
    return out


def paired(a: dict[str, Any], b: dict[str, Any], scheme: str) -> tuple[float, float]:
    """Mean and standard error of the per-fold F1 differences b - a (same folds)."""
    d = np.array(b[scheme]["fold_f1"]) - np.array(a[scheme]["fold_f1"])
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def reliability(cv: CrossValidation, bins: int = 10) -> list[dict[str, float]]:
    """Out-of-fold predicted probability vs observed share of correct matches, by probability bin."""
    p = cv.probabilities()
    ok = np.isfinite(cv.assigned_logit)
    rows = []
    edges = np.linspace(0, 1, bins + 1)
    for lo, hi in itertools.pairwise(edges):
        m = ok & (p >= lo) & ((p < hi) | (hi == 1.0))
        if m.sum():
            rows.append(
                {
                    "bin": f"{lo:.1f}-{hi:.1f}",
                    "n": int(m.sum()),
                    "mean_p": float(p[m].mean()),
                    "correct": float(cv.assigned_correct[m].mean()),
                }
            )
    return rows


def plot_pr(points: list[dict[str, float]], chosen: dict[str, float], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([p["recall"] for p in points], [p["precision"] for p in points], ".-", label="out of fold")
    ax.plot(
        [chosen["recall"]],
        [chosen["precision"]],
        "r*",
        ms=14,
        label=f"operating point p >= {chosen['min_confidence']:.3f}",
    )
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Book matching, dev split, 5-fold CV grouped by photo")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--no-write", action="store_true", help="do not overwrite the shipped calibration")
    args = ap.parse_args(argv)
    if not (args.data / "library_books.csv").is_file():
        print(f"skip: {args.data} has no library_books.csv (the library dataset lives in ../shared)")
        return 0
    t_start = time.perf_counter()
    load_before = bench.start()
    segs = read_segments(args.data / "annotations_dev.csv")
    index = build_index(load_catalogue(args.data / "library_books.csv"))
    data = Labelled.build(index, segs)
    photos = [photo_of(s.image_name) for s in segs]
    sections = section_of(segs, photos)
    schemes = {
        "photo": [grouped_folds(photos, 5, seed) for seed in (0, 1)],
        "section": [grouped_folds(sections, 5, 0)],
    }
    log: list[dict[str, Any]] = []

    def run(name: str, feats: tuple[str, ...]) -> dict[str, Any]:
        r = evaluate_set(index, data, feats, schemes)
        log.append(
            {
                "variant": name,
                "features": list(feats),
                **{s: {k: r[s][k] for k in ("f1_mean", "f1_std")} for s in schemes},
            }
        )
        print(
            f"{name}: photo F1 {r['photo']['f1_mean']:.4f} +- {r['photo']['f1_std']:.4f}, section F1 "
            f"{r['section']['f1_mean']:.4f} +- {r['section']['f1_std']:.4f}",
            flush=True,
        )
        return r

    base = run("v1 (19 features)", V1)
    current, cur_res = V1, base
    decisions = []
    # 1. librarian evidence, each measured against the current set
    for label, feats in LIBRARIAN.items():
        trial = current + feats
        res = run(f"+ {label}", trial)
        gain, se = paired(cur_res, res, "photo")
        gain_s, se_s = paired(cur_res, res, "section")
        keep = gain > 2 * se and gain_s >= 0
        decisions.append(
            {
                "change": f"add {label}",
                "features": list(feats),
                "photo_gain": gain,
                "photo_se": se,
                "section_gain": gain_s,
                "section_se": se_s,
                "kept": keep,
            }
        )
        if keep:
            current, cur_res = trial, res
    # 2. simpler: drop each v1 product / weak feature when that costs nothing
    core = ("cos", "title_cov", "author_cov", "tag")
    for feat in [f for f in reversed(V1) if f not in core]:
        trial = tuple(f for f in current if f != feat)
        res = run(f"- {feat}", trial)
        gain, se = paired(cur_res, res, "photo")
        gain_s, se_s = paired(cur_res, res, "section")
        drop = gain > -se and gain_s > -se_s
        decisions.append(
            {
                "change": f"drop {feat}",
                "features": [feat],
                "photo_gain": gain,
                "photo_se": se,
                "section_gain": gain_s,
                "section_se": se_s,
                "kept": drop,
            }
        )
        if drop:
            current, cur_res = trial, res

    # the chosen set: operating point, PR curve, fold spread, reliability (photo folds, seed 0)
    cv = cross_validate(index, data, current, schemes["photo"][0])
    points = operating_points(index, data, cv, GRID)
    chosen = choose_operating_point(points)
    pooled, per_fold = fold_metrics(index, data, cv, chosen["min_confidence"])
    cv_s = cross_validate(index, data, current, schemes["section"][0])
    pooled_s, per_fold_s = fold_metrics(index, data, cv_s, chosen["min_confidence"])
    cv_v1 = cross_validate(index, data, V1, schemes["photo"][0])
    chosen_v1 = choose_operating_point(operating_points(index, data, cv_v1, GRID))
    pooled_v1, per_fold_v1 = fold_metrics(index, data, cv_v1, chosen_v1["min_confidence"])
    cal = fit_final(
        data,
        current,
        cv,
        chosen["min_confidence"],
        "fitted on the library dev split (annotations_dev.csv); features, weights and "
        "min_confidence chosen by 5-fold cross-validation grouped by shelf photo "
        "(benchmarks/books_calibrate.py)",
    )
    if not args.no_write:
        (PATHS.repo / "edgevl" / "data" / SHIPPED).write_text(json.dumps(cal.to_dict(), indent=1) + "\n")
    rel = reliability(cv)
    has_plot = plot_pr(points, chosen, PATHS.results / "books_pr_curve.png")
    result = bench.new_result(
        "books_calibration",
        bench.command_line(PATHS.repo, locked=True),
        load_before=load_before,
        segments=len(segs),
        photos=len(set(photos)),
        sections=len(set(sections)),
        seconds=time.perf_counter() - t_start,
        selection_log=log,
        decisions=decisions,
        features=list(current),
        chosen={
            "min_confidence": chosen["min_confidence"],
            "pooled": pooled,
            "folds": per_fold,
            "spread": summary(per_fold),
        },
        chosen_section_folds={"pooled": pooled_s, "folds": per_fold_s, "spread": summary(per_fold_s)},
        v1={
            "min_confidence": chosen_v1["min_confidence"],
            "pooled": pooled_v1,
            "spread": summary(per_fold_v1),
        },
        pr_curve=points,
        reliability=rel,
        calibration=cal.to_dict(),
        pr_plot=has_plot,
        target="grouped-CV F1 >= 0.96 and recall >= 0.965",
        headline=f"out-of-fold F1 {pooled['f1']:.4f} ± {summary(per_fold)['f1']['std']:.4f}, "
        f"recall {pooled['recall']:.4f} at p >= {chosen['min_confidence']}",
    )
    bench.write_result(result, OUT, render)
    return 0


def _pm(s: dict[str, dict[str, float]], key: str) -> str:
    v = s[key]
    return f"{v['mean']:.4f} ± {v['std']:.4f} ({v['min']:.4f}–{v['max']:.4f})"


def render(r: Any) -> str:
    c, cs, v1 = r["chosen"], r["chosen_section_folds"], r["v1"]
    n = len(r["features"])

    def row(name: str, folds: str, conf: float, pooled: Any, spread: Any) -> list[str]:
        return [
            name,
            folds,
            f"{conf:.3f}",
            f"{pooled['recall']:.4f}",
            f"{pooled['precision']:.4f}",
            f"{pooled['f1']:.4f}",
            _pm(spread, "f1"),
            _pm(spread, "recall"),
        ]

    blocks: list[bench.Block] = [
        "Every number is out of fold. Spread = mean ± standard deviation (min–max) over the 5 folds.",
        "",
        "## Result",
        "",
        bench.Table(
            [
                "model",
                "folds grouped by",
                "min confidence",
                "pooled recall",
                "pooled precision",
                "pooled F1",
                "fold F1",
                "fold recall",
            ],
            [
                row("v1 features (19)", "photo", v1["min_confidence"], v1["pooled"], v1["spread"]),
                row(f"chosen ({n})", "photo", c["min_confidence"], c["pooled"], c["spread"]),
                row(f"chosen ({n})", "section", c["min_confidence"], cs["pooled"], cs["spread"]),
            ],
        ),
        f"Target: {r['target']}.",
        "",
        f"Chosen features: {', '.join(r['features'])}.",
        "",
        "## Selection (paired per-fold F1 differences; photo: 2 shuffles x 5 folds, section: 5 folds)",
        "",
    ]
    rows = []
    for d in r["decisions"]:
        add = d["change"].startswith("add")
        verdict = ("kept" if add else "dropped") if d["kept"] else ("not added" if add else "kept")
        rows.append(
            [
                d["change"],
                f"{d['photo_gain']:+.4f} ± {d['photo_se']:.4f}",
                f"{d['section_gain']:+.4f} ± {d['section_se']:.4f}",
                verdict,
            ]
        )
    blocks += [
        bench.Table(["change", "photo ΔF1 ± s.e.", "section ΔF1 ± s.e.", "decision"], rows),
        "## Precision-recall curve (out of fold, photo folds) and the operating point",
        "",
    ]
    if r.get("pr_plot"):
        blocks += ["![PR curve](books_pr_curve.png)", ""]
    blocks.append(
        bench.Table(
            ["min confidence", "recall", "precision", "F1", "reject rate", "fold F1 std"],
            [
                [
                    f"{p['min_confidence']:.3f}"
                    + (" **(chosen)**" if p["min_confidence"] == c["min_confidence"] else ""),
                    f"{p['recall']:.4f}",
                    f"{p['precision']:.4f}",
                    f"{p['f1']:.4f}",
                    f"{p['reject_rate']:.3f}",
                    f"{p['f1_fold_std']:.4f}",
                ]
                for p in r["pr_curve"][::2]
            ],
        )
    )
    blocks += [
        "## Is the score a probability? (out-of-fold reliability)",
        "",
        bench.Table(
            ["predicted P(correct)", "matches", "mean predicted", "observed correct"],
            [[b["bin"], b["n"], f"{b['mean_p']:.3f}", f"{b['correct']:.3f}"] for b in r["reliability"]],
        ),
    ]
    return bench.render_markdown(
        r,
        "Matcher features, weights and reject threshold chosen by grouped cross-validation",
        blocks,
        [
            f"{r['segments']} segments from {r['photos']} shelf photos ({r['sections']} library sections); "
            f"{r['seconds']:.0f} s"
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
