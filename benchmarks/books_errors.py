"""Where the matcher loses recall and precision out of fold: every error of one outer shuffle, by class.

The protocol is books_calibrate.py's (one of its shuffles, seed 7: 5 folds grouped by shelf photo;
each fold matched once by a calibration fitted on the other four, its operating point chosen by a
cross-validation inside them). Each segment whose truth is a catalogue work and that is not matched
to it falls in one class:

- not retrieved: the work is not among the k candidates (stage 1);
- rejected, truth ranked first: the work is the segment's best-scored candidate but below the
  operating point - split by whether another segment of the same image took the work (one work
  per image): one with the same truth (a duplicate annotation: a one-to-one assignment can match only
  one), or one with another truth (e.g. a label piece annotated as not a book);
- rejected, truth ranked lower / another work scored higher: the scorer put a wrong work first;
- truth first but assigned another: the assignment moved the segment elsewhere.

And each segment whose truth is "no match" but got one: a false match, by annotation
(not a book, not in the catalogue, a merged segment). Nothing is chosen here: it only reports.

    python benchmarks/books_errors.py [--features f1,f2,...] [--seed 7] [--out books_errors]

Writes benchmarks/results/books_errors.{json,md}. Needs ../shared/data/library (skips otherwise).
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from typing import Any

import benchlib as bench
import numpy as np

from edgevl.books import build_index, load_catalogue
from edgevl.books.calibration import default_calibration, match_logits
from edgevl.books.catalogue import work_key
from edgevl.books.crossval import Labelled, assign_all, fit_inside, grouped_folds, photo_of
from edgevl.books.evaluate import read_segments

PATHS = bench.bench_paths(__file__)
FLAGS = ("not_book", "not_in_db", "segmentation_merged_books")


def classify(index: Any, data: Labelled, chosen: list[int | None], best: list[int], flags: list[str]
             ) -> list[str]:
    """The error class of every segment ('' when right; ``flags``: each segment's annotation flag, '' for
    none): see the module docstring."""
    def key(w: int) -> tuple[str, str]:
        return work_key(index.titles[w], index.authors[w])

    by_image: dict[str, list[int]] = {}
    for i, s in enumerate(data.segments):
        by_image.setdefault(s.image_name, []).append(i)
    out = []
    for i, s in enumerate(data.segments):
        c = chosen[i]
        lab = data.labels[i]
        if not s.truth:
            out.append("" if c is None else "false match: " + (flags[i] or "no truth"))
            continue
        if c is not None and key(c) == s.truth:
            out.append("")
            continue
        if not lab.any():
            out.append("not retrieved")
            continue
        truth_first = bool(lab[best[i]])
        if c is not None:
            out.append("truth first but assigned another" if truth_first else "another work scored higher")
            continue
        if not truth_first:
            out.append("rejected, truth ranked lower")
            continue
        w = int(data.cands.works[i][int(np.argmax(lab))])
        takers = [j for j in by_image[s.image_name] if j != i and chosen[j] == w]
        if not takers:
            out.append("rejected, truth ranked first, work free (below the operating point)")
        elif data.segments[takers[0]].truth == s.truth:
            out.append("rejected, truth ranked first, work taken by a segment with the same truth")
        else:
            out.append("rejected, truth ranked first, work taken by a segment with another truth "
                       f"({flags[takers[0]] or 'another book'})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", default="", help="comma-separated features (default: the shipped set)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default="books_errors", help="result name under benchmarks/results/")
    args = ap.parse_args(argv)
    data_dir = PATHS.library
    if not (data_dir / "library_books.csv").is_file():
        print(f"skip: {data_dir} has no library_books.csv (the library dataset lives in ../shared)")
        return 0
    t0 = time.perf_counter()
    load_before = bench.start()
    segs = read_segments(data_dir / "annotations_dev.csv")
    index = build_index(load_catalogue(data_dir / "library_books.csv"))
    data = Labelled.build(index, segs)
    photos = [photo_of(s.image_name) for s in segs]
    feats = tuple(args.features.split(",")) if args.features else default_calibration().features
    chosen: list[int | None] = [None] * len(segs)
    best = [0] * len(segs)
    for test in grouped_folds(photos, 5, args.seed):
        train = np.setdiff1d(np.arange(len(segs)), test)
        cal, _ = fit_inside(index, data, photos, train, feats)["platt"]
        outer = data.subset(test)
        lg = match_logits(outer.x, outer.cands.works, cal, outer.names)
        got = assign_all(index, outer, lg, cal.reject_logit)
        for j, i in enumerate(np.sort(test).tolist()):
            chosen[i] = got[j]
            best[i] = int(np.argmax(lg[j]))
    with (data_dir / "annotations_dev.csv").open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    flags = [next((k for k in FLAGS if r.get(k, "").strip().lower() in ("true", "1", "yes")), "")
             for r in rows]
    classes = classify(index, data, chosen, best, flags)
    counts = Counter(c for c in classes if c)
    positives = sum(1 for s in segs if s.truth)
    matched = sum(1 for c in chosen if c is not None)
    right = sum(1 for s, c in zip(segs, classes, strict=True) if s.truth and not c)
    by_image: dict[str, Counter[tuple[str, str]]] = {}
    for s in segs:
        if s.truth:
            by_image.setdefault(s.image_name, Counter())[s.truth] += 1
    dup = sum(n - 1 for c in by_image.values() for n in c.values() if n > 1)
    result = bench.new_result(
        args.out,
        bench.command_line(PATHS.repo),
        load_before=load_before,
        seconds=time.perf_counter() - t0,
        seed=args.seed,
        features=list(feats),
        segments=len(segs),
        positives=positives,
        matched=matched,
        right=right,
        recall=right / positives,
        precision=right / matched if matched else 0.0,
        duplicate_truths=dup,
        truth_in_candidates=float(np.mean([data.labels[i].any() for i, s in enumerate(segs) if s.truth])),
        classes=dict(counts.most_common()),
        headline=f"seed {args.seed}: recall {right / positives:.4f}; largest class: {counts.most_common(1)}",
    )
    bench.write_result(result, PATHS.results / args.out, render)
    return 0


def render(r: Any) -> str:
    p = r["positives"]
    lines = [
        "# Where recall and precision are lost out of fold (one outer shuffle)",
        "",
        f"- machine: {bench.machine_line(r['machine'])}",
        f"- command: `{r['command']}`",
        f"- protocol: books_calibrate.py's, shuffle seed {r['seed']}: 5 photo-grouped folds, each matched "
        "once by a calibration fitted on the other four (operating point chosen inside them)",
        f"- features ({len(r['features'])}): {', '.join(r['features'])}",
        f"- {r['segments']} segments, {p} with a catalogue truth; {r['matched']} matched, "
        f"{r['right']} right: "
        f"recall {r['recall']:.4f}, precision {r['precision']:.4f}",
        f"- the truth is among the k candidates for {r['truth_in_candidates']:.4f} of the positives; "
        f"{r['duplicate_truths']} positives share their truth with another segment of the same image "
        f"(a one-to-one assignment can match only one of them: recall <= {1 - r['duplicate_truths'] / p:.4f} "
        "unless the catalogue has copies)",
        "",
        "| class | segments | share of positives |",
        "| --- | --- | --- |",
    ]
    for c, n in r["classes"].items():
        share = "" if c.startswith("false match") else f"{n / p:.4f}"
        lines.append(f"| {c} | {n} | {share} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
