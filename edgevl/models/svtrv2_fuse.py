"""SVTRv2's graph with its GELU and LayerNorm fused for the CPU backends, checked against the wheel's.

The wheel's opset-17 graph already holds its 40 LayerNorms as single ``LayerNormalization`` nodes;
GELU is spelled ``x * (erf(x / sqrt 2) + 1) * 0.5`` (21 times). ONNX Runtime's
``onnxruntime.transformers`` optimiser (model type ``vit``) rewrites those into ``BiasGelu``/``Gelu``
nodes in the stored file, so every CPU backend that reads the bundle sees them fused (ONNX Runtime
does the same GELU fusion itself when it loads the wheel's graph; the attention blocks match none of
its attention patterns and stay MatMul → Mul → Softmax → MatMul: measured where the time goes in
benchmarks/results/svtrv2_speed.md).

This is a build-side module (it needs the ``onnx`` package); :func:`fused_copy` runs it in a child
process (``python -m edgevl.models.svtrv2_fuse SRC DST``) so the process that runs OCR never loads
``onnx``. The check runs both graphs at every input size on a seeded random input and records the
largest output difference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: largest output difference (probabilities) accepted from the rewrite
TOLERANCE = 1e-3


def rewrite(src: Path, dst: Path) -> dict[str, int]:
    """Write the fused graph of ``src`` to ``dst``; the op counts that changed."""
    import onnx
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    before = Counter(n.op_type for n in onnx.load(str(src)).graph.node)
    opt = optimize_model(str(src), model_type="vit", num_heads=0, hidden_size=0, opt_level=0,
                         optimization_options=FusionOptions("vit"), use_gpu=False)
    opt.save_model_to_file(str(dst))
    after = Counter(n.op_type for n in opt.model.graph.node)
    return {k: after[k] - before[k] for k in sorted(set(before) | set(after)) if after[k] != before[k]}


def check(src: Path, dst: Path, sizes: Sequence[tuple[int, int]]) -> float:
    """Largest |difference| of the two graphs' outputs over ``sizes`` (batch 2, seeded input)."""
    import numpy as np
    import onnxruntime as ort

    a = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for h, w in sizes:
        x = rng.uniform(-1, 1, (2, 3, h, w)).astype(np.float32)
        ya = a.run(None, {a.get_inputs()[0].name: x})[0]
        yb = b.run(None, {b.get_inputs()[0].name: x})[0]
        worst = max(worst, float(np.abs(ya - yb).max()))
    return worst


def fused_copy(src: Path, dst: Path, sizes: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """Run the rewrite and its check in a child process; what ``extra.graph`` records
    (``applied``, op count changes, ``max_abs_diff``, or ``reason`` when not applied)."""
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    cmd = [sys.executable, "-m", "edgevl.models.svtrv2_fuse", str(src), str(dst),
           "--sizes", ";".join(f"{h}x{w}" for h, w in sizes)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
    except (OSError, subprocess.SubprocessError) as e:
        return {"applied": False, "reason": f"{type(e).__name__}: {e}"[:300]}
    if r.returncode != 0:
        return {"applied": False,
                "reason": (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1][:300]}
    try:
        info: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as e:
        return {"applied": False, "reason": f"unreadable check result ({e})"}
    if float(info["max_abs_diff"]) > TOLERANCE:
        dst.unlink(missing_ok=True)
        return {"applied": False, "reason": f"outputs differ by {info['max_abs_diff']:.2g} > {TOLERANCE:g}"}
    return {"applied": True, **info}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="fuse SVTRv2's GELU/LayerNorm and check the result")
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--sizes", default="32x128")
    args = ap.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(";") if s]
    import logging

    logging.disable(logging.WARNING)  # the optimiser logs shape-inference fallbacks on stderr
    ops = rewrite(args.src, args.dst)
    diff = check(args.src, args.dst, [(s[0], s[1]) for s in sizes])
    print(json.dumps({"ops": ops, "max_abs_diff": diff, "checked_sizes": [list(s) for s in sizes]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
