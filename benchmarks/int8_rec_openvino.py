"""``ppocrv6-int8`` (PP-OCRv6 small's recogniser, int8 QDQ calibrated on rendered lines) against the
fp32 recogniser, on the engine where int8 pays: OpenVINO's CPU plugin (issue 23).

- accuracy: word accuracy on two synthetic STR sets (benchmarks/strgen.py: seed 0 x 40 crops per
  distortion, the set every OCR figure here uses, and seed 12 x 100 per distortion), every reader
  through ``OcrPipeline.read_crops``: the fp32 and the int8 recogniser on OpenVINO at ``edgevl ocr``'s
  default precision (``auto``: bf16 on this CPU for whatever runs in float), and the fp32 one on ONNX
  Runtime (the models' own numbers);
- speed: the recogniser alone on 96 rendered text lines (the calibration generator with another
  seed), fp32 and int8 recogniser on OpenVINO ``auto``, OpenVINO f32 and ONNX Runtime's CPU provider,
  interleaved round by round, median seconds.

The shelf photos (catalogue words, whole pipeline, against the peer engines) are in
benchmarks/ocr_vs_rapidocr.py (configuration ``edgevl:ppocrv6:openvino:rec=ppocrv6-int8``).

    flock /tmp/edgevl-bench.lock python benchmarks/int8_rec_openvino.py

Writes benchmarks/results/int8_rec_openvino.md and .json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import benchlib as bench
import ocr_common as oc
import strgen

from edgevl.backends import EngineOptions, OpenVinoOptions
from edgevl.models import ppocr_int8
from edgevl.models.recognizers import ensure
from edgevl.tasks import ocr

SETS = ((0, 40), (12, 100))


#: engine settings by label: OpenVINO at ``edgevl ocr``'s default precision (``auto``: bf16 on a CPU
#: with avx512_bf16, for the layers int8 leaves in float too) and at f32, ONNX Runtime's CPU provider
ENGINES = {"OpenVINO auto": EngineOptions(backend="openvino", openvino=OpenVinoOptions(precision="auto")),
           "OpenVINO f32": EngineOptions(backend="openvino", openvino=OpenVinoOptions(precision="f32")),
           "ONNX Runtime": EngineOptions(backend="ort-cpu")}


def readers(int8: Path) -> dict[str, ocr.OcrPipeline]:
    return {"fp32 rec, OpenVINO auto": ocr.OcrPipeline(options=ENGINES["OpenVINO auto"]),
            "int8 rec, OpenVINO auto": ocr.OcrPipeline(options=ENGINES["OpenVINO auto"], rec=int8),
            "fp32 rec, ONNX Runtime": ocr.OcrPipeline(options=ENGINES["ONNX Runtime"])}


def accuracy(pipe: ocr.OcrPipeline, crops: list[strgen.WordCrop]) -> dict[str, Any]:
    out: list[ocr.Reading] = []
    for s in range(0, len(crops), 64):
        out += list(pipe.read_crops([c.image for c in crops[s:s + 64]]))
    per: dict[str, list[int]] = {}
    for r, c in zip(out, crops, strict=True):
        per.setdefault(c.distortion, []).append(int(oc.str_label(r.text) == oc.str_label(c.label)))
    flat = [x for v in per.values() for x in v]
    return {"correct": sum(flat), "n": len(flat), "per_distortion": {d: sum(v) for d, v in per.items()}}


def speed(rounds: int, int8: Path) -> dict[str, Any]:
    lines = [img for _, img in ppocr_int8.calibration_lines(96, seed=5)]
    recs = {f"{p} rec, {e}": ocr.TextRecognizer(options=o, rec=int8 if p == "int8" else None)
            for e, o in ENGINES.items() for p in ("fp32", "int8")}
    for r in recs.values():
        r.read(lines)
    times: dict[str, list[float]] = {k: [] for k in recs}
    for i in range(rounds):
        order = list(recs) if i % 2 == 0 else list(reversed(recs))
        for k in order:
            t0 = time.perf_counter()
            recs[k].read(lines)
            times[k].append(time.perf_counter() - t0)
    return {"lines": len(lines), "rounds": rounds,
            "median_s": {k: statistics.median(v) for k, v in times.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=oc.RESULTS)
    args = ap.parse_args(argv)
    load_before = bench.start()
    fonts = strgen.find_fonts()
    int8 = ensure(ppocr_int8.NAME)
    pipes = readers(int8.path)
    sets = []
    for seed, n in SETS:
        crops = strgen.generate(n, seed, strgen.DISTORTIONS, fonts)
        sets.append({"seed": seed, "n_per_distortion": n,
                     "results": {k: accuracy(p, crops) for k, p in pipes.items()}})
    report = oc.new_result("int8_rec_openvino", load_before, sets=sets, speed=speed(args.rounds, int8.path),
                           distortions=list(strgen.DISTORTIONS),
                           int8_bundle=int8.manifest.extra["quantization"]["roles"]["model"]["kept_float"])
    bench.write_result(report, args.out / "int8_rec_openvino", render)
    return 0


def render(report: dict[str, Any]) -> str:
    names = list(report["sets"][0]["results"])
    rows: list[list[Any]] = []
    for s in report["sets"]:
        for d in [*report["distortions"], "all"]:
            cells = []
            for k in names:
                r = s["results"][k]
                c = r["correct"] if d == "all" else r["per_distortion"].get(d, 0)
                n = r["n"] if d == "all" else s["n_per_distortion"]
                cells.append(f"{100 * c / n:.1f}%" if d != "all" else f"**{100 * c / n:.2f}%** ({c}/{n})")
            rows.append([f"seed {s['seed']}", d, *cells])
    sp = report["speed"]["median_s"]
    default = sp["fp32 rec, OpenVINO auto"]
    srows = [[k, f"{v:.3f}", f"{sp['fp32 rec, ' + k.split(', ')[1]] / v:.2f}x", f"{default / v:.2f}x"]
             for k, v in sp.items()]
    blocks: list[bench.Block] = [
        bench.Table(["set", "distortion", *names], rows),
        f"Recogniser alone, {report['speed']['lines']} rendered lines, median of {report['speed']['rounds']} "
        "interleaved rounds:",
        "",
        bench.Table(["recogniser, engine", "seconds", "fp32 rec on the same engine / this",
                     "edgevl ocr's default (fp32 rec, OpenVINO auto) / this"], srows),
    ]
    notes = ["metric: case-insensitive alphanumeric word accuracy (PARSeq protocol), edgevl's STR mode",
             f"int8 bundle: nodes the guard kept in float: {', '.join(report['int8_bundle']) or 'none'}"]
    return bench.render_markdown(report, "ppocrv6-int8: the int8 recogniser on OpenVINO", blocks, notes)


if __name__ == "__main__":
    raise SystemExit(main())
