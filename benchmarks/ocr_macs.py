"""How far each OCR stage is from what the cores can do: multiply-accumulates (MACs) of the detector
and recogniser graphs at the shapes a shelf photo gives them, and, given measured stage seconds, the
achieved GMAC/s against the cores' fp32 FMA peak.

MACs are counted from the ONNX graph after shape inference at the given input shape: Conv
(N·Cout·Hout·Wout·Cin/group·kh·kw), ConvTranspose, MatMul and Gemm; element-wise work is ignored.
Peak: cores × FMA lanes per cycle × GHz (``--fma-per-cycle`` 16 fp32 = two 256-bit FMA pipes, as on
AMD Zen 4 (AVX-512 runs as 2×256) and most AVX2 cores; ``--ghz`` the sustained clock).

    python benchmarks/ocr_macs.py --model ppocrv6 --det 1344x1792 --rec-columns 31888 \\
        --det-s 0.32 --rec-s 0.65 --cores 2 --ghz 2.6

Prints a table (no timing of its own: the seconds come from ocr_vs_rapidocr's stage split).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def count_macs(path: Path, shape: tuple[int, ...]) -> float:
    """MACs of one inference of the ONNX model at input ``shape`` (Conv, ConvTranspose, MatMul, Gemm)."""
    import numpy as np
    import onnx
    from onnx import shape_inference

    m = onnx.load(str(path))
    inp = m.graph.input[0]
    for d, n in zip(inp.type.tensor_type.shape.dim, shape, strict=True):
        d.ClearField("dim_param")
        d.dim_value = n
    m = shape_inference.infer_shapes(m, data_prop=True)
    shapes: dict[str, list[int]] = {}
    for vi in [*m.graph.value_info, *m.graph.input, *m.graph.output]:
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    for init in m.graph.initializer:
        shapes[init.name] = list(init.dims)
    total = 0.0
    for node in m.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type in ("Conv", "ConvTranspose"):
            w = shapes.get(node.input[1])
            out = shapes.get(node.output[0])
            x = shapes.get(node.input[0])
            if not w or not out or not x or 0 in out:
                continue
            group = int(attrs.get("group", 1))
            if node.op_type == "Conv":
                total += float(np.prod(out)) * (w[1] * int(np.prod(w[2:])))
            else:
                total += float(np.prod(x)) * (w[1] * int(np.prod(w[2:]))) / max(1, group) * group
        elif node.op_type in ("MatMul", "Gemm"):
            a, b = shapes.get(node.input[0]), shapes.get(node.input[1])
            out = shapes.get(node.output[0])
            if not a or not b or not out or 0 in out:
                continue
            k = a[-1] if not (node.op_type == "Gemm" and attrs.get("transA", 0)) else a[-2]
            total += float(np.prod(out)) * k
    return total


def main(argv: list[str] | None = None) -> int:
    from edgevl.models.ppocr import default_bundles

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ppocrv6")
    ap.add_argument("--det", default="1344x1792", help="detector input HxW")
    ap.add_argument("--rec-columns", type=int, default=31888, help="recogniser input columns per photo "
                    "(Timings.rec_columns)")
    ap.add_argument("--det-s", type=float, help="measured detector seconds")
    ap.add_argument("--rec-s", type=float, help="measured recogniser seconds")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--ghz", type=float, default=2.6)
    ap.add_argument("--fma-per-cycle", type=int, default=16, help="fp32 FMA lanes per core per cycle")
    args = ap.parse_args(argv)

    det, _, rec = default_bundles(args.model)
    h, w = (int(v) for v in args.det.lower().split("x"))
    det_macs = count_macs(det.model_path(), (1, 3, h, w))
    rec_macs = count_macs(rec.model_path(), (1, 3, 48, 320)) / 320 * args.rec_columns
    peak = args.cores * args.fma_per_cycle * args.ghz  # GMAC/s
    rows: list[list[Any]] = []
    for name, macs, sec in (("det", det_macs, args.det_s), ("rec", rec_macs, args.rec_s)):
        row = [name, f"{macs / 1e9:.1f}", f"{macs / 1e9 / peak:.3f}"]
        if sec:
            row += [f"{sec:.3f}", f"{macs / 1e9 / sec:.1f}", f"{100 * macs / 1e9 / sec / peak:.0f} %"]
        rows.append(row)
    print(f"{args.model}: peak {peak:.0f} GMAC/s ({args.cores} cores x {args.fma_per_cycle} FMA/cycle x "
          f"{args.ghz} GHz)")
    print("stage | GMAC | s at peak | s measured | GMAC/s | of peak")
    for r in rows:
        print(" | ".join(str(x) for x in r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
