"""Graph clean-ups keep a node whose output only an If branch reads (SVTRv2's decoder has such nodes:
the TensorRT rewrite and the int8 prune used to drop them and leave an invalid graph)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from edgevl_export.quantize.qdq import prune
from edgevl_export.trt.rewrite import _drop_dead, subgraph_reads
from onnx import TensorProto, helper


def _model() -> onnx.ModelProto:
    then = helper.make_graph([helper.make_node("Identity", ["t"], ["a"])], "then", [],
                             [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])])
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["b"])], "else", [],
                              [helper.make_tensor_value_info("b", TensorProto.FLOAT, [2])])
    g = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["t"]),  # read only inside the then-branch
         helper.make_node("Neg", ["x"], ["unused"]),  # read by nobody
         helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
              helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def test_subgraph_reads_names_outer_tensors() -> None:
    m = _model()
    assert "t" in subgraph_reads(m.graph.node[2]) and subgraph_reads(m.graph.node[0]) == set()


def test_prune_and_drop_dead_keep_what_a_branch_reads() -> None:
    m = _model()
    prune(m)
    assert [n.output[0] for n in m.graph.node] == ["t", "y"]
    out = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": np.array([1.0, 2.0], np.float32), "c": np.array(True)})[0]
    assert out.tolist() == [-1.0, -2.0]
    kept = _drop_dead(list(_model().graph.node), {"y"})
    assert [n.output[0] for n in kept] == ["t", "y"]
