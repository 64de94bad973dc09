"""End-to-end book matching (what ``edgevl match-books`` runs: OCR, spine grouping, per-photo
assignment) on the two shelf photos with each OCR model, side by side.

There is no per-book ground truth for these photos. A matched spine counts as **confirmed** when
the catalogue call number (``tag``) it was matched to is printed on the spine as read, i.e. the
spine's OCR text contains the tag's class number and its three-letter author/title code (e.g.
``796.332 Tom``) — independent evidence that the match is right; the other matches are listed for
reading against the photos. Every match of every model is listed, with which models agree.

    flock /tmp/edgevl-bench.lock python benchmarks/ocr_models_books.py

Writes benchmarks/results/ocr_models_books.md and .json.
"""

from __future__ import annotations

import argparse
import re
import unicodedata
from pathlib import Path
from typing import Any

import benchlib as bench
import ocr_common as oc

MODELS = ("ppocrv6", "ppocrv5", "ppocrv4")
PHOTOS = ("shelf_one.jpg", "shelf_two.jpg")


def _fold(s: str) -> str:
    s = unicodedata.normalize("NFKD", s)
    return re.sub(r"[^0-9a-z.()]", "", "".join(c for c in s if not unicodedata.combining(c)).lower())


def tag_on_spine(tag: str, ocr: str) -> bool:
    """The call number ``796.332 Tom`` is read on the spine: its number and its code both occur."""
    parts = tag.split()
    if len(parts) < 2:
        return False
    text = _fold(ocr)
    return _fold(parts[0]) in text and _fold(parts[-1]) in text


def run_model(model: str, photos: list[Path], catalogue: Path) -> list[dict[str, Any]]:
    from edgevl.books import BookMatcher
    from edgevl.books.shelf import ShelfMatcher, shelf_ocr
    from edgevl.vision.io import read_image

    # match-books' own OCR (full resolution, tiled) with this model
    shelf = ShelfMatcher(BookMatcher.from_catalogue(catalogue), ocr=shelf_ocr(model=model))
    out = []
    for p in photos:
        res = shelf(read_image(p))
        matched = [{"tag": s.match.tag, "title": s.match.title, "ocr": s.text,
                    "score": round(s.match.score, 3), "confirmed": tag_on_spine(s.match.tag, s.text)}
                   for s in res.spines if s.match.matched]
        out.append({"photo": p.name, "lines": res.n_lines, "spines_found": len(res.spines),
                    "spines_matched": len(matched), "confirmed": sum(m["confirmed"] for m in matched),
                    "matched": matched})
    return out


def render(report: Any) -> str:
    models = report["models"]
    notes = ["confirmed: the matched call number (class number and code) is read on the spine itself; "
             "no per-book ground truth exists for these photos"]
    rows = []
    for photo in PHOTOS:
        row: list[Any] = [photo]
        for m in models:
            r = next((x for x in report["results"][m] if x["photo"] == photo), None)
            row.append("—" if r is None else f"{r['spines_matched']} ({r['confirmed']} confirmed), "
                       f"{r['lines']} lines")
        rows.append(row)
    blocks: list[Any] = [bench.Table(["photo", *[f"{m}: matched (confirmed), OCR lines" for m in models]],
                                     rows)]
    for photo in PHOTOS:
        by_tag: dict[tuple[str, str], dict[str, Any]] = {}
        for m in models:
            r = next((x for x in report["results"][m] if x["photo"] == photo), None)
            for x in r["matched"] if r else []:
                e = by_tag.setdefault((x["tag"], x["title"]), {"models": [], "confirmed": False, "ocr": {}})
                e["models"].append(m)
                e["confirmed"] |= x["confirmed"]
                e["ocr"][m] = x["ocr"]
        trows = [[tag, title[:60], ", ".join(e["models"]), "yes" if e["confirmed"] else "",
                  next(iter(e["ocr"].values()))[:60]]
                 for (tag, title), e in sorted(by_tag.items())]
        blocks += [f"## {photo}", "",
                   bench.Table(["tag", "title", "matched by", "tag read on spine", "OCR (first model)"],
                               trows)]
    return bench.render_markdown(report, "`edgevl match-books` on the shelf photos with each OCR model",
                                 blocks, notes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=oc.LIBRARY)
    ap.add_argument("--out", type=Path, default=oc.RESULTS)
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args(argv)
    photos = [args.data / p for p in PHOTOS if (args.data / p).is_file()]
    catalogue = args.data / "library_books.csv"
    if not photos or not catalogue.is_file():
        print(f"SKIP: shelf photos / catalogue not found under {args.data}")
        return 0
    models = [m for m in args.models.split(",") if m]
    load_before = bench.start()
    results = {}
    for m in models:
        print(f"{m} ...", flush=True)
        results[m] = run_model(m, photos, catalogue)
        for r in results[m]:
            print(f"  {r['photo']}: {r['spines_matched']} matched, {r['confirmed']} confirmed", flush=True)
    report = oc.new_result(
        "ocr_models_books", load_before, models=models, results=results,
        headline="; ".join(f"{m}: " + " / ".join(f"{r['spines_matched']} ({r['confirmed']})"
                                                 for r in results[m]) for m in models))
    bench.write_result(report, args.out / "ocr_models_books", render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
