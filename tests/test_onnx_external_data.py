"""An ONNX file inside a bundle cannot pull weights from outside the bundle folder.

ONNX initializers may live in "external data" files named by a path inside the graph. edgevl opens
sessions from a file path (never from bytes), so ONNX Runtime resolves those names against the
model's folder and refuses ``../``, absolute paths and symlinks that leave it. This pins that
behaviour of the installed onnxruntime (docs/security.md relies on it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgevl.backends.ort import OrtEngine
from edgevl.errors import BundleError

onnx = pytest.importorskip("onnx")


def _model_with_external(path: Path, location: str) -> None:
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "W")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "48")):
        e = w.external_data.add()
        e.key, e.value = k, v
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                              initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


def test_external_data_outside_the_model_folder_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(12, dtype=np.float32).tobytes())
    inside = tmp_path / "bundle"
    inside.mkdir()
    (inside / "link.bin").symlink_to(secret)
    (inside / "ok.bin").write_bytes(secret.read_bytes())
    _model_with_external(inside / "ok.onnx", "ok.bin")  # control: inside the folder loads
    y = OrtEngine(inside / "ok.onnx").run({"x": np.ones((1, 4), np.float32)})
    assert np.allclose(next(iter(y.values())), [[18.0, 22.0, 26.0]])
    for name, location in (("up", "../secret.bin"), ("abs", str(secret)), ("link", "link.bin")):
        _model_with_external(inside / f"{name}.onnx", location)
        with pytest.raises(BundleError, match=r"(?i)external data"):
            OrtEngine(inside / f"{name}.onnx")
