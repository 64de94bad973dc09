"""edgevl engine build / edgevl.backends.tensorrt.{plans,build}: the parts that need no TensorRT
(the builder calls themselves: tests/test_tensorrt_fake.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from edgevl.backends.tensorrt import build as tb
from edgevl.backends.tensorrt import build_engines
from edgevl.backends.tensorrt import plans as tp
from edgevl.bundle import load_bundle, sha256_file, write_bundle
from edgevl.cli import main
from edgevl.errors import BackendError, InputError


@pytest.fixture()
def bundle(tmp_path: Path, affine_onnx: tuple[Path, np.ndarray]) -> Path:
    return write_bundle(tmp_path / "b", name="n", task="t", models={"model": affine_onnx[0]}).path


def _with_trt_graph(path: Path) -> Path:
    """Pretend `export --target tensorrt` ran: a graph file + config.tensorrt in the manifest."""
    (path / "tensorrt").mkdir()
    (path / "tensorrt" / "model.onnx").write_bytes((path / "model.onnx").read_bytes())
    m = json.loads((path / "manifest.json").read_text())
    m["files"]["tensorrt/model.onnx"] = sha256_file(path / "tensorrt" / "model.onnx")
    m["config"]["tensorrt"] = {"graphs": {"model": "tensorrt/model.onnx"}}
    (path / "manifest.json").write_text(json.dumps(m))
    return path


def test_choose_defaults_to_the_bundle_precision_and_graph(bundle: Path) -> None:
    b = load_bundle(bundle)
    c = tp.choose(b, "model")
    assert (c.precision, c.graph, c.uses_plugin) == ("fp32", bundle / "model.onnx", False)
    assert c.graph_sha256 == sha256_file(bundle / "model.onnx")
    assert tp.choose(b, "model", "fp16").precision == "fp16"


def test_choose_rejects_int8_without_qdq_and_unknown_precisions(bundle: Path) -> None:
    b = load_bundle(bundle)
    with pytest.raises(InputError, match=r"int8 .*Q/DQ"):
        tp.choose(b, "model", "int8")
    with pytest.raises(InputError, match="fp8"):
        tp.choose(b, "model", "fp8")


def test_plugin_graph_needs_the_plugin_library(bundle: Path, tmp_path: Path) -> None:
    b = load_bundle(_with_trt_graph(bundle))
    with pytest.raises(InputError, match="--plugins"):
        tp.choose(b, "model")
    lib = tmp_path / "libedgevl_trt_plugin.so"
    c = tp.choose(b, "model", plugins=[lib])
    assert c.uses_plugin and c.graph == bundle / "tensorrt" / "model.onnx"
    assert not tp.choose(b, "model", use_plugin_graph=False).uses_plugin


def test_recorded_engine_build_sets_the_default_precision(bundle: Path) -> None:
    b = load_bundle(bundle)
    tp.record_default(b, tp.BuildResult("model", bundle / "engines" / "x.plan", "fp16", True, 1.0,
                                        bundle / "model.onnx"))
    assert tp.choose(b, "model").precision == "fp16"  # what `edgevl bench --backend tensorrt` will run


def test_layernorm_layers_are_pinned_only_below_tensorrt_8_6() -> None:
    assert tb.pin_layernorm("8.5.2.2", "fp16") and tb.pin_layernorm("8.5.2", "int8")
    assert not tb.pin_layernorm("8.6.1", "fp16") and not tb.pin_layernorm("10.3.0", "fp16")
    assert not tb.pin_layernorm("8.5.2", "fp32")
    names = ["/ln_1/LayerNormalization", "/ln_1/LayerNormalization_1 [ReduceMean]", "/attn/MatMul",
             "/ln_2/LayerNormalization_pow", "/mlp/ln_2b"]
    assert tb.layers_to_pin_fp32(names, ["/ln_1/LayerNormalization", "/ln_2/LayerNormalization"]) == [0, 1, 3]
    assert tb.layers_to_pin_fp32(names, []) == []


def test_plan_and_timing_cache_keys_separate_gpus_precisions_and_plugins(
        bundle: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGEVL_HOME", str(tmp_path / "home"))
    c = tp.choose(load_bundle(bundle), "model")
    prof = {"x": ((1, 4), (8, 4), (32, 4))}
    k1 = tp.plan_key(c, "Orin", "8.7", "8.5.2", prof, [])
    assert k1["profile"] == {"x": [[1, 4], [8, 4], [32, 4]]} and k1["precision"] == "fp32"
    assert k1 != tp.plan_key(c, "Orin", "8.7", "8.5.2", prof, ["/x/libedgevl_trt_plugin.so"])
    assert k1 != tp.plan_key(c, "RTX 4090", "8.9", "8.5.2", prof, [])
    t = tp.timing_cache_path("NVIDIA Jetson AGX Orin", "8.7", "10.3.0")
    assert t == tmp_path / "home" / "tensorrt" / "timing-nvidia-jetson-agx-orin-sm8.7-trt10.3.0.cache"


def test_build_engines_without_tensorrt_is_a_backend_error(bundle: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendError, match="tensorrt is not installed"):
        build_engines(load_bundle(bundle))


def test_engine_build_cli_errors_are_one_line_exit_2(bundle: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    cases = [
        ([str(tmp_path / "nope")], "not a bundle directory"),
        ([str(bundle), "--precision", "int8"], "int8 (Q/DQ) bundle"),
        ([str(bundle), "--plugins", str(tmp_path / "missing.so")], "plugin library not found"),
        ([str(bundle), "--role", "image"], "no model 'image'"),
        ([str(bundle), "--max-batch", "4", "--opt-batch", "8"], "--opt-batch 8"),
        ([str(bundle)], "tensorrt is not installed"),
    ]
    for args, msg in cases:
        assert main(["engine", "build", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("edgevl: error: ") and msg in err and err.count("\n") == 1, err


def test_manifest_tensorrt_graphs_must_stay_inside_the_bundle(bundle: Path) -> None:
    from edgevl.errors import BundleError

    m = json.loads((bundle / "manifest.json").read_text())
    m["config"]["tensorrt"] = {"graphs": {"model": "../outside.onnx"}}
    (bundle / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match=r"tensorrt\.graphs\.model"):
        load_bundle(bundle)
    m["config"]["tensorrt"] = {"graphs": {"model": 3}}
    (bundle / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="expected a file name"):
        load_bundle(bundle)
