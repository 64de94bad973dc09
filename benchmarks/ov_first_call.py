"""Where a one-photo process loses time on OpenVINO: the recogniser's first pass over a photo's batch
shapes against the same pass warm (issue 23's whole-process target).

OpenVINO's CPU plugin prepares its kernels and buffers for each new input shape the first time it
sees it. One shelf photo feeds the recogniser a few dozen (batch, width) shapes, so a fresh process
pays that preparation once per shape, and a warm one never. This script records the recogniser's
batches of a shelf photo (``OcrPipeline`` defaults), then runs them in fresh processes, each with one
batching policy, several times interleaved:

- ``as batched``: the pipeline's batches (widths rounded to 8 px, at most 16 crops, at most 10 %
  padding);
- ``widths to 64``: each batch padded to a multiple of 64 px (fewer distinct widths, more columns);
- ``largest first``: the same batches, the one with the most columns first (buffers sized once).

For each: distinct shapes, input columns, compile (from the ONNX file, no cache), first pass, second
pass, in seconds (median over runs). Precision ``auto`` (bf16 on this CPU, as ``edgevl ocr``), the
threads ``edgevl`` would use.

    flock /tmp/edgevl-bench.lock python benchmarks/ov_first_call.py [--runs 3] [--photo shelf_one.jpg]

Writes benchmarks/results/ov_first_call.md and .json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import benchlib as bench
import numpy as np
import ocr_common as oc

POLICIES = ("as batched", "widths to 64", "largest first")

#: the child: one fresh process, one policy; prints one JSON line
CHILD = r"""
import json, sys, time
import numpy as np, openvino as ov
from edgevl.backends.cpus import usable_cpus
t0 = time.perf_counter()
batches = list(np.load(sys.argv[1]).values())
policy = sys.argv[3]
if policy == "widths to 64":
    def pad(x):
        n, c, h, w = x.shape
        out = np.zeros((n, c, h, -(-w // 64) * 64), np.float32)
        out[..., :w] = x
        return out
    batches = [pad(x) for x in batches]
elif policy == "largest first":
    batches = sorted(batches, key=lambda x: -x.shape[0] * x.shape[3])
core = ov.Core()
cfg = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": usable_cpus()}
req = core.compile_model(core.read_model(sys.argv[2]), "CPU", cfg).create_infer_request()
t1 = time.perf_counter()
passes = []
for _ in range(2):
    t = time.perf_counter()
    for x in batches:
        req.infer({0: x})
    passes.append(time.perf_counter() - t)
print(json.dumps({"shapes": len({x.shape for x in batches}), "batches": len(batches),
                  "columns": int(sum(x.shape[0] * x.shape[3] for x in batches)),
                  "compile_s": t1 - t0, "first_s": passes[0], "second_s": passes[1]}))
"""


def record_batches(photo: Path, out: Path) -> Path:
    """The recogniser inputs ``OcrPipeline()`` feeds for ``photo`` (second call: warm), as an .npz."""
    from edgevl.tasks.ocr import OcrPipeline
    from edgevl.vision.io import read_image

    pipe = OcrPipeline()
    image = read_image(photo)
    pipe(image)
    rec = pipe.recognizer
    run = rec.engine.run
    seen: list[np.ndarray] = []

    def recording(feeds: Any) -> Any:
        seen.append(np.array(next(iter(feeds.values()))))
        return run(feeds)

    rec.engine.run = recording  # type: ignore[method-assign]
    try:
        pipe(image)
    finally:
        rec.engine.run = run  # type: ignore[method-assign]
    np.savez(out, *seen)
    return rec.bundle.path / rec.bundle.manifest.models["model"].file


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--photo", default="shelf_one.jpg")
    ap.add_argument("--data", type=Path, default=oc.LIBRARY)
    ap.add_argument("--out", type=Path, default=oc.RESULTS)
    args = ap.parse_args(argv)
    photo = args.data / args.photo
    if not photo.is_file():
        print(f"skip: {photo} not found (the library dataset lives in ../shared)")
        return 0
    with tempfile.TemporaryDirectory(prefix="ov-first-call-") as d:
        npz = Path(d) / "batches.npz"
        model = record_batches(photo, npz)
        load_before = bench.start()
        runs: dict[str, list[dict[str, Any]]] = {p: [] for p in POLICIES}
        for r in range(args.runs):
            for p in POLICIES if r % 2 == 0 else tuple(reversed(POLICIES)):
                out = subprocess.run([sys.executable, "-c", CHILD, str(npz), str(model), p],
                                     check=True, capture_output=True, text=True).stdout
                runs[p].append(json.loads(out.strip().splitlines()[-1]))
    med = {p: {k: statistics.median(float(x[k]) for x in v) for k in v[0]} for p, v in runs.items()}
    first = med["as batched"]
    report = oc.new_result(
        "ov_first_call", load_before, photo=args.photo, runs=args.runs, per_run=runs, median=med,
        headline=(f"{args.photo}: the recogniser's first pass over {int(first['shapes'])} batch shapes "
                  f"{first['first_s']:.2f} s, warm {first['second_s']:.2f} s "
                  f"(+{first['first_s'] - first['second_s']:.2f} s in a fresh process)"))

    bench.write_result(report, args.out / "ov_first_call", render)
    return 0



def render(r: Any) -> str:
    rows = [[p, int(m["shapes"]), int(m["batches"]), int(m["columns"]), f"{m['compile_s']:.2f}",
             f"{m['first_s']:.3f}", f"{m['second_s']:.3f}", f"{m['first_s'] - m['second_s']:+.3f}"]
            for p, m in r["median"].items()]
    return bench.render_markdown(r, "OpenVINO: the recogniser's first pass over a photo's batch shapes", [
        bench.Table(["policy", "distinct shapes", "batches", "input columns", "compile s", "first pass s",
                     "second pass s", "first - second s"], rows)],
        [f"{r['photo']}: the batches `OcrPipeline()` feeds the PP-OCRv6 small recogniser; each policy in "
         f"a fresh process, {r['runs']} runs interleaved, medians",
         "OpenVINO CPU plugin, precision auto (bf16 on this CPU), LATENCY hint, one stream"])


if __name__ == "__main__":
    raise SystemExit(main())
