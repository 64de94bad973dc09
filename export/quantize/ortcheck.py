"""What ONNX Runtime's CPU provider actually runs in int8 for a QDQ model.

A QDQ model only says which tensors are quantised; ORT's CPU provider decides at session creation
which ``DequantizeLinear → op → QuantizeLinear`` groups it fuses into int8 kernels (``QLinearConv``,
``MatMulIntegerToFloat``, ``QLinearAdd`` …). A group it does not fuse runs as the float op with
the Q/DQ passes still around it, which is slower than the fp32 model. This module reads the
session's optimised graph and counts both, so the int8 report says how much of the model really
runs in int8 on this backend.

Measured case (ORT 1.32, x86): with symmetric int8 activations ORT converts each
``QuantizeLinear → DequantizeLinear`` pair to uint8 (zero point 128) before fusing, and it only
does so when the QuantizeLinear feeds a single DequantizeLinear. A Conv whose output is read twice
— PP-OCR's hard-swish ``y * HardSigmoid(y)`` — therefore stays a float Conv: 33 of the PP-OCRv4
recogniser's 38 Convs.
"""

from __future__ import annotations

import collections
import tempfile
from pathlib import Path
from typing import Any

#: ops ORT's CPU provider runs on quantised integers (fused from QDQ groups)
INT8_KERNELS = ("QLinearConv", "QLinearMatMul", "MatMulIntegerToFloat", "QGemm", "QLinearAdd", "QLinearMul",
                "QLinearConcat", "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearSigmoid",
                "QLinearLeakyRelu", "QLinearSoftmax", "QLinearWhere", "DynamicQuantizeMatMul",
                "MatMulInteger", "ConvInteger")
#: float ops that carry a weight: when ORT still feeds them from a DequantizeLinear, int8 is not used
WEIGHT_OPS = ("Conv", "MatMul", "Gemm", "FusedConv", "FusedMatMul", "FusedGemm", "NhwcFusedConv")


def ort_cpu_fusion(path: Path | str) -> dict[str, Any]:
    """Counts from ORT's optimised graph of ``path`` (CPU provider, all optimisations).

    ``int8_kernels``: op type → count of integer kernels; ``float_behind_dq``: op type → count of
    weight ops still fed by a DequantizeLinear (quantised in the file, float at run time);
    ``quantize_linear`` / ``dequantize_linear``: the Q/DQ passes left.
    """
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgevl-ortcheck-") as tmp:
        opt = Path(tmp) / "optimized.onnx"
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.optimized_model_filepath = str(opt)
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        graph = onnx.load(str(opt)).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    ops = collections.Counter(n.op_type for n in graph.node)
    behind = collections.Counter(
        n.op_type for n in graph.node
        if n.op_type in WEIGHT_OPS and any(producer.get(i) == "DequantizeLinear" for i in n.input))
    return {
        "int8_kernels": {k: ops[k] for k in INT8_KERNELS if ops[k]},
        "float_behind_dq": dict(sorted(behind.items())),
        "quantize_linear": ops["QuantizeLinear"],
        "dequantize_linear": ops["DequantizeLinear"],
    }


def describe(fusion: dict[str, Any]) -> str:
    """One line: what runs in int8 and what stays float behind DequantizeLinear."""
    k = ", ".join(f"{n} {op}" for op, n in fusion["int8_kernels"].items()) or "none"
    f = ", ".join(f"{n} {op}" for op, n in fusion["float_behind_dq"].items()) or "none"
    return (f"ORT CPU runs in int8: {k}; still float behind DequantizeLinear: {f}; "
            f"{fusion['quantize_linear']} QuantizeLinear / {fusion['dequantize_linear']} "
            "DequantizeLinear left")
