"""Does int8 pay on OpenVINO? The PP-OCRv6 detector, fp32 vs QDQ int8 (``edgevl quantize``, its accuracy
guard as for every bundle), each on OpenVINO's CPU plugin and on ONNX Runtime's CPU provider.

Calibration: 24 rendered pages (``benchlib.synth.render_lines``, 18 calibrate, 6 held out for the
guard); accuracy: box F1 (IoU >= 0.5) of int8 vs fp32 on 12 other rendered pages and on the two
shelf photos (their detector input, 1344x1792, is also the timed shape). Timing: the detector call
alone on that input, engines interleaved round by round, median ms.

    python benchmarks/ov_int8_det.py [--rounds 5] [--data ../shared/data/library]

Takes the bench lock (/tmp/edgevl-bench.lock) itself around the timed part only: run it without a
``flock`` wrapper. Writes benchmarks/results/ov_int8_det.md and .json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib as bench
import numpy as np
import ocr_common as oc


def pages(n: int, seed: int) -> list[np.ndarray]:
    from benchlib.synth import render_lines

    rng = np.random.default_rng(seed)
    words = ["Library", "shelf", "CATALOGUE", "History", "Novel", "1984", "Atlas", "Sports", "Dictionary",
             "Poems", "Moby Dick", "Don Quijote", "Hamlet", "796.4", "EDITORIAL", "Barcelona", "Ulysses"]
    out = []
    for _ in range(n):
        k = int(rng.integers(4, 10))
        lines = [" ".join(rng.choice(words, size=int(rng.integers(1, 5)))) for _ in range(k)]
        out.append(np.asarray(render_lines(lines, size=int(rng.integers(22, 40))).image))
    return out


def main(argv: list[str] | None = None) -> int:
    import cv2
    from edgevl_export.quantize import quantize_bundle
    from edgevl_export.quantize.guard import box_agreement

    from edgevl.backends import EngineOptions, open_engine
    from edgevl.models.ppocr import default_bundles
    from edgevl.tasks.ocr import TextDetector

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--data", type=Path, default=oc.LIBRARY)
    ap.add_argument("--out", type=Path, default=oc.RESULTS)
    ap.add_argument("--model", default="ppocrv6")
    args = ap.parse_args(argv)

    det, _, _ = default_bundles(args.model)
    work = Path(tempfile.mkdtemp(prefix="ov-int8-det-"))
    calib = work / "calib"
    calib.mkdir()
    for i, p in enumerate(pages(24, 3)):
        cv2.imwrite(str(calib / f"{i:03d}.png"), p)
    t0 = time.perf_counter()
    int8 = quantize_bundle(det.path, calib, work / "det-int8", samples=18, holdout=6,
                           log=lambda m: print("   ", m, flush=True))
    qsec = time.perf_counter() - t0

    photos = [p for p in (args.data / "shelf_one.jpg", args.data / "shelf_two.jpg") if p.is_file()]
    test = pages(12, 4)
    acc: dict[str, Any] = {}
    for be in ("ort-cpu", "openvino"):
        opts = EngineOptions(backend=be)
        d32, d8 = TextDetector(bundle=det, options=opts), TextDetector(bundle=int8, options=opts)
        b32 = [d32(im)[0] for im in test]
        b8 = [d8(im)[0] for im in test]
        p32 = [d32(cv2.imread(str(p)))[0] for p in photos]
        p8 = [d8(cv2.imread(str(p)))[0] for p in photos]
        acc[be] = {"pages_f1": box_agreement(b32, b8, 0.5),
                   "photos_f1": box_agreement(p32, p8, 0.5) if photos else None,
                   "photo_boxes_fp32_int8": [[len(a), len(b)] for a, b in zip(p32, p8, strict=True)]}
        print(be, acc[be], flush=True)

    x = np.random.default_rng(0).standard_normal((1, 3, 1344, 1792)).astype(np.float32)
    engines = {f"{be} {name}": open_engine(b, options=EngineOptions(backend=be))
               for be in ("ort-cpu", "openvino") for name, b in (("fp32", det), ("int8", int8))}
    feed_name = det.model().inputs[0].name
    times: dict[str, list[float]] = {k: [] for k in engines}
    with bench.bench_lock():  # the timed part only (the quantisation above takes minutes)
        load_before = bench.start()
        for e in engines.values():
            e.run({feed_name: x})
        for r in range(args.rounds):
            keys = list(engines) if r % 2 == 0 else list(reversed(engines))
            for k in keys:
                t = time.perf_counter()
                engines[k].run({feed_name: x})
                times[k].append((time.perf_counter() - t) * 1000)
    med = {k: statistics.median(v) for k, v in times.items()}
    print({k: round(v, 1) for k, v in med.items()}, flush=True)
    report = oc.new_result(
        "ov_int8_det", load_before,
        headline=(f"{args.model} det 1x3x1344x1792: OpenVINO fp32 {med['openvino fp32']:.0f} ms, int8 "
                  f"{med['openvino int8']:.0f} ms; ORT fp32 {med['ort-cpu fp32']:.0f} ms, int8 "
                  f"{med['ort-cpu int8']:.0f} ms"),
        model=args.model, rounds=args.rounds, quantize_seconds=round(qsec, 1),
        report=int8.manifest.extra.get("quantization"), latency_ms=times, median_ms=med, accuracy=acc)

    def render(r: Any) -> str:
        rows = [[k, f"{v:.0f}"] for k, v in r["median_ms"].items()]
        arow = [[be, f"{a['pages_f1']:.3f}", "—" if a["photos_f1"] is None else f"{a['photos_f1']:.3f}",
                 str(a["photo_boxes_fp32_int8"])] for be, a in r["accuracy"].items()]
        return bench.render_markdown(r, f"{r['model']} detector: fp32 vs int8 on OpenVINO and ONNX Runtime", [
            bench.Table(["engine, precision", "median ms (1x3x1344x1792)"], rows), "",
            bench.Table(["backend", "box F1 int8 vs fp32, rendered pages", "box F1, shelf photos",
                         "boxes per photo (fp32, int8)"], arow)],
            [f"{r['rounds']} rounds, engines interleaved; quantised in {r['quantize_seconds']} s"])

    bench.write_result(report, args.out / "ov_int8_det", render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
