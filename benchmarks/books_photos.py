"""Book matching on edgevl's own OCR of the two shelf photos, against spines labelled by hand.

edgevl's OCR pipeline (the default models, at match-books' resolution: ``--limit-side``, default
``edgevl.books.shelf.SHELF_LIMIT_SIDE`` = full resolution) reads ``shelf_one.jpg`` and ``shelf_two.jpg``,
the lines are grouped into spines and matched per photo (exactly ``edgevl match-books``). Each spine is then
given the hand label of ``benchmarks/data/shelf_spines.csv`` whose outline it overlaps (labels are
stored by outline, not by spine number, so they survive a change of OCR model: a spine that covers
no labelled outline is reported as unlabelled). How the labels were made: docs/books.md.

Scored like the dev split: *book* spines are the positives; shelf labels, cut-off call numbers of
the row above, cover fragments and books missing from the catalogue are negatives (the right answer
is "no match"). *split* spines (a second piece of a book another spine also covers) and *merged*
spines (text of two spines) are listed apart: their book or "no match" are both accepted. Every
error is listed with its reason. The shipped calibration and the version-1 calibration (19
features, before the cross-validated selection) are run side by side, with the dev-split numbers.

    python benchmarks/books_photos.py   (accuracy only: the OCR seconds it records are not a timing)
    python benchmarks/books_photos.py --limit-side 1792 --out books_photos_1792

Writes benchmarks/results/books_photos.{json,md}. Needs ../shared/data/library (skips otherwise).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import benchlib as bench
from shapely.geometry import Polygon

from edgevl.books import BookMatcher, build_index, load_catalogue
from edgevl.books.calibration import _LEGACY_FEATURES, Calibration, default_calibration
from edgevl.books.catalogue import work_key
from edgevl.books.evaluate import evaluate, read_segments
from edgevl.books.shelf import ShelfSpines, Spine, read_shelf

PATHS = bench.bench_paths(__file__)
ROOT = PATHS.repo
DATA = PATHS.library
LABELS = ROOT / "benchmarks" / "data" / "shelf_spines.csv"
OUT = PATHS.results / "books_photos"
PHOTOS = ("shelf_one.jpg", "shelf_two.jpg")
NEGATIVE = ("shelf_label", "cut_off", "fragment", "not_in_catalogue")
OVERLAP = 0.5  # share of the smaller outline that must overlap for a spine to take a label

# the version-1 calibration (shipped before this study), kept to compare on the photos
V1 = {
    "weights": dict(
        zip(
            _LEGACY_FEATURES,
            [
                -4.228,
                21.609,
                11.407,
                7.552,
                4.977,
                -12.042,
                -0.988,
                -0.676,
                0.582,
                -0.747,
                -1.052,
                1.51,
                2.095,
                -5.133,
                -4.024,
                -3.797,
                -3.304,
                -17.953,
                2.875,
            ],
            strict=True,
        )
    ),
    "bias": -4.895,
    "stage2": [-0.353, 0.89, 0.087],
    "min_confidence": 0.2689,
    "source": "version 1 (reject log-odds -1.0)",
}


class Label(NamedTuple):
    """One hand-labelled spine outline (a NamedTuple: run_all imports this script outside sys.modules)."""

    photo: str
    outline: Polygon
    kind: str
    truth: tuple[str, str] | None  # normalised (title, author)
    title: str
    evidence: str


def read_labels(path: Path) -> list[Label]:
    out = []
    with path.open(encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            pts = [tuple(float(v) for v in p.split(",")) for p in r["quad"].split()]
            truth = work_key(r["title"], r["author"]) if r["title"] else None
            out.append(Label(r["photo"], Polygon(pts).buffer(0), r["kind"], truth, r["title"], r["evidence"]))
    return out


def label_spines(spines: Sequence[Spine], labels: Sequence[Label]) -> list[Label | None]:
    """The label of each spine: the labelled outline it overlaps most (>= OVERLAP of the smaller
    of the two; a spine over a book's outline and the outline of a piece of that book is the book);
    a spine overlapping the outlines of several different books becomes 'merged'; two
    spines on one labelled *book* outline: the one overlapping it most keeps 'book', the others
    become 'split'."""
    out: list[Label | None] = []
    for s in spines:
        poly = Polygon(s.polygon).buffer(0)
        hits = []
        for lab in labels:
            inter = poly.intersection(lab.outline).area
            small = min(poly.area, lab.outline.area)
            if small > 0 and inter / small >= OVERLAP:
                hits.append((inter, lab))
        if not hits:
            out.append(None)
            continue
        hits.sort(key=lambda h: -h[0])
        # a whole spine covers its book's outline and the outlines of that book's pieces: it is the book
        best = hits[0][1]
        whole = [h[1] for h in hits if h[1].kind == "book" and h[1].truth == best.truth]
        if best.kind == "split" and best.truth is not None and whole:
            best = whole[0]
        books = {
            h[1].truth for h in hits if h[1].truth is not None and h[1].kind in ("book", "split", "merged")
        }
        if len(books) > 1:
            best = Label(
                best.photo,
                best.outline,
                "merged",
                best.truth,
                best.title,
                "covers several labelled books: " + "; ".join(h[1].title for h in hits if h[1].title),
            )
        out.append(best)
    # one 'book' per labelled book outline
    seen: dict[int, tuple[float, int]] = {}
    for i, (s, lab) in enumerate(zip(spines, out, strict=True)):
        if lab is None or lab.kind != "book":
            continue
        area = Polygon(s.polygon).buffer(0).intersection(lab.outline).area
        key = id(lab)
        if key in seen and seen[key][0] >= area:
            out[i] = Label(
                lab.photo, lab.outline, "split", lab.truth, lab.title, "second spine on " + lab.evidence
            )
        else:
            if key in seen:
                j = seen[key][1]
                prev = out[j]
                assert prev is not None
                out[j] = Label(
                    prev.photo,
                    prev.outline,
                    "split",
                    prev.truth,
                    prev.title,
                    "second spine on " + prev.evidence,
                )
            seen[key] = (area, i)
    return out


def reason(s: Spine, lab: Label, matcher: BookMatcher) -> str:
    """Why a spine was scored wrong, from the candidates the matcher saw."""
    m = s.match
    if lab.truth is None:
        return f"a {lab.kind.replace('_', ' ')} spine was matched (p={m.score:.2f})"
    _, cands, logits = matcher.candidates([s.text])
    keys = [
        work_key(matcher.index.titles[w], matcher.index.authors[w]) if w >= 0 else None
        for w in cands.works[0]
    ]
    if lab.truth not in keys:
        return "the true book is not among the retrieved candidates (its words are not on the OCR text)"
    p_true = float(matcher.calibration.probability(logits[0][keys.index(lab.truth)]))
    if not m.matched:
        return f"rejected: the true book's probability {p_true:.2f} is below the operating point"
    return f"another candidate scored higher (true book p={p_true:.2f})"


def score(
    spines: Sequence[Spine], labels: Sequence[Label | None], matcher: BookMatcher, photo: str
) -> tuple[dict[str, int], list[dict[str, Any]], list[dict[str, Any]]]:
    """Counts for the two views, every error, and the matched spines no hand label covers.

    Spine view (like the dev split): *book* spines are positives, negatives must be rejected,
    split/merged spines are left out. Book view: a labelled book is found when any spine on it
    (book, split or merged) is matched to it; precision counts every matched spine of any kind.
    ``books_found_pieces`` also counts a labelled book whose match went to a spine piece no hand
    label covers (at full resolution a title or author piece can stand apart from the labelled
    outline); those spines are listed so a reader can check them against the photo."""
    c = dict.fromkeys(
        (
            "book",
            "book_correct",
            "negative",
            "negative_rejected",
            "predicted_main",
            "books",
            "books_found",
            "matched",
            "matched_correct",
            "unlabelled",
            "unlabelled_matched",
            "books_found_pieces",
        ),
        0,
    )
    unlabelled: list[dict[str, Any]] = []
    piece_hits: dict[tuple[str, str], int] = {}
    errors: list[dict[str, Any]] = []
    copies: dict[tuple[str, str], int] = {}
    spines_of: dict[tuple[str, str], list[int]] = {}
    hits: dict[tuple[str, str], int] = {}
    for i, (s, lab) in enumerate(zip(spines, labels, strict=True)):
        m = s.match
        got = work_key(m.title, m.author) if m.matched else None
        if lab is None:
            c["unlabelled"] += 1
            c["unlabelled_matched"] += m.matched
            if got is not None:
                piece_hits[got] = piece_hits.get(got, 0) + 1
                unlabelled.append({"photo": photo, "spine": s.index, "ocr": s.text, "matched": m.title,
                                   "tag": m.tag, "p": round(m.score, 3), "key": got})
            continue
        if lab.truth is not None:
            spines_of.setdefault(lab.truth, []).append(i)
            if lab.kind == "book":
                copies[lab.truth] = copies.get(lab.truth, 0) + 1
        if got is not None:
            c["matched"] += 1
            ok = got == lab.truth
            c["matched_correct"] += ok
            if ok:
                hits[got] = hits.get(got, 0) + 1
            else:
                errors.append(_error(photo, s, lab, matcher, "wrong match"))
        if lab.kind == "book":
            c["book"] += 1
            c["book_correct"] += got == lab.truth
            c["predicted_main"] += m.matched
        elif lab.kind in NEGATIVE:
            c["negative"] += 1
            c["negative_rejected"] += got is None
            c["predicted_main"] += m.matched
    for u in unlabelled:  # is the matched work one of this photo's hand-labelled books?
        u["labelled_book_in_photo"] = u.pop("key") in copies
    for key, n in copies.items():
        c["books"] += n
        found = min(n, hits.get(key, 0))
        c["books_found"] += found
        c["books_found_pieces"] += min(n, found + piece_hits.get(key, 0))
        if found < n:
            # the book's spines, most text first: the reason comes from the best one
            idx = sorted(spines_of[key], key=lambda k: -len(spines[k].text))
            lab = labels[idx[0]]
            assert lab is not None
            e = _error(photo, spines[idx[0]], lab, matcher, "book not found")
            e["ocr"] = " / ".join(spines[k].text for k in idx)
            errors.append(e)
    return c, errors, unlabelled


def _error(photo: str, s: Spine, lab: Label, matcher: BookMatcher, what: str) -> dict[str, Any]:
    return {
        "photo": photo,
        "spine": s.index,
        "error": what,
        "kind": lab.kind,
        "ocr": s.text,
        "predicted": s.match.title or "(no match)",
        "p": round(s.match.score, 3),
        "truth": lab.title or "(no match)",
        "label_evidence": lab.evidence,
        "reason": reason(s, lab, matcher),
    }


def structure(found: ShelfSpines, labels: Sequence[Label]) -> dict[str, Any]:
    """Shelf rows and signs found; spines whose outline crosses a board (reaches from one row into
    the next); hand-labelled shelf signs (kind ``shelf_label``) left as spines, and matched."""
    boards = [(a.y1, b.y0) for a, b in zip(found.rows, found.rows[1:], strict=False)]
    crossing = [s.text for s in found.spines
                if any(min(p[1] for p in s.polygon) < top and max(p[1] for p in s.polygon) > bottom
                       for top, bottom in boards)]
    signs = [lab for lab in labels if lab.kind == "shelf_label"]
    on_spines = [(s, lab) for s, lab in zip(found.spines, label_spines(found.spines, signs), strict=True)
                 if lab is not None]
    return {"rows": [[round(r.y0), round(r.y1)] for r in found.rows], "signs": [g.text for g in found.signs],
            "spines_across_a_board": crossing, "labelled_signs": len(signs),
            "labelled_signs_left_as_spines": len(on_spines),
            "labelled_signs_matched": sum(s.match.matched for s, _ in on_spines)}


def summarise(c: dict[str, int]) -> dict[str, float]:
    recall = c["book_correct"] / c["book"] if c["book"] else 0.0
    precision = c["book_correct"] / c["predicted_main"] if c["predicted_main"] else 0.0
    f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
    b_recall = c["books_found"] / c["books"] if c["books"] else 0.0
    b_precision = c["matched_correct"] / c["matched"] if c["matched"] else 0.0
    b_f1 = 2 * b_recall * b_precision / (b_recall + b_precision) if b_recall + b_precision else 0.0
    return {
        "recall": recall,
        "precision": precision,
        "f1": f1,
        "reject_rate": c["negative_rejected"] / c["negative"] if c["negative"] else 0.0,
        "book_recall": b_recall,
        "match_precision": b_precision,
        "book_f1": b_f1,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument("--out", type=Path, default=OUT,
                    help="result path stem (a bare name goes into the results folder)")
    ap.add_argument("--limit-side", type=int, default=None,
                    help="OCR detector input's longest side (default: match-books', "
                    "edgevl.books.shelf.SHELF_LIMIT_SIDE; 0 = full resolution, tiled)")
    args = ap.parse_args(argv)
    args.out = PATHS.stem(args.out)
    if not all((args.data / p).is_file() for p in (*PHOTOS, "library_books.csv")):
        print(
            f"skip: {args.data} lacks the shelf photos or the catalogue "
            "(the library dataset lives in ../shared)"
        )
        return 0
    from edgevl.books.shelf import SHELF_LIMIT_SIDE, shelf_ocr
    from edgevl.vision.io import read_image

    load_before = bench.start()
    labels = read_labels(args.labels)
    index = build_index(load_catalogue(args.data / "library_books.csv"))
    shipped = default_calibration()
    variants = {"shipped": shipped, "version 1": Calibration.from_dict(V1)}
    side = SHELF_LIMIT_SIDE if args.limit_side is None else args.limit_side
    ocr = shelf_ocr(limit_side=side)  # what match-books reads a photo with
    dev = read_segments(args.data / "annotations_dev.csv")
    rows: dict[str, Any] = {}
    all_errors: dict[str, list[dict[str, Any]]] = {}
    all_pieces: dict[str, list[dict[str, Any]]] = {}
    ocr_info: dict[str, Any] = {}
    read: dict[str, tuple[Any, list[Any]]] = {}
    for photo in PHOTOS:
        image = read_image(args.data / photo)
        t0 = time.perf_counter()
        read[photo] = (image, ocr(image))
        ocr_info[photo] = {"lines": len(read[photo][1]), "ocr_seconds": round(time.perf_counter() - t0, 2)}
    for name, cal in variants.items():
        matcher = BookMatcher(index, cal)
        counts: dict[str, int] = {}
        errors: list[dict[str, Any]] = []
        pieces: list[dict[str, Any]] = []
        for photo in PHOTOS:
            image, lines = read[photo]
            found = read_shelf(lines, matcher, image)
            spines = list(found.spines)
            ocr_info[photo]["spines"] = len(spines)
            ocr_info[photo]["structure"] = structure(found, [lab for lab in labels if lab.photo == photo])
            labs = label_spines(spines, [lab for lab in labels if lab.photo == photo])
            c, e, u = score(spines, labs, matcher, photo)
            for k, v in c.items():
                counts[k] = counts.get(k, 0) + v
            errors += e
            pieces += u
        _, dev_res = evaluate(matcher, dev)
        rows[name] = {
            "photos": {**summarise(counts), **counts},
            "dev_split_in_sample": {k: dev_res[k] for k in ("recall", "precision", "f1", "reject_rate")},
            "min_confidence": cal.min_confidence,
            "features": len(cal.features),
        }
        all_errors[name] = errors
        all_pieces[name] = pieces
    cv_path = PATHS.results / "books_calibration.json"
    cv = json.loads(cv_path.read_text(encoding="utf-8")).get("chosen") if cv_path.is_file() else None
    shipped_row = rows["shipped"]["photos"]
    result = bench.new_result(
        Path(args.out).name,  # the result's name is its file stem (books_photos, books_photos_1792)
        bench.command_line(ROOT),
        load_before=load_before,
        ocr={"pipeline": f"edgevl.books.shelf.shelf_ocr(limit_side={side}) (match-books' OCR; 0 = full "
             "resolution, tiled)", "photos": ocr_info},
        labels=str(args.labels.resolve().relative_to(ROOT)),
        results=rows,
        errors=all_errors,
        unlabelled_matches=all_pieces,
        dev_split_grouped_cv=cv,
        headline=f"shelf photos, edgevl OCR: books found {shipped_row['book_recall']:.3f}, "
        f"match precision {shipped_row['match_precision']:.3f}",
    )
    bench.write_result(result, args.out, render)
    return 0


def render(r: Any) -> str:
    photos = ", ".join(
        f"{p}: {v['lines']} lines -> {v['spines']} spines" for p, v in r["ocr"]["photos"].items()
    )
    shelves = "; ".join(
        f"{p}: {len(st['rows'])} rows, signs {st['signs']}, spines across a board: "
        f"{len(st['spines_across_a_board'])}, hand-labelled signs {st['labelled_signs']} "
        f"(left as spines {st['labelled_signs_left_as_spines']}, matched {st['labelled_signs_matched']})"
        for p, v in r["ocr"]["photos"].items()
        if (st := v.get("structure"))
    )
    rows = []
    for name, row in r["results"].items():
        p = row["photos"]
        rows.append(
            [
                f"{name} ({row['features']} features, p >= {row['min_confidence']:.3f})",
                "shelf photos, edgevl OCR",
                f"{p['book']} / {p['negative']}",
                f"{p['recall']:.4f}",
                f"{p['precision']:.4f}",
                f"{p['f1']:.4f}",
                f"{p['reject_rate']:.3f}",
                f"{p['books_found']}/{p['books']} = {p['book_recall']:.4f}",
                f"{p['matched_correct']}/{p['matched']} = {p['match_precision']:.4f}",
                f"{p['book_f1']:.4f}",
                f"{p['unlabelled']} ({p['unlabelled_matched']})",
                f"{p['books_found_pieces']}/{p['books']}" if "books_found_pieces" in p else "",
            ]
        )
        d = row["dev_split_in_sample"]
        rows.append(
            [
                name,
                "dev split, commercial OCR (in-sample)",
                "2448 / 675",
                f"{d['recall']:.4f}",
                f"{d['precision']:.4f}",
                f"{d['f1']:.4f}",
                f"{d['reject_rate']:.3f}",
                "",
                "",
                "",
                "",
                "",
            ]
        )
    if r.get("dev_split_grouped_cv"):
        c = r["dev_split_grouped_cv"]["pooled"]
        rows.append(
            [
                "shipped features, refitted per fold",
                "dev split, 5-fold CV grouped by photo",
                "2448 / 675",
                f"{c['recall']:.4f}",
                f"{c['precision']:.4f}",
                f"{c['f1']:.4f}",
                f"{c['reject_rate']:.3f}",
                "",
                "",
                "",
                "",
                "",
            ]
        )
    blocks: list[bench.Block] = [
        "Spine view (as the dev split): recall over *book* spines, precision over matched book and negative "
        "spines. Book view: a book counts as found when any spine on it is matched to it; precision over "
        "every matched spine.",
        "",
        bench.Table(
            [
                "calibration",
                "evaluation",
                "book spines / negatives",
                "recall",
                "precision",
                "F1",
                "reject rate",
                "books found",
                "match precision",
                "book F1",
                "unlabelled (matched)",
                "books found, unlabelled pieces included",
            ],
            rows,
        ),
    ]
    for name, pieces in r.get("unlabelled_matches", {}).items():
        if pieces:
            blocks += [
                f"## Matched spines no hand label covers, {name} calibration ({len(pieces)})",
                "",
                "A piece of a spine (a title or author read apart from the labelled call number) that no "
                "labelled outline covers: its match counts in the last column when it is one of the "
                "photo's labelled books. Check them against the photo.",
                "",
                bench.Table(["photo", "spine", "OCR", "matched (p)", "tag", "a labelled book of this photo"],
                            [[u["photo"], u["spine"], u["ocr"], f"{u['matched']} ({u['p']})", u["tag"],
                              "yes" if u["labelled_book_in_photo"] else "no"] for u in pieces]),
            ]
    for name, errs in r["errors"].items():
        blocks += [
            f"## Every error, {name} calibration ({len(errs)})",
            "",
            bench.Table(
                [
                    "photo",
                    "spine",
                    "error",
                    "kind",
                    "OCR",
                    "predicted (p)",
                    "truth",
                    "reason",
                    "label evidence",
                ],
                [
                    [
                        e["photo"],
                        e["spine"],
                        e["error"],
                        e["kind"],
                        e["ocr"][:60],
                        f"{e['predicted'][:45]} ({e['p']:.2f})",
                        e["truth"][:45],
                        e["reason"],
                        e["label_evidence"],
                    ]
                    for e in errs
                ],
            ),
        ]
    return bench.render_markdown(
        r,
        "Book matching on edgevl's own OCR of the shelf photos (hand-labelled spines)",
        blocks,
        [
            f"OCR: {r['ocr']['pipeline']}; {photos}",
            f"labels: `{r['labels']}` (how they were made: docs/books.md)",
            f"shelf structure (shipped calibration's run): {shelves}",
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
