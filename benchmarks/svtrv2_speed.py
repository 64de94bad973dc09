"""SVTRv2 per-crop latency on the CPU at each input size: the wheel's graph, edgevl's fused fp32 bundle
and the int8 bundle (``edgevl quantize``), where the time goes, and word accuracy of each on the
STR set (the int8 guard: <= 1 point lost). PP-OCRv6 small's recogniser beside it (48 x 320, a
typical word-line input).

Latency: ONNX Runtime CPU and OpenVINO's CPU plugin (f32, and ``auto``: bf16 on CPUs with it), batch 1,
one intra-op thread (two engines' thread pools on two cores would spin against each other; one thread
keeps the figures comparable), median of ``--runs`` runs after warm-up,
graphs interleaved run by run so load drifts hit all alike. Where the time goes: ORT's profiler,
kernel time per op type at 32 x 128.

    flock /tmp/edgevl-bench.lock python benchmarks/svtrv2_speed.py [--int8 DIR]

Writes benchmarks/results/svtrv2_speed.md and .json.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib as bench
import numpy as np
import ocr_common as oc
import onnxruntime as ort
import strgen

from edgevl.bundle import load_bundle
from edgevl.models import svtrv2
from edgevl.models.recognizers import ensure
from edgevl.tasks import ocr


def session(path: Path, threads: int = 1, profile: str | None = None) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    if profile:
        so.enable_profiling = True
        so.profile_file_prefix = profile
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


#: OpenVINO runs (graph, precision): f32 is the fp32 arithmetic of the target; ``auto`` is what
#: `edgevl ocr` runs on OpenVINO (bf16 on CPUs that have it); the CPU plugin fuses attention,
#: LayerNorm and GELU itself when it compiles the graph
OV_RUNS = (("wheel fp32", "f32"), ("wheel fp32", "auto"), ("int8", "auto"))


class _Runner:
    """One graph on one engine, called as ``runner(x)``: ONNX Runtime CPU or OpenVINO's CPU plugin,
    one thread each (the machine has two cores; one keeps the engines comparable)."""

    def __init__(self, path: Path, engine: str = "ort", precision: str = "f32") -> None:
        if engine == "ort":
            s = session(path)
            name = s.get_inputs()[0].name
            self._call = lambda x: s.run(None, {name: x})
        else:
            import openvino as ov

            cfg: dict[str, Any] = {"INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY",
                                   "NUM_STREAMS": 1}
            if precision != "auto":
                cfg["INFERENCE_PRECISION_HINT"] = precision
            req = ov.Core().compile_model(str(path), "CPU", cfg).create_infer_request()
            self._call = lambda x: req.infer({0: x})

    def __call__(self, x: np.ndarray) -> None:
        self._call(x)


def latency(graphs: dict[str, Path], sizes: list[tuple[int, int]], runs: int,
            ov_runs: tuple[tuple[str, str], ...] = ()) -> dict[str, dict[str, float]]:
    """Median ms per graph (ONNX Runtime) and per ``(graph, precision)`` of ``ov_runs`` (OpenVINO,
    named ``"<graph> on OpenVINO <precision>"``), all interleaved run by run."""
    runners = {k: _Runner(p) for k, p in graphs.items()}
    runners |= {f"{g} on OpenVINO {prec}": _Runner(graphs[g], "openvino", prec) for g, prec in ov_runs
                if g in graphs}
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, float]] = {k: {} for k in runners}
    for h, w in sizes:
        x = rng.uniform(-1, 1, (1, 3, h, w)).astype(np.float32)
        times: dict[str, list[float]] = {k: [] for k in runners}
        for r in runners.values():
            for _ in range(2):
                r(x)
        for _ in range(runs):
            for k, r in runners.items():
                t0 = time.perf_counter()
                r(x)
                times[k].append(time.perf_counter() - t0)
        for k in runners:
            out[k][f"{h}x{w}"] = 1000 * statistics.median(times[k])
    return out


def where_time_goes(path: Path, size: tuple[int, int]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        s = session(path, profile=str(Path(d) / "p"))
        x = np.random.default_rng(0).uniform(-1, 1, (1, 3, *size)).astype(np.float32)
        for _ in range(4):
            s.run(None, {s.get_inputs()[0].name: x})
        events = json.loads(Path(s.end_profiling()).read_text())
    per: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time"):
            name = str(e["name"])
            op = str(e["args"]["op_name"])
            if op in ("MatMul", "FusedMatMul", "MatMulIntegerToFloat", "QLinearMatMul"):
                op = f"{op} ({_matmul_kind(name)})"
            per[op] += float(e["dur"])
    total = sum(per.values())
    share = {k: round(100 * v / total, 1) for k, v in per.most_common(12)}
    return share | {"total_ms": round(total / 4000, 1)}


def _matmul_kind(name: str) -> str:
    """Which part of a block a MatMul node is: the MLP, the q/k/v or output projection, attention's
    own QK^T / AV products, or other (patch embedding, decoder head)."""
    if "/mlp/" in name:
        return "MLP"
    if "/qkv/" in name or "/proj/" in name:
        return "qkv/proj"
    if "mixer" in name or "attn" in name:
        return "attention QK/AV"
    return "other"


def accuracy(bundle: Path | None, crops: list[strgen.WordCrop], cls: ocr.AngleClassifier) -> float:
    rec = ocr.TextRecognizer(rec=str(bundle)) if bundle is not None else ocr.TextRecognizer()
    pipe = ocr.OcrPipeline(classifier=cls, recognizer=rec)
    ok = 0
    for s in range(0, len(crops), 64):
        part = crops[s:s + 64]
        for r, c in zip(pipe.read_crops([c.image for c in part]), part, strict=True):
            ok += oc.str_label(r.text) == oc.str_label(c.label)
    return ok / len(crops)


def build_int8(work: Path) -> Path:
    """The int8 bundle as docs/ocr.md makes it: 72 generated crops (seed 7, not the STR set's seed 0),
    the wheel's graph, ``edgevl quantize --max-accuracy-drop 0.01``."""
    calib = work / "calib"
    strgen.main(["--out", str(calib), "--n", "12", "--seed", "7",
                 "--distortions", "clean,rotate,blur,noise,perspective,lowres"])
    svtrv2.build_bundle(work, fuse=False)  # ORT's calibrator finds no scale behind BiasGelu outputs
    subprocess.run([sys.executable, "-m", "edgevl", "quantize", str(work / svtrv2.BUNDLE_NAME),
                    "--calibration", str(calib), "--out", str(work / "int8"), "--max-accuracy-drop", "0.01"],
                   check=True, stdout=subprocess.DEVNULL)
    return work / "int8"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--int8", type=Path, default=None,
                    help="the int8 SVTRv2 bundle (default: built here with edgevl quantize, docs/ocr.md)")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--n", type=int, default=40, help="STR crops per distortion for the accuracy guard")
    ap.add_argument("--out", type=Path, default=oc.RESULTS)
    args = ap.parse_args(argv)
    work = tempfile.TemporaryDirectory(prefix="svtrv2-speed-")
    if args.int8 is None:  # built before the timed part, outside the measurements
        args.int8 = build_int8(Path(work.name))
    load_before = bench.start()
    fused = ensure("svtrv2")
    graphs = {"wheel fp32": svtrv2.package_dir() / svtrv2.MODEL_FILE,
              "fused fp32": fused.path / fused.manifest.models["model"].file}
    bundles: dict[str, Path | None] = {"fused fp32": fused.path}
    int8_info: dict[str, Any] = {}
    if args.int8 is not None:
        b8 = load_bundle(args.int8)
        graphs["int8"] = b8.path / b8.manifest.models["model"].file
        bundles["int8"] = b8.path
        q = dict(b8.manifest.extra.get("quantization", {}))
        int8_info = {"guard": q.get("guard"), "data": q.get("data"), "method": q.get("method"),
                     "kept_float": q.get("roles", {}).get("model", {}).get("kept_float"),
                     "ort_cpu": q.get("roles", {}).get("model", {}).get("ort_cpu")}
    sizes = list(svtrv2.SIZES)
    lat = latency(graphs, sizes, args.runs, OV_RUNS)
    pp = ocr.TextRecognizer()
    pp_path = pp.bundle.path / pp.bundle.manifest.models["model"].file
    pp_lat = latency({"ppocrv6 rec": pp_path}, [(48, 320)], args.runs)["ppocrv6 rec"]
    profile = {k: where_time_goes(p, (32, 128)) for k, p in graphs.items()}
    crops = strgen.generate(args.n, 0, strgen.DISTORTIONS, strgen.find_fonts())
    base = ocr.OcrPipeline()
    assert base.classifier is not None
    acc = {k: accuracy(b, crops, base.classifier) for k, b in bundles.items()}
    acc_engine = base.recognizer.engine.device  # the default engine read_crops runs on
    acc["ppocrv6"] = accuracy(None, crops, base.classifier)
    report = oc.new_result("svtrv2_speed", load_before, runs=args.runs, sizes=[list(s) for s in sizes],
                           latency_ms=lat, ppocrv6_latency_ms=pp_lat, profile=profile, accuracy=acc,
                           n_crops=len(crops), graph=dict(fused.manifest.extra.get("graph", {})),
                           int8=int8_info, accuracy_engine=acc_engine,
                           headline=_headline(lat, acc))
    bench.write_result(report, args.out / "svtrv2_speed", render)
    work.cleanup()
    return 0


def _headline(lat: dict[str, dict[str, float]], acc: dict[str, float]) -> str:
    k = "32x128"
    parts = [f"{g} {v[k]:.1f} ms" for g, v in lat.items()]
    parts += [f"{g} {100 * a:.1f}%" for g, a in acc.items()]
    return "at 32x128: " + ", ".join(parts)


_OV_F32 = "wheel fp32 on OpenVINO f32"


def render(report: dict[str, Any]) -> str:
    lat = report["latency_ms"]
    names = list(lat)
    rows = []
    for h, w in report["sizes"]:
        k = f"{h}x{w}"
        row: list[Any] = [k, *[f"{lat[n][k]:.1f}" for n in names]]
        w_ = lat["wheel fp32"][k]
        row += [f"{w_ / lat[n][k]:.2f}x" for n in names[1:]]
        if "int8" in lat:
            row.append(f"{lat['fused fp32'][k] / lat['int8'][k]:.2f}x")
        if _OV_F32 in lat:
            row.append(f"{lat['wheel fp32'][k] / min(lat['fused fp32'][k], lat[_OV_F32][k]):.2f}x")
        rows.append(row)
    header = ["input (h x w)", *[f"{n} ms" for n in names], *[f"{n} vs wheel" for n in names[1:]]]
    if "int8" in lat:
        header.append("int8 vs fused fp32")
    if _OV_F32 in lat:
        header.append("fastest fp32 (either engine) vs wheel on ORT")
    acc = report["accuracy"]
    blocks: list[bench.Block] = [
        bench.Table(header, rows),
        f"PP-OCRv6 small recogniser, same run, 48 x 320: {report['ppocrv6_latency_ms']['48x320']:.1f} ms.",
        "",
        "Word accuracy on the STR set (edgevl's STR mode, vertical words included; each bundle on the "
        f"default engine, {report.get('accuracy_engine', 'not recorded')}): "
        + ", ".join(f"{k} {100 * v:.1f}%" for k, v in acc.items()),
        "",
        "Where the time goes (ORT profiler, kernel time share per op type, 32 x 128, one thread):",
        "",
    ]
    ops = sorted({o for p in report["profile"].values() for o in p if o != "total_ms"})
    blocks.append(bench.Table(["op", *report["profile"]],
                              [[o, *[f"{p.get(o, 0):.1f}%" for p in report["profile"].values()]]
                               for o in ops]
                              + [["kernel total ms", *[p["total_ms"] for p in report["profile"].values()]]]))
    notes = [f"batch 1, 1 intra-op thread, median of {report['runs']} runs, every engine and graph "
             "interleaved; load average before/after recorded above",
             "OpenVINO: the CPU plugin compiles the wheel's graph (its own attention, LayerNorm and GELU "
             "fusions); `auto` is the precision `edgevl ocr` runs there (bf16 on this CPU), f32 is fp32",
             f"fused graph: {report['graph']}",
             f"int8: `edgevl quantize` (static QDQ, docs/int8.md): {report.get('int8', {})}"]
    return bench.render_markdown(report, "SVTRv2 on the CPU: wheel graph, fused fp32, int8", blocks, notes)


if __name__ == "__main__":
    raise SystemExit(main())
