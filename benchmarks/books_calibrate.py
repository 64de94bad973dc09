"""Choose the matcher's features, weights and reject threshold by grouped cross-validation only.

Every number here is out of fold: folds grouped by shelf photo (5 folds, 2 different shuffles) and,
separately, by library section (5 folds of whole sections: photos of a kind of book the model has
never seen). For each candidate feature set the two-stage logistic model is fitted on 4 folds and
scored on the 5th, with its probability map fitted on the other folds' out-of-fold scores, at the
operating point (min confidence) with the best pooled out-of-fold F1.

Selection rule (the simpler model wins unless the data say otherwise), stepwise from the v1 feature
set until a whole pass changes nothing (at most 3 passes): a librarian feature (or, from the second
pass, a v1 feature dropped before) is added only when adding it raises F1 in the photo-grouped folds
by more than two standard errors of the per-fold paired differences AND does not lower F1 in the
section-grouped folds; then each feature but the four core ones (n-gram cosine, title, author and
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgevl.bench import script as bench
from edgevl.books import build_index, load_catalogue
from edgevl.books.calibration import _LEGACY_FEATURES, SHIPPED, match_logits
from edgevl.books.crossval import (
    GRID,
    CrossValidation,
    Labelled,
    assign_all,
    choose_operating_point,
    cross_validate,
    fit_final,
    fold_metrics,
    grouped_folds,
    operating_points,
    photo_of,
    predictions,
    summary,
)
from edgevl.books.evaluate import Segment, metrics, read_segments
from edgevl.books.index import CatalogueIndex
from edgevl.books.matcher import BookMatch

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
    "shelf without call-number labels (no other spine of the photo shows one)": ("shelf_unlabelled",),
    "several call-number labels in one segment": ("labels_extra",),
    "another segment of the photo reads more of the work (a spine cut in two)": ("rival_reads_more",),
    "call number read upside down": ("tag_flipped",),
    "the spine says DVD, the entry does not": ("media_mismatch",),
}
MAX_PASSES = 3
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


Schemes = dict[str, list[list[np.ndarray]]]


def select(
    index: CatalogueIndex, data: Labelled, schemes: Schemes, say: Callable[[str], None]
) -> tuple[tuple[str, ...], list[dict[str, Any]], list[dict[str, Any]]]:
    """The stepwise selection on ``data`` with the folds ``schemes``: (features, decisions, log)."""
    log: list[dict[str, Any]] = []
    decisions: list[dict[str, Any]] = []

    def run(name: str, feats: tuple[str, ...]) -> dict[str, Any]:
        r = evaluate_set(index, data, feats, schemes)
        log.append({"variant": name, "features": list(feats),
                    **{s: {k: r[s][k] for k in ("f1_mean", "f1_std")} for s in schemes}})
        say(f"{name}: photo F1 {r['photo']['f1_mean']:.4f} +- {r['photo']['f1_std']:.4f}, section F1 "
            f"{r['section']['f1_mean']:.4f} +- {r['section']['f1_std']:.4f}")
        return r

    current, cur_res = V1, run("v1 (19 features)", V1)
    core = ("cos", "title_cov", "author_cov", "tag")

    def decide(change: str, feats: tuple[str, ...], trial: tuple[str, ...], adding: bool, step: int) -> bool:
        nonlocal current, cur_res
        res = run(f"{change} (pass {step})", trial)
        gain, se = paired(cur_res, res, "photo")
        gain_s, se_s = paired(cur_res, res, "section")
        # adding must beat the noise; dropping must cost less than the noise, in both schemes
        accept = gain > 2 * se and gain_s >= 0 if adding else gain > -se and gain_s > -se_s
        decisions.append({"change": change, "pass": step, "features": list(feats), "photo_gain": gain,
                          "photo_se": se, "section_gain": gain_s, "section_se": se_s, "kept": accept})
        if accept:
            current, cur_res = trial, res
        return accept

    # stepwise until a whole pass changes nothing: 1. add each librarian feature (or a dropped v1
    # feature) that beats the noise; 2. drop each feature but the four core ones that costs nothing
    for step in range(1, MAX_PASSES + 1):
        changed = False
        additions = [(f"add {label}", feats) for label, feats in LIBRARIAN.items()]
        additions += [(f"add back {f}", (f,)) for f in V1 if f not in current and step > 1]
        for change, feats in additions:
            if not all(f in current for f in feats):
                trial = current + tuple(f for f in feats if f not in current)
                changed |= decide(change, feats, trial, True, step)
        for feat in [f for f in reversed(current) if f not in core]:
            changed |= decide(f"drop {feat}", (feat,), tuple(f for f in current if f != feat), False, step)
        if not changed:
            break
    return current, decisions, log


def schemes_for(photos: Sequence[str], sections: Sequence[str]) -> dict[str, list[list[np.ndarray]]]:
    """The selection's folds: by photo (2 shuffles) and by library section."""
    return {"photo": [grouped_folds(photos, 5, seed) for seed in (0, 1)],
            "section": [grouped_folds(sections, 5, 0)]}


def nested(index: CatalogueIndex, data: Labelled, photos: Sequence[str], sections: Sequence[str]
           ) -> dict[str, Any]:
    """The whole method scored on photos that chose nothing: for each of 5 outer folds (grouped by
    photo, a shuffle the selection does not use) the stepwise selection, the operating point and the
    fit run on the other four folds only; the outer fold is then matched once with that calibration.
    This is the estimate of what the *procedure* gives on new photos, free of the selection's own
    optimism (the selection sees every segment when it reports its chosen set's cross-validation)."""
    n = len(data.segments)
    segs: list[Segment] = []
    preds: list[BookMatch] = []
    folds = []
    for f, test in enumerate(grouped_folds(photos, 5, seed=7)):
        t0 = time.perf_counter()
        train = np.setdiff1d(np.arange(n), test)
        inner = data.subset(train)
        inner_photos = [photos[i] for i in train]
        inner_schemes = schemes_for(inner_photos, [sections[i] for i in train])
        feats, _, _ = select(index, inner, inner_schemes, lambda m: None)
        cv = cross_validate(index, inner, feats, grouped_folds(inner_photos, 5, 0))
        point = choose_operating_point(operating_points(index, inner, cv, GRID))
        cal = fit_final(inner, feats, cv, point["min_confidence"], "nested")
        outer = data.subset(test)
        logits = match_logits(outer.x, outer.cands.works, cal, outer.names)
        got = predictions(index, outer, assign_all(index, outer, logits, cal.reject_logit))
        m = metrics(outer.segments, got)
        folds.append({"fold": f, "features": list(feats), "min_confidence": point["min_confidence"],
                      **{k: float(m[k]) for k in ("recall", "precision", "f1", "reject_rate")}})
        print(f"nested fold {f}: F1 {m['f1']:.4f} recall {m['recall']:.4f} with {len(feats)} features "
              f"at p >= {point['min_confidence']} ({time.perf_counter() - t0:.0f} s)", flush=True)
        segs += outer.segments
        preds += got
    pooled = metrics(segs, preds)
    keep = ("recall", "precision", "f1", "reject_rate")
    return {"pooled": {k: float(pooled[k]) for k in keep}, "folds": folds,
            "spread": summary([{k: fo[k] for k in keep} for fo in folds])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--no-write", action="store_true", help="do not overwrite the shipped calibration")
    ap.add_argument("--no-nested", action="store_true",
                    help="skip the nested cross-validation of the whole procedure (5 more selections)")
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
    schemes = schemes_for(photos, sections)
    current, decisions, log = select(index, data, schemes, lambda m: print(m, flush=True))
    nest = nested(index, data, photos, sections) if not args.no_nested else None

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
        nested=nest,
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
    ]
    nest = r.get("nested")
    if nest:
        sp = nest["spread"]
        blocks += [
            "## The whole procedure on photos that chose nothing (nested cross-validation)",
            "",
            "The numbers above are cross-validated, but the selection below saw every segment when it "
            "compared feature sets, so they carry its optimism. Here each of 5 outer folds (grouped by "
            "photo) is matched by a calibration whose features, weights and operating point were all "
            "chosen on the other four folds only (the same stepwise selection, its own inner folds).",
            "",
            bench.Table(
                ["outer fold", "features chosen", "min confidence", "recall", "precision", "F1"],
                [[str(fo["fold"]), str(len(fo["features"])), f"{fo['min_confidence']:.3f}",
                  f"{fo['recall']:.4f}", f"{fo['precision']:.4f}", f"{fo['f1']:.4f}"] for fo in nest["folds"]]
                + [["pooled", "", "", f"{nest['pooled']['recall']:.4f}", f"{nest['pooled']['precision']:.4f}",
                    f"{nest['pooled']['f1']:.4f}"]],
            ),
            f"Nested F1 {nest['pooled']['f1']:.4f} pooled, {_pm(sp, 'f1')} across outer folds; recall "
            f"{nest['pooled']['recall']:.4f}.",
            "",
            "Features chosen in every outer fold: "
            + ", ".join(sorted(set.intersection(*[set(fo["features"]) for fo in nest["folds"]]))) + ".",
            "",
        ]
    blocks += [
        "## Selection (paired per-fold F1 differences; photo: 2 shuffles x 5 folds, section: 5 folds)",
        "",
    ]
    rows = []
    for d in r["decisions"]:
        add = d["change"].startswith("add")  # "add …" or "add back …"
        verdict = ("kept" if add else "dropped") if d["kept"] else ("not added" if add else "kept")
        rows.append(
            [
                str(d.get("pass", 1)),
                d["change"],
                f"{d['photo_gain']:+.4f} ± {d['photo_se']:.4f}",
                f"{d['section_gain']:+.4f} ± {d['section_se']:.4f}",
                verdict,
            ]
        )
    blocks += [
        bench.Table(["pass", "change", "photo ΔF1 ± s.e.", "section ΔF1 ± s.e.", "decision"], rows),
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
