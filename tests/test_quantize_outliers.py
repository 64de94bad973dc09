"""int8 options for inputs the calibration data under-represents: outlier channels of a down-projection
computed in float beside the int8 MatMul (``outlier_ratio``), and nodes kept float by name
(``keep_float``), through ``quantize_bundle`` and the ``edgevl quantize`` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
cv2 = pytest.importorskip("cv2")

import onnx  # noqa: E402
from edgevl_export.quantize import quantize_bundle, quantized_nodes  # noqa: E402
from edgevl_export.quantize.guard import cosines  # noqa: E402
from edgevl_export.quantize.outliers import split_outliers  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from test_quantize import sensitive_bundle  # noqa: E402

from edgevl.bundle import Bundle  # noqa: E402
from edgevl.cli import main  # noqa: E402
from edgevl.errors import QuantizationError  # noqa: E402
from edgevl.tasks.encoders import ImageEncoder  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Bundle, Path]:
    return sensitive_bundle(tmp_path_factory.mktemp("outliers"))


def smoothed_pair(big: float) -> onnx.ModelProto:
    """x (8 channels, channel 5 ``big`` times the others) → SmoothQuant Mul → down (8→3) and, from a
    second Mul, an up-projection (8→12): the shapes ``smooth`` leaves behind."""
    rng = np.random.default_rng(0)
    inv = np.full(8, 0.5, np.float32)
    inits = [numpy_helper.from_array(inv, "inv"), numpy_helper.from_array(inv.copy(), "inv2"),
             numpy_helper.from_array(rng.normal(0, 1, (8, 3)).astype(np.float32), "Wd"),
             numpy_helper.from_array(rng.normal(0, 1, (8, 12)).astype(np.float32), "Wu"),
             numpy_helper.from_array(np.eye(8, dtype=np.float32) * np.where(np.arange(8) == 5, big, 1.0)
                                     .astype(np.float32), "E")]
    nodes = [helper.make_node("MatMul", ["x0", "E"], ["x"], name="E"),
             helper.make_node("Mul", ["x", "inv"], ["xs"], name="x_SmoothQuantMul"),
             helper.make_node("MatMul", ["xs", "Wd"], ["down"], name="down"),
             helper.make_node("Mul", ["x", "inv2"], ["xs2"], name="x2_SmoothQuantMul"),
             helper.make_node("MatMul", ["xs2", "Wu"], ["up"], name="up")]
    g = helper.make_graph(nodes, "pair", [helper.make_tensor_value_info("x0", TensorProto.FLOAT, [2, 5, 8])],
                          [helper.make_tensor_value_info("down", TensorProto.FLOAT, [2, 5, 3]),
                           helper.make_tensor_value_info("up", TensorProto.FLOAT, [2, 5, 12])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(v) for v in s.run(None, {"x0": x})]


def test_split_is_exact_in_float_and_only_on_down_projections() -> None:
    x = np.random.default_rng(1).uniform(-1, 1, (2, 5, 8)).astype(np.float32)
    model = smoothed_pair(big=40.0)
    ref = run(model, x)
    info = split_outliers(model, [{"x0": x}], ratio=6.0)
    assert info["channels"] == {"down": [5]}  # the up-projection (8→12) is left alone
    assert info["float_matmuls"] == ["down_outliers_MatMul"]
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert inits["inv"][5] == 0 and not inits["Wd"][5].any()  # the int8 part no longer sees channel 5
    assert inits["inv2"][5] == 0.5  # the other Mul's scales untouched
    for a, b in zip(ref, run(model, x), strict=True):
        assert np.allclose(a, b, rtol=1e-5, atol=1e-5)
    # below the ratio nothing is split and the graph is unchanged
    calm = smoothed_pair(big=3.0)
    before = calm.SerializeToString()
    assert split_outliers(calm, [{"x0": x}], ratio=6.0)["matmuls"] == 0
    assert calm.SerializeToString() == before


def test_outlier_channel_goes_float_and_the_rest_stays_int8(tiny: tuple[Bundle, Path],
                                                            tmp_path: Path) -> None:
    bundle, images = tiny
    out = quantize_bundle(bundle.path, images, tmp_path / "int8", samples=32, holdout=16, smooth_alpha=0.8,
                          outlier_ratio=6.0)
    report = out.manifest.extra["quantization"]
    role = report["roles"]["image"]
    assert report["outlier_ratio"] == 6.0
    # B writes channel 0 ~1000x the others into C's input; C (32→16) is the only down-projection
    assert role["outliers"]["channels"] == {"C": [0]}
    model = onnx.load(str(out.model_path("image")))
    assert sorted(quantized_nodes(model)) == ["A", "B", "C"] and role["kept_float"] == []
    ops = {n.name: n.op_type for n in model.graph.node}
    assert ops["C_outliers_MatMul"] == "MatMul" and "C_outliers_MatMul" not in quantized_nodes(model)
    files = sorted(images.iterdir())[:8]
    assert cosines(ImageEncoder(bundle).encode(files), ImageEncoder(out).encode(files)).min() >= 0.99


def test_keep_float_patterns(tiny: tuple[Bundle, Path], tmp_path: Path) -> None:
    bundle, images = tiny
    out = quantize_bundle(bundle.path, images, tmp_path / "int8", samples=32, holdout=16, smooth_alpha=None,
                          keep_float=["[C]"])
    role = out.manifest.extra["quantization"]["roles"]["image"]
    # without SmoothQuant C alone breaks the guard (test_quantize): kept float from the start, no sweep
    assert role["kept_float_by_user"] == ["C"] and role["kept_float"] == ["C"]
    assert role["attempts"][0]["passed"] and "most_sensitive" not in role
    assert sorted(quantized_nodes(onnx.load(str(out.model_path("image"))))) == ["A", "B"]
    with pytest.raises(QuantizationError, match=r"match no quantisable node"):
        quantize_bundle(bundle.path, images, tmp_path / "x", samples=32, holdout=16,
                        keep_float=["C", "*/fc9"])
    with pytest.raises(QuantizationError, match=r"matches all 3"):
        quantize_bundle(bundle.path, images, tmp_path / "y", samples=32, holdout=16, keep_float=["*"])
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cli_options(tiny: tuple[Bundle, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle, images = tiny
    base = ["quantize", str(bundle.path), "--calibration", str(images), "--samples", "32", "--holdout", "16"]
    assert main([*base, "--out", str(tmp_path / "a"), "--outlier-ratio", "0.5"]) == 2
    assert "edgevl: error: outlier_ratio 0.5 must be > 1" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "b"), "--keep-float", "nothing*"]) == 2
    assert "edgevl: error:" in capsys.readouterr().err and not (tmp_path / "b").exists()
    rc = main([*base, "--out", str(tmp_path / "c"), "--smooth-alpha", "0.8", "--outlier-ratio", "6",
               "--keep-float", "A", "--json"])
    assert rc == 0
    q = json.loads(capsys.readouterr().out)["quantization"]
    assert q["keep_float"] == ["A"] and q["roles"]["image"]["kept_float_by_user"] == ["A"]
    assert q["roles"]["image"]["outliers"]["channels"] == {"C": [0]}
