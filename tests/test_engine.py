from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgevl.backends import Engine, EngineOptions, open_engine, validate_feeds
from edgevl.backends.ort import OrtEngine
from edgevl.bundle import TensorSpec, write_bundle
from edgevl.errors import BackendError, InputError

SPECS = (TensorSpec("x", "float32", ("batch", 3, 8)), TensorSpec("ids", "int64", ("batch", "seq")))


def _ok() -> dict[str, np.ndarray]:
    return {"x": np.zeros((2, 3, 8), np.float32), "ids": np.zeros((2, 5), np.int64)}


def test_valid_feeds_pass() -> None:
    validate_feeds(SPECS, _ok())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.pop("ids"), r"missing \['ids'\]"),
        (lambda f: f.update(extra=np.zeros(1, np.float32)), r"unknown \['extra'\]"),
        (lambda f: f.update(x=f["x"].astype(np.float64)), "expected dtype float32, got float64"),
        (lambda f: f.update(x=np.zeros((3, 8), np.float32)), "expected rank 3"),
        (lambda f: f.update(x=np.zeros((2, 4, 8), np.float32)), "dim 1 must be 3"),
        (lambda f: f.update(ids=np.zeros((0, 5), np.int64)), "empty array"),
        (lambda f: f.update(ids=[[1, 2]]), "expected a numpy array"),
    ],
)
def test_bad_feeds_raise(change: object, message: str) -> None:
    feeds = _ok()
    change(feeds)  # type: ignore[operator]
    with pytest.raises(InputError, match=message):
        validate_feeds(SPECS, feeds)


def test_engine_validates_before_running(affine_onnx: tuple[Path, np.ndarray]) -> None:
    eng = OrtEngine(affine_onnx[0])
    assert isinstance(eng, Engine)
    with pytest.raises(InputError, match="dim 1 must be 4"):
        eng.run({"x": np.zeros((1, 5), np.float32)})
    with pytest.raises(InputError, match="dtype"):
        eng.run({"x": np.zeros((1, 4), np.int64)})
    out = eng.run({"x": np.eye(4, dtype=np.float32)})
    np.testing.assert_allclose(out["y"], affine_onnx[1], rtol=1e-6)


def test_options_threads_and_optimisation(affine_onnx: tuple[Path, np.ndarray]) -> None:
    eng = OrtEngine(affine_onnx[0], EngineOptions(threads=1, graph_optimization="basic"))
    assert eng.providers == ["CPUExecutionProvider"]
    with pytest.raises(BackendError, match="graph optimisation"):
        OrtEngine(affine_onnx[0], EngineOptions(graph_optimization="max"))


def test_unavailable_provider_is_a_clear_error(tmp_path: Path, affine_onnx: tuple[Path, np.ndarray]) -> None:
    import onnxruntime as ort

    b = write_bundle(tmp_path / "b", name="n", task="t", models={"model": affine_onnx[0]})
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(BackendError, match="CUDAExecutionProvider"):
        open_engine(b, options=EngineOptions(backend="ort-cuda"))
    with pytest.raises(BackendError, match="unknown backend"):
        open_engine(b, options=EngineOptions(backend="directml"))  # openvino is a backend now
