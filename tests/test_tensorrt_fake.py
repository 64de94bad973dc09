"""The TensorRT backend's run and build paths against a fake ``tensorrt`` module and a fake CUDA layer
that record every call (tests/fake_tensorrt.py): no TensorRT or GPU here, so this is what checks
the calls the backend makes, their order and their arguments. The fake runs the bundle's ONNX
graph with ONNX Runtime on the bytes at the bound device addresses, so outputs are compared with
numpy's own computation of the model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_affine_onnx
from fake_tensorrt import Fakes, make_fakes
from tiny_encoders import make_text_onnx, make_tokenizer, token_table

from edgevl.backends import EngineOptions, TensorRTOptions, open_engine, registry
from edgevl.backends.tensorrt import TensorRTEngine, build_engines
from edgevl.backends.tensorrt import engine as trt_engine
from edgevl.bundle import Bundle, load_bundle, sha256_file, write_bundle
from edgevl.errors import BackendError, InputError

OPTS = EngineOptions(backend="tensorrt", tensorrt=TensorRTOptions(max_batch=8))


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDGEVL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EDGEVL_TRT_PLUGINS", raising=False)
    return tmp_path / "home"


@pytest.fixture()
def affine(tmp_path: Path, home: Path) -> tuple[Bundle, np.ndarray]:
    path, w = make_affine_onnx(tmp_path / "affine.onnx")  # y = x @ W, x float32 [batch, 4], y [batch, 3]
    return write_bundle(tmp_path / "b", name="affine", task="t", models={"model": path}), w


def text_bundle(root: Path) -> Bundle:
    """Two int64 inputs [batch, seq] with seq 1 / 128 / 256 (the tokenizer's limit)."""
    work = root / "src"
    work.mkdir(parents=True, exist_ok=True)
    return write_bundle(
        root / "text", name="text", task="text-embedding",
        models={"text": make_text_onnx(work / "text.onnx", ("input_ids", "attention_mask"), "emb")},
        extra_files={"tokenizer.json": make_tokenizer(work / "tokenizer.json")},
        config={"tokenizer": "tokenizer.json", "max_length": 256, "pad_id": 0, "normalized": True},
    )


def _profile_calls(f: Fakes) -> dict[str, tuple[Any, ...]]:
    return {c[0]: c[1:] for c in f.calls("profile.set_shape")}


# --------------------------------------------------------------------------- the run path


def test_engine_binds_copies_enqueues_and_synchronises_on_its_stream(
        affine: tuple[Bundle, np.ndarray]) -> None:
    bundle, w = affine
    f = make_fakes()
    eng = TensorRTEngine(bundle, "model", OPTS, runtime=f.runtime)
    # built from the manifest's range (batch 1..1024, opt 1) capped at max_batch 8, opt = the cap
    assert _profile_calls(f) == {"x": ((1, 4), (8, 4), (8, 4))}
    (stream,) = f.calls("stream_create")
    handle = stream[0]
    assert f.calls("context.set_optimization_profile_async") == [(0, handle)]
    assert f.calls("init_libnvinfer_plugins") == [("",)]

    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    start = len(f.log)
    y = eng.run({"x": x})["y"]
    np.testing.assert_allclose(y, x @ w, rtol=1e-6)
    run = f.log[start:]
    names = [c[0] for c in run]
    assert names == ["context.set_input_shape", "malloc", "context.set_tensor_address", "h2d",
                     "malloc", "context.set_tensor_address", "context.execute_async_v3", "d2h", "sync"]
    (_, x_bytes, x_ptr), (_, y_bytes, y_ptr) = [c for c in run if c[0] == "malloc"]
    assert (x_bytes, y_bytes) == (3 * 4 * 4, 3 * 3 * 4)
    assert run[0] == ("context.set_input_shape", "x", (3, 4))
    assert ("context.set_tensor_address", "x", x_ptr) in run
    assert ("context.set_tensor_address", "y", y_ptr) in run
    assert ("h2d", x_ptr, 48, handle) in run and ("d2h", y_ptr, 36, handle) in run
    assert ("context.execute_async_v3", handle) in run and run[-1] == ("sync", handle)

    # a smaller batch reuses the buffers; a larger one frees and reallocates them
    start = len(f.log)
    np.testing.assert_allclose(eng.run({"x": x[:2]})["y"], x[:2] @ w, rtol=1e-6)
    assert "malloc" not in [c[0] for c in f.log[start:]]
    x5 = np.ones((5, 4), np.float32)
    start = len(f.log)
    np.testing.assert_allclose(eng.run({"x": x5})["y"], x5 @ w, rtol=1e-6)
    assert [c[:2] for c in f.log[start:] if c[0] in ("malloc", "free")] == [
        ("free", x_ptr), ("malloc", 80), ("free", y_ptr), ("malloc", 60)]

    assert (eng.backend, eng.device_kind, eng.providers) == ("tensorrt", "gpu", ["TensorRT 10.3.0"])
    assert eng.device == "TensorRT 10.3.0 on NVIDIA Fake Orin (sm 8.7)"
    mem = eng.device_memory_mb()
    plan_bytes = eng.plan_path.stat().st_size
    assert mem is not None and mem == pytest.approx(((3 << 20) + 80 + 60 + plan_bytes) / 2**20)

    eng.close()
    assert f.cuda.memory == {} and f.cuda.streams == {}
    assert eng.device_memory_mb() is None
    with pytest.raises(BackendError, match="engine is closed"):
        eng.run({"x": x})
    eng.close()  # idempotent: nothing freed twice (the fake asserts on a double free)


def test_shapes_outside_the_profile_are_a_typed_error_before_any_copy(
        affine: tuple[Bundle, np.ndarray]) -> None:
    bundle, _ = affine
    f = make_fakes()
    eng = TensorRTEngine(bundle, "model", OPTS, runtime=f.runtime)
    start = len(f.log)
    # inside the bundle's range (1..1024) but past the profile's max batch 8
    with pytest.raises(InputError, match=r"outside the engine's optimisation profile \(dim 0 is 9, the "
                                         r"profile allows 1\.\.8\); rebuild with a larger max_batch"):
        eng.run({"x": np.zeros((9, 4), np.float32)})
    with pytest.raises(InputError, match=r"outside the bundle's range 1\.\.1024"):
        eng.run({"x": np.zeros((1025, 4), np.float32)})
    with pytest.raises(InputError, match="expected dtype float32"):
        eng.run({"x": np.zeros((2, 4), np.float64)})
    assert f.log[start:] == []  # nothing reached TensorRT or CUDA
    eng.close()


def test_profile_refused_by_tensorrt_is_an_input_error(affine: tuple[Bundle, np.ndarray]) -> None:
    """When the plan's profile is narrower than the one the engine believes (a stale plan), TensorRT's
    own refusal (set_input_shape → False) is the same typed error."""
    bundle, _ = affine
    f = make_fakes()
    eng = TensorRTEngine(bundle, "model", OPTS, runtime=f.runtime)
    f.trt.engines[-1].profiles[0]["x"] = ((1, 4), (2, 4), (2, 4))
    with pytest.raises(InputError, match=r"shape \(3, 4\) is outside the engine's optimisation profile;"):
        eng.run({"x": np.zeros((3, 4), np.float32)})
    assert "context.execute_async_v3" not in f.names()
    eng.close()


def test_profile_follows_the_manifest_ranges_per_axis_and_int64_becomes_int32_below_trt10(
        tmp_path: Path, home: Path) -> None:
    b = text_bundle(tmp_path)
    f = make_fakes("8.6.1")
    opts = EngineOptions(backend="tensorrt",
                         tensorrt=TensorRTOptions(max_batch=4, opt_batch=2, dims={"seq": 200}))
    eng = TensorRTEngine(b, "text", opts, runtime=f.runtime)
    want = ((1, 1), (2, 200), (4, 256))
    assert _profile_calls(f) == {"input_ids": want, "attention_mask": want}
    assert f.calls("builder.create_network") == [(1,)]  # EXPLICIT_BATCH before TensorRT 10
    ids = np.array([[5, 6, 7, 0], [8, 9, 0, 0]], np.int64)
    mask = (ids > 0).astype(np.int64)
    start = len(f.log)
    out = eng.run({"input_ids": ids, "attention_mask": mask})["emb"]
    np.testing.assert_allclose(out, (token_table()[ids] * mask[..., None]).sum(1), rtol=1e-6)
    assert [c[1:3] for c in f.log[start:] if c[0] == "context.set_input_shape"] == [
        ("input_ids", (2, 4)), ("attention_mask", (2, 4))]
    assert [c[2] for c in f.log[start:] if c[0] == "h2d"] == [2 * 4 * 4, 2 * 4 * 4]  # int32 on the device
    with pytest.raises(InputError, match=r"outside the bundle's range 1\.\.256"):
        eng.run({"input_ids": np.ones((1, 257), np.int64), "attention_mask": np.ones((1, 257), np.int64)})
    eng.close()


def test_open_engine_reaches_the_tensorrt_package_and_bench_reports_its_memory(
        affine: tuple[Bundle, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    from edgevl.bench import BenchSettings, bench_bundles

    bundle, w = affine
    f = make_fakes()
    monkeypatch.setattr(trt_engine, "default_runtime", lambda: f.runtime)
    monkeypatch.setitem(registry.REGISTRY, "tensorrt",
                        dataclasses.replace(registry.REGISTRY["tensorrt"], unavailable=lambda: None))
    with open_engine(bundle, "model", OPTS) as eng:
        assert isinstance(eng, TensorRTEngine)
        x = np.ones((2, 4), np.float32)
        np.testing.assert_allclose(eng.run({"x": x})["y"], x @ w, rtol=1e-6)
    assert f.cuda.memory == {}  # the context manager closed it
    run = bench_bundles([bundle.path], BenchSettings(backend="tensorrt", batches=(1, 4), iters=2, warmup=1))
    assert [r.status for r in run.results] == ["ok", "ok"]
    assert all(r.providers == ("TensorRT 10.3.0",) for r in run.results)
    mem = run.results[0].device_memory_mb
    assert mem is not None and mem > 3.0  # the engine's own figure: activations 3 MiB + buffers + plan
    # the bench capped the profile at its largest batch
    assert _profile_calls(f)["x"] == ((1, 4), (4, 4), (4, 4))


def test_plan_is_cached_and_rebuilt_on_request(affine: tuple[Bundle, np.ndarray]) -> None:
    bundle, _ = affine
    f = make_fakes()
    TensorRTEngine(bundle, "model", OPTS, runtime=f.runtime).close()
    TensorRTEngine(bundle, "model", OPTS, runtime=f.runtime).close()
    assert len(f.calls("builder.build_serialized_network")) == 1
    assert len(f.calls("runtime.deserialize_cuda_engine")) == 2
    rebuild = dataclasses.replace(OPTS, tensorrt=dataclasses.replace(OPTS.tensorrt, rebuild=True))
    TensorRTEngine(bundle, "model", rebuild, runtime=f.runtime).close()
    other = EngineOptions(backend="tensorrt", tensorrt=TensorRTOptions(max_batch=2))
    TensorRTEngine(bundle, "model", other, runtime=f.runtime).close()
    assert len(f.calls("builder.build_serialized_network")) == 3
    assert len(list((bundle.path / "engines").glob("*.plan"))) == 2  # max_batch 8 and 2


def test_a_plan_tensorrt_cannot_read_or_whose_io_differs_is_a_backend_error(
        affine: tuple[Bundle, np.ndarray]) -> None:
    bundle, _ = affine
    f = make_fakes()
    f.trt.rename_in_plan = {"y": "logits"}
    with pytest.raises(BackendError, match=r"engine IO \['logits', 'x'\].* != manifest \['x', 'y'\]"):
        TensorRTEngine(bundle, "model", OPTS, runtime=f.runtime)
    for plan in (bundle.path / "engines").glob("*.plan"):
        plan.write_bytes(b"\x00corrupt")
    with pytest.raises(BackendError, match="could not deserialise the plan; delete it to rebuild"):
        TensorRTEngine(bundle, "model", OPTS, runtime=f.runtime)


def test_bundle_and_environment_plugins_are_loaded_before_the_graph_is_parsed(
        affine: tuple[Bundle, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle, _ = affine
    env_lib = tmp_path / "libenv_plugin.so"
    opt_lib = tmp_path / "libedgevl_trt_plugin.so"
    for lib in (env_lib, opt_lib):
        lib.write_bytes(b"\x7fELF")
    monkeypatch.setenv("EDGEVL_TRT_PLUGINS", str(env_lib))
    f = make_fakes()
    opts = dataclasses.replace(OPTS, tensorrt=dataclasses.replace(OPTS.tensorrt, plugins=(str(opt_lib),)))
    eng = TensorRTEngine(bundle, "model", opts, runtime=f.runtime)
    assert f.calls("dlopen") == [(str(env_lib),), (str(opt_lib),)]
    names = f.names()
    order = [names.index(n) for n in ("dlopen", "init_libnvinfer_plugins", "parser.parse_from_file")]
    assert order == sorted(order)
    assert eng.plugins == [str(env_lib), str(opt_lib)]
    eng.close()
    f.dlopen_fails.add(opt_lib.name)
    with pytest.raises(BackendError, match=r"libedgevl_trt_plugin\.so: cannot load TensorRT plugin library "
                                           r"\(.*invalid ELF header\)"):
        TensorRTEngine(bundle, "model", opts, runtime=f.runtime)
    monkeypatch.setenv("EDGEVL_TRT_PLUGINS", str(tmp_path / "missing.so"))
    with pytest.raises(BackendError, match=r"missing\.so: TensorRT plugin library not found"):
        TensorRTEngine(bundle, "model", OPTS, runtime=f.runtime)


# --------------------------------------------------------------------------- the builder


def _int8_bundle(tmp_path: Path) -> Bundle:
    path, _ = make_affine_onnx(tmp_path / "q.onnx")
    return write_bundle(tmp_path / "q", name="q", task="t", models={"model": path}, precision="int8")


def test_builder_flags_follow_the_precision(affine: tuple[Bundle, np.ndarray], tmp_path: Path) -> None:
    bundle, _ = affine
    want = {"fp32": set(), "fp16": {"FP16"}}
    for precision, flags in want.items():
        f = make_fakes()
        (res,) = build_engines(bundle, precision=precision, runtime=f.runtime)
        assert (res.precision, res.built) == (precision, True)
        assert f.trt.builders[-1].config is not None and f.trt.builders[-1].config.flags == flags, precision
        assert f.calls("config.set_memory_pool_limit") == [("WORKSPACE", 1 << 30)]
        assert f.calls("builder.create_network") == [(0,)]  # TensorRT 10: explicit batch is implicit
    f = make_fakes()
    (res,) = build_engines(_int8_bundle(tmp_path), workspace=1 << 20, runtime=f.runtime)
    assert res.precision == "int8" and f.trt.builders[-1].config.flags == {"FP16", "INT8"}  # type: ignore[union-attr]
    assert f.calls("config.set_memory_pool_limit") == [("WORKSPACE", 1 << 20)]
    # the plan the fake built records the flags: the engine file is what the builder made
    assert json.loads(res.plan.read_bytes())["flags"] == ["FP16", "INT8"]


def _layernorm_onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("LayerNormalization", ["x", "g", "b"], ["n"], name="/ln_1/LayerNormalization",
                          axis=-1),
         helper.make_node("MatMul", ["n", "W"], ["y"], name="/fc/MatMul")],
        "ln", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        initializer=[numpy_helper.from_array(np.ones(4, np.float32), "g"),
                     numpy_helper.from_array(np.zeros(4, np.float32), "b"),
                     numpy_helper.from_array(np.ones((4, 2), np.float32), "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_layernorm_layers_are_pinned_to_fp32_for_fp16_below_trt_8_6(tmp_path: Path, home: Path) -> None:
    onnx_path = _layernorm_onnx(tmp_path / "ln.onnx")
    b = write_bundle(tmp_path / "ln", name="ln", task="t", models={"model": onnx_path})
    f = make_fakes("8.5.2.2")
    build_engines(b, precision="fp16", runtime=f.runtime)
    builder = f.trt.builders[-1]
    assert builder.network is not None and builder.config is not None
    ln, fc = builder.network.layers
    assert (ln.precision, ln.output_types) == ("float32", {0: "float32"})
    assert (fc.precision, fc.output_types) == (None, {})
    assert builder.config.flags == {"FP16", "OBEY_PRECISION_CONSTRAINTS"}
    f = make_fakes("8.6.1")
    build_engines(b, precision="fp16", rebuild=True, runtime=f.runtime)
    ln, _ = f.trt.builders[-1].network.layers  # type: ignore[union-attr]
    assert ln.precision is None and f.trt.builders[-1].config.flags == {"FP16"}  # type: ignore[union-attr]


def test_build_engines_profiles_records_and_timing_cache(tmp_path: Path, home: Path) -> None:
    b = text_bundle(tmp_path)
    f = make_fakes()
    (res,) = build_engines(b, max_batch=16, opt_batch=4, dims={"seq": 64}, runtime=f.runtime)
    want = ((1, 1), (4, 64), (16, 256))
    assert _profile_calls(f) == {"input_ids": want, "attention_mask": want}
    assert json.loads(res.plan.read_bytes())["profiles"] == [{k: [list(s) for s in want]
                                                              for k in ("input_ids", "attention_mask")}]
    record = json.loads((b.path / "engines" / "text.default.json").read_text())
    assert record == {"precision": "fp32", "plan": str(res.plan), "graph": str(b.model_path("text"))}
    cache = home / "tensorrt" / "timing-nvidia-fake-orin-sm8.7-trt10.3.0.cache"
    assert f.calls("config.create_timing_cache") == [(b"",)] and cache.read_bytes() == b"+timings"
    # a second build starts from the saved timings and adds to them
    (again,) = build_engines(b, max_batch=16, opt_batch=4, dims={"seq": 64}, rebuild=True, runtime=f.runtime)
    assert again.built and f.calls("config.create_timing_cache")[-1] == (b"+timings",)
    assert cache.read_bytes() == b"+timings+timings"
    (cached,) = build_engines(b, max_batch=16, opt_batch=4, dims={"seq": 64}, runtime=f.runtime)
    assert not cached.built and cached.plan == res.plan
    with pytest.raises(InputError, match=r"dims seq=300: outside the bundle's range 1\.\.256"):
        build_engines(b, dims={"seq": 300}, runtime=f.runtime)


def test_build_engines_uses_the_plugin_graph_and_loads_the_library(
        affine: tuple[Bundle, np.ndarray], tmp_path: Path) -> None:
    bundle, _ = affine
    p = bundle.path
    (p / "tensorrt").mkdir()
    make_affine_onnx(p / "tensorrt" / "model.onnx", seed=1)  # stands in for the plugin-rewritten graph
    m = json.loads((p / "manifest.json").read_text())
    m["files"]["tensorrt/model.onnx"] = sha256_file(p / "tensorrt" / "model.onnx")
    m["config"]["tensorrt"] = {"graphs": {"model": "tensorrt/model.onnx"}}
    (p / "manifest.json").write_text(json.dumps(m))
    b = load_bundle(p)
    lib = tmp_path / "libedgevl_trt_plugin.so"
    lib.write_bytes(b"\x7fELF")
    f = make_fakes()
    (res,) = build_engines(b, plugins=[lib], runtime=f.runtime)
    assert f.calls("dlopen") == [(str(lib),)]
    assert f.calls("parser.parse_from_file") == [(str(p / "tensorrt" / "model.onnx"),)]
    assert res.graph == p / "tensorrt" / "model.onnx"
    (plain,) = build_engines(b, plugins=[lib], use_plugin_graph=False, runtime=f.runtime)
    assert f.calls("parser.parse_from_file")[-1] == (str(p / "model.onnx"),) and plain.plan != res.plan


def test_parser_and_builder_failures_are_backend_errors(affine: tuple[Bundle, np.ndarray]) -> None:
    bundle, _ = affine
    f = make_fakes()
    f.trt.parse_errors = ["In node 0 (MatMul): UNSUPPORTED_NODE"]
    with pytest.raises(BackendError, match=r"ONNX parser failed: In node 0 \(MatMul\): UNSUPPORTED"):
        build_engines(bundle, runtime=f.runtime)
    f = make_fakes()
    f.trt.build_ok = False
    with pytest.raises(BackendError, match="TensorRT failed to build an engine"):
        build_engines(bundle, runtime=f.runtime)
    assert not list((bundle.path / "engines").glob("*.plan"))  # nothing half-written left behind


def test_version_tuple_and_minimum_version() -> None:
    from edgevl.backends.tensorrt.runtime import check_version, version_tuple

    assert version_tuple("10.3.0.26") == (10, 3, 0) and version_tuple("8.6.1.post1") == (8, 6, 1)
    assert version_tuple("dev") == (0,)
    check_version("8.5.2")
    with pytest.raises(BackendError, match=r"TensorRT 8\.4\.3 is older than 8\.5"):
        check_version("8.4.3")
