"""int8 for conv nets (the PP-OCR shape): QDQ form of Convs and what ORT's CPU provider fuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")

from edgevl_export.quantize.data import FeedReader  # noqa: E402
from edgevl_export.quantize.ortcheck import describe, ort_cpu_fusion  # noqa: E402
from edgevl_export.quantize.qdq import quantize, quantized_nodes, weight_nodes  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

C = 8


def conv_net(path: Path, *, hardswish: bool) -> Path:
    """x → Conv 3x3 → act → depthwise Conv 3x3 → act → Conv 1x1 → y.

    ``hardswish``: act is ``a * HardSigmoid(a)`` (PP-LCNet's; each conv output is read twice),
    else ``Relu`` (read once).
    """
    rng = np.random.default_rng(0)
    w = {"w1": rng.normal(0, 0.3, (C, 3, 3, 3)), "w2": rng.normal(0, 0.3, (C, 1, 3, 3)),
         "w3": rng.normal(0, 0.3, (C, C, 1, 1))}
    b = {f"b{k}": rng.normal(0, 0.1, C) for k in (1, 2, 3)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             *act("c1", "a1", hardswish),
             helper.make_node("Conv", ["a1", "w2", "b2"], ["c2"], name="dwconv", pads=[1, 1, 1, 1], group=C),
             *act("c2", "a2", hardswish),
             helper.make_node("Conv", ["a2", "w3", "b3"], ["y"], name="pwconv")]
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in {**w, **b}.items()]
    g = helper.make_graph(nodes, "convnet",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, C, 16, 16])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def act(x: str, y: str, hardswish: bool) -> list[object]:
    if not hardswish:
        return [helper.make_node("Relu", [x], [y])]
    return [helper.make_node("HardSigmoid", [x], [f"{y}_h"], alpha=1 / 6, beta=0.5),
            helper.make_node("Mul", [x, f"{y}_h"], [y])]


def quantised(tmp_path: Path, hardswish: bool) -> Path:
    src = conv_net(tmp_path / "fp32.onnx", hardswish=hardswish)
    rng = np.random.default_rng(1)
    feeds = FeedReader([{"x": rng.normal(0, 1, (1, 3, 16, 16)).astype(np.float32)} for _ in range(4)])
    out = tmp_path / "int8.onnx"
    quantize(src, out, feeds, nodes=weight_nodes(onnx.load(str(src))))
    return out


@pytest.mark.parametrize("hardswish", [False, True])
def test_conv_qdq_form_is_symmetric_per_channel(tmp_path: Path, hardswish: bool) -> None:
    q = onnx.load(str(quantised(tmp_path, hardswish)))
    convs = {k: v for k, v in quantized_nodes(q).items() if v["op"] == "Conv"}
    assert set(convs) == {"conv1", "dwconv", "pwconv"}
    assert all(info["symmetric"] for info in convs.values())
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    producer = {o: n for n in q.graph.node for o in n.output}
    for n in q.graph.node:
        if n.op_type != "Conv":
            continue
        wdq = producer[n.input[1]]  # the weight: int8, one scale per output channel (axis 0), zero point 0
        assert wdq.op_type == "DequantizeLinear" and inits[wdq.input[0]].dtype == np.int8
        assert inits[wdq.input[1]].shape == (C,) and not inits[wdq.input[2]].any()
        assert next(a.i for a in wdq.attribute if a.name == "axis") == 0
        xdq = producer[n.input[0]]  # the activation: per-tensor
        assert xdq.op_type == "DequantizeLinear" and inits[xdq.input[1]].size == 1
    acts = [n for n in q.graph.node if n.op_type == "QuantizeLinear"]
    assert acts and all(inits[n.input[2]].dtype == np.int8 and inits[n.input[1]].size == 1 for n in acts)


def test_ort_fuses_every_conv_when_each_output_is_read_once(tmp_path: Path) -> None:
    fusion = ort_cpu_fusion(quantised(tmp_path, hardswish=False))
    assert fusion["int8_kernels"].get("QLinearConv") == 3
    assert fusion["float_behind_dq"] == {}


def test_ort_leaves_convs_float_when_hardswish_reads_their_output_twice(tmp_path: Path) -> None:
    """ORT 1.32 on x86: a symmetric int8 Q read by two DQs is not converted to uint8, so the Conv
    that produces it is not fused (the PP-OCR slowdown). If this starts failing, ORT fuses them
    now: re-measure benchmarks/int8_bench.py --kinds rec,det and update docs/int8.md."""
    fusion = ort_cpu_fusion(quantised(tmp_path, hardswish=True))
    assert fusion["float_behind_dq"].get("Conv", 0) >= 2
    assert fusion["int8_kernels"].get("QLinearConv", 0) <= 1
    assert "still float behind DequantizeLinear: " in describe(fusion)


def test_fusion_count_of_a_float_model_is_empty(tmp_path: Path) -> None:
    fusion = ort_cpu_fusion(conv_net(tmp_path / "f.onnx", hardswish=False))
    assert fusion == {"int8_kernels": {}, "float_behind_dq": {}, "quantize_linear": 0, "dequantize_linear": 0}


def test_sweep_bypass_of_conv_nodes_feeds_them_float_weights_and_inputs(tmp_path: Path) -> None:
    """The sensitivity sweep's graph edit on Convs with a bias (ORT names the bias DQ's output after
    the float bias): the edited model must load, its Convs read no DequantizeLinear, and it is
    closer to fp32 than the int8 model (only the Q/DQ on Conv outputs are left)."""
    import onnxruntime as ort
    from edgevl_export.quantize.qdq import bypass

    q = quantised(tmp_path, hardswish=True)
    f = onnx.load(str(tmp_path / "fp32.onnx"))
    edited = bypass(onnx.load(str(q)), f, ["conv1", "dwconv", "pwconv"])
    producer = {o: n.op_type for n in edited.graph.node for o in n.output}
    convs = [n for n in edited.graph.node if n.op_type == "Conv"]
    assert len(convs) == 3 and all(producer.get(i) != "DequantizeLinear" for n in convs for i in n.input)
    x = np.random.default_rng(2).normal(0, 1, (1, 3, 16, 16)).astype(np.float32)
    sessions = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
                for m in (f, edited, onnx.load(str(q)))]
    y32, y_edit, y8 = (s.run(None, {"x": x})[0] for s in sessions)
    assert np.abs(y_edit - y32).max() < np.abs(y8 - y32).max()
