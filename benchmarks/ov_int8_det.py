"""Does int8 pay on OpenVINO? The PP-OCRv6 detector, fp32 vs QDQ int8 (``edgevl quantize``, its accuracy
guard as for every bundle), each on OpenVINO's CPU plugin and on ONNX Runtime's CPU provider.

Variants: every weight node int8, and the stem (first four convolutions) kept in float.
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


#: the detector's stem (its first four convolutions, full resolution, few channels): the nodes the
#: int8 recogniser's guard kept in float (docs/ocr.md), tried in float here too
STEM = ("Conv.0", "Conv.1", "Conv.2", "Conv.3")
#: engines: (backend, OpenVINO precision); "auto" is what `edgevl ocr` runs (bf16 on this CPU)
ENGINES = (("ort-cpu", "f32"), ("openvino", "f32"), ("openvino", "auto"))


def main(argv: list[str] | None = None) -> int:
    import cv2
    from edgevl_export.quantize import quantize_bundle
    from edgevl_export.quantize.guard import box_agreement

    from edgevl.backends import EngineOptions, OpenVinoOptions, open_engine
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
    bundles = {"fp32": det}
    qsec: dict[str, float] = {}
    for name, keep in (("int8", ()), ("int8, stem float", STEM)):
        t0 = time.perf_counter()
        bundles[name] = quantize_bundle(det.path, calib, work / name.replace(", ", "-").replace(" ", "-"),
                                        samples=18, holdout=6, keep_float=keep,
                                        log=lambda m: print("   ", m, flush=True))
        qsec[name] = round(time.perf_counter() - t0, 1)

    def options(be: str, prec: str) -> EngineOptions:
        return EngineOptions(backend=be, openvino=OpenVinoOptions(precision=prec))

    photos = [p for p in (args.data / "shelf_one.jpg", args.data / "shelf_two.jpg") if p.is_file()]
    test = pages(12, 4)
    images = [cv2.imread(str(p)) for p in photos]
    acc: dict[str, Any] = {}
    for be, prec in ENGINES:
        ref = TextDetector(bundle=det, options=options(be, prec))
        b32 = [ref(im)[0] for im in test]
        p32 = [ref(im)[0] for im in images]
        for name in ("int8", "int8, stem float"):
            d8 = TextDetector(bundle=bundles[name], options=options(be, prec))
            b8 = [d8(im)[0] for im in test]
            p8 = [d8(im)[0] for im in images]
            key = f"{be} {prec}: {name}"
            acc[key] = {"pages_f1": box_agreement(b32, b8, 0.5),
                        "photos_f1": box_agreement(p32, p8, 0.5) if photos else None,
                        "photo_boxes_fp32_int8": [[len(a), len(b)] for a, b in zip(p32, p8, strict=True)]}
            print(key, acc[key], flush=True)

    x = np.random.default_rng(0).standard_normal((1, 3, 1344, 1792)).astype(np.float32)
    engines = {f"{be} {prec}: {name}": open_engine(b, options=options(be, prec))
               for be, prec in ENGINES for name, b in bundles.items()}
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
        headline=(f"{args.model} det 1x3x1344x1792 on OpenVINO: fp32 graph at bf16 (edgevl's default) "
                  f"{med['openvino auto: fp32']:.0f} ms, int8 {med['openvino auto: int8']:.0f} ms, int8 with "
                  f"the stem in float {med['openvino auto: int8, stem float']:.0f} ms"),
        model=args.model, rounds=args.rounds, quantize_seconds=qsec,
        reports={k: b.manifest.extra.get("quantization") for k, b in bundles.items() if k != "fp32"},
        latency_ms=times, median_ms=med, accuracy=acc)

    bench.write_result(report, args.out / "ov_int8_det", render)
    return 0



def render(r: Any) -> str:
    base = {k.split(": ")[0]: v for k, v in r["median_ms"].items() if k.endswith(": fp32")}
    rows = [[k, f"{v:.0f}", f"{base[k.split(': ')[0]] / v:.2f}x"] for k, v in r["median_ms"].items()]
    arow = [[k, f"{a['pages_f1']:.3f}", "—" if a["photos_f1"] is None else f"{a['photos_f1']:.3f}",
             str(a["photo_boxes_fp32_int8"])] for k, a in r["accuracy"].items()]
    return bench.render_markdown(r, f"{r['model']} detector: fp32 vs int8 on OpenVINO and ONNX Runtime", [
        bench.Table(["engine precision: bundle", "median ms (1x3x1344x1792)",
                     "vs the fp32 graph, same engine"], rows), "",
        bench.Table(["engine precision: bundle", "box F1 int8 vs fp32, rendered pages",
                     "box F1, shelf photos", "boxes per photo (fp32, int8)"], arow)],
        [f"{r['rounds']} rounds, engines interleaved; quantised in {r['quantize_seconds']} s",
         "`auto` is the OpenVINO precision `edgevl ocr` runs: bf16 where the CPU has it (this one does)",
         f"stem float: the detector's first four convolutions {list(STEM)} kept in float (keep_float)"])


if __name__ == "__main__":
    raise SystemExit(main())
