"""The bench harness on tiny bundles built here: real runs, inputs, schema, CLI, unavailable backends."""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgevl.backends.ort import OrtEngine
from edgevl.bench import BenchSettings, bench_bundles, load_run, validate, write_run
from edgevl.bench.harness import time_loop
from edgevl.bench.inputs import parse_dims, resolve_shape, synthetic_feeds
from edgevl.bench.plot import series
from edgevl.bench.tasks import bench_task
from edgevl.bundle import Bundle, TensorSpec, write_bundle
from edgevl.cli import main
from edgevl.errors import BackendError, InputError


def _model(path: Path, batch: int | str = "batch") -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 8])],
        initializer=[numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture()
def tiny(tmp_path: Path) -> Bundle:
    model = _model(tmp_path / "m.onnx")
    return write_bundle(tmp_path / "tiny", name="tiny", task="test", models={"model": model})


@pytest.fixture()
def fixed(tmp_path: Path) -> Bundle:
    return write_bundle(tmp_path / "fixed", name="fixed", task="test",
                        models={"model": _model(tmp_path / "f.onnx", batch=1)})


def test_real_run_on_a_tiny_bundle(tiny: Bundle) -> None:
    run = bench_bundles([tiny.path], BenchSettings(batches=(1, 4), iters=6, warmup=1, repeats=2))
    assert [r.batch for r in run.results] == [1, 4]
    for r in run.results:
        assert r.status == "ok" and r.stats is not None
        assert r.stats.count == 6 and len(r.samples_ms) == 6 and len(r.repeat_p50_ms) == 2
        assert r.shapes == {"x": [r.batch, 16]}
        assert r.stats.throughput_items_s == pytest.approx(r.batch * 1000.0 / r.stats.mean_ms)
        assert r.peak_rss_mb is not None and r.peak_rss_mb > 0
        assert r.device_memory_mb is None  # CPU
        assert r.providers == ("CPUExecutionProvider",)
        assert r.digest == tiny.digest
    assert run.machine["cores_logical"] >= 1 and run.machine["onnxruntime"]
    validate(run.to_dict())


def test_seconds_budget_and_fixed_batch(tiny: Bundle, fixed: Bundle) -> None:
    run = bench_bundles([tiny.path, fixed.path], BenchSettings(batches=(1, 4), seconds=0.05, warmup=0))
    by = {(r.bundle, r.batch): r for r in run.results}
    assert by[("tiny", 1)].stats is not None and by[("tiny", 1)].stats.count >= 3
    assert by[("fixed", 1)].status == "ok"
    assert by[("fixed", 4)].status == "skipped" and "fixed batch of 1" in str(by[("fixed", 4)].reason)


def test_unavailable_backends_are_reported(tiny: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # as if not installed
    import importlib.util

    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorrt" else real_find(name, *a))
    for backend in ("ort-cuda", "ort-trt", "tensorrt"):
        run = bench_bundles([tiny.path], BenchSettings(backend=backend, batches=(1, 2), iters=2))
        assert [r.status for r in run.results] == ["unavailable", "unavailable"], backend
        assert all(r.stats is None and r.reason for r in run.results)
        validate(run.to_dict())


def test_tensorrt_engine_says_it_is_not_installed(tiny: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgevl.backends import EngineOptions, open_engine
    from edgevl.backends.tensorrt import TensorRTEngine

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendError, match="tensorrt is not installed"):
        TensorRTEngine.from_bundle(tiny, "model", EngineOptions(backend="tensorrt"))
    with pytest.raises(BackendError, match="tensorrt is not installed"):
        open_engine(tiny, "model", EngineOptions(backend="tensorrt"))


def test_ctrl_c_keeps_what_was_measured(tiny: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    real = OrtEngine.run
    calls = {"n": 0}

    def run(self: OrtEngine, feeds: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 9:  # 1 warm-up + 5 timed at batch 1, 1 warm-up + 1 timed at batch 2, Ctrl-C
            raise KeyboardInterrupt
        return real(self, feeds)

    monkeypatch.setattr(OrtEngine, "run", run)
    run_ = bench_bundles([tiny.path], BenchSettings(batches=(1, 2, 4), iters=5, warmup=1))
    assert run_.interrupted
    assert [(r.batch, r.status) for r in run_.results] == [(1, "ok"), (2, "interrupted")]
    assert run_.results[0].stats is not None and run_.results[0].stats.count == 5
    assert run_.results[1].stats is not None and run_.results[1].stats.count == 1


def test_time_loop_counts_and_interrupts() -> None:
    ticks = iter(range(0, 10**12, 1_000_000))  # a fake clock: 1 ms per reading
    loop = time_loop(lambda i: None, iters=4, seconds=None, clock=lambda: next(ticks))
    assert loop.samples_ms == [1.0] * 4 and not loop.interrupted

    def boom(i: int) -> None:
        if i == 2:
            raise KeyboardInterrupt

    loop = time_loop(boom, iters=10, seconds=None)
    assert len(loop.samples_ms) == 2 and loop.interrupted


def test_shapes_from_the_manifest() -> None:
    from dataclasses import replace

    from edgevl.tasks.registry import input_dims

    det = TensorSpec("x", "float32", ("p2o.DynamicDimension.0", 3, "p2o.DynamicDimension.1", "?"))
    rec = TensorSpec("x", "float32", ("N", 3, 48, "w"))
    ids = TensorSpec("input_ids", "int64", ("batch", "seq"))
    norm = {"mean": [0.5] * 3, "std": [0.5] * 3}

    def ranged(t: TensorSpec, task: str, pre: dict[str, Any], cfg: dict[str, Any]) -> TensorSpec:
        # the ranges the exporter writes into the manifest for this task's policy
        return replace(t, dims=input_dims(task, "model", t.shape, t.dtype, pre, cfg))

    det_r = ranged(det, "text-detection", {**norm, "limit_side": 960}, {})
    assert resolve_shape(det_r, None, 2) == (2, 3, 960, 960)
    rec_r = ranged(rec, "text-recognition",
                   {**norm, "height": 48, "min_width": 48, "max_width": 1600, "width_multiple": 8}, {})
    assert resolve_shape(rec_r, None, 8) == (8, 3, 48, 320)
    assert resolve_shape(ranged(ids, "clip", {}, {"context_length": 77}), None, 1) == (1, 77)
    te = ranged(ids, "text-embedding", {}, {"max_length": 512})
    assert resolve_shape(te, None, 1) == (1, 128)
    assert resolve_shape(te, None, 1, {"seq": 512}) == (1, 512)
    with pytest.raises(InputError, match=r"seq 513 is outside the bundle's range 1\.\.512"):
        resolve_shape(te, None, 1, {"seq": 513})
    assert resolve_shape(ids, None, 3, {"seq": 64}) == (3, 64)
    assert resolve_shape(det, None, 1, {"height": 640, "?": 480}) == (1, 3, 640, 480)
    with pytest.raises(InputError, match="fixed batch of 1"):
        resolve_shape(TensorSpec("x", "float32", (1, 3)), None, 4)


def test_synthetic_feeds_are_valid() -> None:
    specs = (TensorSpec("input_ids", "int64", ("b", "s")), TensorSpec("attention_mask", "int64", ("b", "s")),
             TensorSpec("token_type_ids", "int32", ("b", "s")),
             TensorSpec("pixels", "float16", ("b", 3, 8, 8)))
    f = synthetic_feeds(specs, None, 4, {"seq": 10})
    assert f["input_ids"].shape == (4, 10) and f["input_ids"].dtype == np.int64
    assert f["input_ids"].min() >= 0 and f["input_ids"].max() < 100
    assert (f["attention_mask"] == 1).all() and (f["token_type_ids"] == 0).all()
    assert f["token_type_ids"].dtype == np.int32 and f["pixels"].dtype == np.float16
    assert parse_dims(["seq=64", "height=640"]) == {"seq": 64, "height": 640}
    for bad in ("seq", "seq=0", "=4", "seq=x"):
        with pytest.raises(InputError):
            parse_dims([bad])


def test_npz_inputs_folder(tiny: Bundle, tmp_path: Path) -> None:
    folder = tmp_path / "feeds"
    folder.mkdir()
    for i in range(3):
        np.savez(folder / f"{i}.npz", x=np.full((2, 16), i, np.float32))
    run = bench_bundles([tiny.path], BenchSettings(batches=(2,), iters=3, warmup=0, inputs=folder))
    assert run.results[0].status == "ok" and run.results[0].inputs == str(folder)
    with pytest.raises(InputError, match="batch of 2"):
        bench_bundles([tiny.path], BenchSettings(batches=(1,), iters=1, inputs=folder))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no images"):
        bench_bundles([tiny.path], BenchSettings(iters=1, inputs=empty))
    import cv2

    cv2.imwrite(str(empty / "a.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="no image preprocessing"):
        bench_bundles([tiny.path], BenchSettings(iters=1, inputs=empty))


def test_schema_round_trip_and_rejections(tiny: Bundle, tmp_path: Path) -> None:
    run = bench_bundles([tiny.path], BenchSettings(batches=(1,), iters=3, warmup=0), command="edgevl bench x")
    p = write_run(run, tmp_path / "r.json")
    doc = json.loads(p.read_text())
    assert doc["schema"] == "edgevl-bench/1" and doc["command"] == "edgevl bench x"
    back = load_run(p)
    assert back.results[0].stats == run.results[0].stats
    breakages = [
        lambda d: d.update(schema="edgevl-bench/0"),
        lambda d: d.pop("machine"),
        lambda d: d["machine"].pop("cpu"),
        lambda d: d["results"][0].update(status="great"),
        lambda d: d["results"][0].update(batch=0),
        lambda d: d["results"][0].update(stats=None),
        lambda d: d["results"][0]["stats"].update(p50_ms=float("nan")),
        lambda d: d["results"][0]["stats"].pop("p99_ms"),
        lambda d: d["results"][0].update(samples_ms=["fast"]),
        lambda d: d["results"][0].update(batch=True),
    ]
    for i, breakit in enumerate(breakages):
        bad = copy.deepcopy(doc)
        breakit(bad)
        with pytest.raises(InputError):
            validate(bad)
        assert i >= 0
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        load_run(tmp_path / "junk.json")


def test_cli_json_compare_and_plot(tiny: Bundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    png = tmp_path / "p.png"
    md = tmp_path / "a.md"
    args = [str(tiny.path), "--batch", "1,2", "--iters", "4", "--warmup", "1"]
    assert main(["bench", *args, "--out", str(a), "--plot", str(png), "--md", str(md)]) == 0
    assert main(["bench", "run", *args, "-o", str(b)]) == 0
    assert load_run(b).command == "edgevl bench " + " ".join(args[:1]) + " --backend ort-cpu --batch 1,2 " \
        "--threads 0 --warmup 1 --iters 4"
    ra = load_run(a)
    assert [(r.batch, r.status) for r in ra.results] == [(1, "ok"), (2, "ok")]
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    assert "| tiny/model | ort-cpu | fp32 | 2 | 2×16 |" in md.read_text()  # input shape: batch × 16
    capsys.readouterr()
    assert main(["bench", "compare", str(a), str(b), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert [r["batch"] for r in rep["rows"]] == [1, 2] and all("within_noise" in r for r in rep["rows"])
    assert main(["bench", "compare", str(a), str(b), "--more-a", str(b), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == [2, 1]
    assert main(["bench", *args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    validate(doc)


def test_cli_errors_exit_2(tiny: Bundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", str(tiny.path), "--batch", "1,x"]) == 2
    assert "--batch" in capsys.readouterr().err
    assert main(["bench", str(tiny.path), "--iters", "3", "--seconds", "1"]) == 2
    assert main(["bench", str(tmp_path / "nope")]) == 2
    assert main(["bench", str(tiny.path), "--backend", "gpu"]) == 2
    (tmp_path / "x.json").write_text("{}")
    assert main(["bench", "compare", str(tmp_path / "x.json"), str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "edgevl: error:" in err and "schema" in err


def test_task_mode_stages(tmp_path: Path) -> None:
    import cv2

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.jpg"), np.full((20, 30, 3), 40 * i, np.uint8))
    seen: list[int] = []

    def timer(img: np.ndarray) -> dict[str, float]:
        seen.append(int(img[0, 0, 0]))
        return {"det": 0.002, "rec": 0.001, "total": 0.004}

    run = bench_task("ocr", tmp_path, BenchSettings(warmup=0), timer=timer)
    assert sorted(set(seen)) == [0, 40, 80] and len(seen) == 3  # one pass over the photos by default
    by = {r.role: r for r in run.results}
    assert set(by) == {"det", "rec", "total"}
    assert by["total"].stats is not None and by["total"].stats.p50_ms == pytest.approx(4.0)
    assert by["total"].stats.throughput_items_s == pytest.approx(250.0)
    assert all(r.kind == "task" for r in run.results)
    validate(run.to_dict())
    with pytest.raises(InputError, match="folder of photos"):
        bench_task("ocr", tmp_path / "none", BenchSettings())


def test_plot_series_groups_by_backend_and_precision(tiny: Bundle) -> None:
    run = bench_bundles([tiny.path], BenchSettings(batches=(1, 2), iters=2, warmup=0))
    s = series(run.results)
    assert list(s) == ["tiny (test / model), input B×16"]  # the panel names the input shape (batch × 16)
    assert [p[0] for p in s["tiny (test / model), input B×16"]["ort-cpu fp32"]] == [1, 2]
    int8 = [dataclasses.replace(r, bundle="tiny-int8", precision="int8") for r in run.results]
    both = series([*run.results, *int8])
    assert list(both) == ["test / model, input B×16"]  # one panel, fp32 and int8 side by side
    assert sorted(both["test / model, input B×16"]) == ["tiny ort-cpu fp32", "tiny-int8 ort-cpu int8"]


def test_images_preprocessed_like_the_ocr_tasks(tiny: Bundle, tmp_path: Path) -> None:
    import cv2

    from edgevl.bench.inputs import folder_feeds
    from edgevl.models.ppocr import DET_PREPROCESS, REC_PREPROCESS

    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "wide.png"), np.full((100, 300, 3), 200, np.uint8))
    cv2.imwrite(str(photos / "narrow.png"), np.full((100, 120, 3), 50, np.uint8))
    model = tiny.model_path()
    det = write_bundle(tmp_path / "det", name="det", task="text-detection", models={"model": model},
                       preprocess=DET_PREPROCESS)
    spec = (TensorSpec("x", "float32", ("b", 3, "h", "w")),)
    feeds = folder_feeds(photos, spec, det, "model", 1)
    shapes = sorted(tuple(f["x"].shape) for f in feeds)
    assert shapes == [(1, 3, 96, 128), (1, 3, 96, 288)]  # multiples of the stride 32, never upscaled
    # (200 - 127.5) / 127.5 after scale 1/255 and mean/std 0.5
    wide = next(f["x"] for f in feeds if f["x"].shape[3] == 288)
    assert wide[0, 0, 0, 0] == pytest.approx((200 / 255 - 0.5) / 0.5, abs=1e-3)
    with pytest.raises(InputError, match="--batch 1"):
        folder_feeds(photos, spec, det, "model", 2)
    rec = write_bundle(tmp_path / "rec", name="rec", task="text-recognition", models={"model": model},
                       preprocess=REC_PREPROCESS)
    (batch,) = folder_feeds(photos, spec, rec, "model", 2)
    # heights resized to 48; widths 48*300/100 = 144 and 48*120/100 -> 58 -> 64, padded to the widest
    assert batch["x"].shape == (2, 3, 48, 144)


def test_ocr_task_mode_runs_the_real_pipeline(tmp_path: Path) -> None:
    import cv2

    img = np.full((96, 320, 3), 255, np.uint8)
    cv2.putText(img, "EDGE 42", (10, 64), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 3)
    cv2.imwrite(str(tmp_path / "line.png"), img)
    run = bench_task("ocr", tmp_path, BenchSettings(warmup=0, iters=2))
    by = {r.role: r for r in run.results}
    assert {"det", "cls", "rec", "total"} <= set(by)
    assert all(r.stats is not None and r.stats.count == 2 for r in by.values())
    total, det = by["total"].stats, by["det"].stats
    assert total is not None and det is not None and total.p50_ms >= det.p50_ms > 0


def test_cli_ctrl_c_writes_partial_json(tiny: Bundle, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    real = OrtEngine.run
    calls = {"n": 0}

    def run(self: OrtEngine, feeds: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 6:  # batch 1 done (1 warm-up + 3 timed), Ctrl-C in batch 2's first timed call
            raise KeyboardInterrupt
        return real(self, feeds)

    monkeypatch.setattr(OrtEngine, "run", run)
    out = tmp_path / "partial.json"
    code = main(["bench", str(tiny.path), "--batch", "1,2", "--iters", "3", "--warmup", "1",
                 "--out", str(out)])
    assert code == 130
    r = load_run(out)
    assert r.interrupted and [(x.batch, x.status) for x in r.results] == [(1, "ok")]


def test_clip_images_use_the_encoders_preprocessing(tiny: Bundle, tmp_path: Path) -> None:
    import cv2

    from edgevl.bench.inputs import folder_feeds

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        cv2.imwrite(str(photos / f"{i}.png"), np.full((40 + 10 * i, 60, 3), 30 * i, np.uint8))
    pre = {"size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "interpolation": "bicubic",
           "resize": "shortest", "crop": "center", "color": "RGB"}
    clip = write_bundle(tmp_path / "clip", name="clip", task="clip", models={"image": tiny.model_path()},
                        preprocess=pre)
    spec = (TensorSpec("pixel_values", "float32", ("batch", 3, 32, 32)),)
    (feed,) = folder_feeds(photos, spec, clip, "image", 3)
    x = feed["pixel_values"]
    assert x.shape == (3, 3, 32, 32) and x.dtype == np.float32
    assert x[1].mean() == pytest.approx((30 / 255 - 0.5) / 0.25, abs=1e-3)  # photo 1 is flat grey 30


def test_npz_inputs_are_sized_from_their_headers_before_loading(tmp_path: Path) -> None:
    """A small, highly compressed .npz that declares a huge array is refused before decompression."""
    from edgevl.bench.inputs import npz_declared_bytes

    ok = tmp_path / "ok.npz"
    np.savez(ok, x=np.zeros((4, 16), np.float32))
    assert npz_declared_bytes(ok) == 4 * 16 * 4
    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, x=np.zeros((64, 1024, 1024), np.uint8))  # 64 MiB of zeros, a few KiB on disk
    assert bomb.stat().st_size < 1 << 20 and npz_declared_bytes(bomb) == 64 << 20
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"not a readable \.npz"):
        npz_declared_bytes(tmp_path / "junk.npz")


def test_npz_over_the_memory_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import edgevl.memlimit as memlimit
    from edgevl.bench.inputs import _npz_feeds

    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, x=np.zeros((8, 1024, 1024), np.uint8))
    monkeypatch.setattr(memlimit, "bench_limit", lambda: 1 << 20)
    with pytest.raises(InputError, match=r"declare 8 MiB, over the 1 MiB"):
        _npz_feeds(bomb, [])
    monkeypatch.setattr(memlimit, "bench_limit", lambda: 1 << 30)
    with pytest.raises(InputError, match=r"do not match the model inputs"):  # loaded, then checked
        _npz_feeds(bomb, [])
