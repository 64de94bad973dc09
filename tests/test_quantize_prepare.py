"""ORT's pre-processing must not leave files in the user's working directory.

When its symbolic shape inference gives up (here: two batch dimensions with different names meet
in an Add), it saves ``sym_shape_infer_temp.onnx`` (and, for models with weights, a
``<uuid>.data`` file) into the current directory before raising.
"""

from __future__ import annotations

from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx", reason="the export extra (onnx) is not installed")

from edgevl_export.quantize.qdq import prepare  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402


def test_prepare_leaves_the_working_directory_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "y"], ["z"]), helper.make_node("Relu", ["z"], ["out"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["a", 4]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)])
    src = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(src))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    info = prepare(src, tmp_path / "prep.onnx")
    assert info["symbolic_shape"] is False  # the symbolic pass did give up: the case under test
    assert sorted(p.name for p in cwd.iterdir()) == []
    onnx.checker.check_model(str(tmp_path / "prep.onnx"))
