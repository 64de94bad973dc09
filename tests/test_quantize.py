"""int8 quantisation: QDQ structure, the accuracy guard and its sweep, round trip, data errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
cv2 = pytest.importorskip("cv2")

import onnx  # noqa: E402
from edgevl_export.quantize import GuardThresholds, quantize_bundle, quantized_nodes  # noqa: E402
from edgevl_export.quantize.data import read_word_crops, split  # noqa: E402
from edgevl_export.quantize.guard import box_agreement, cosines, word_accuracy  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgevl.bundle import Bundle, load_bundle, write_bundle  # noqa: E402
from edgevl.cli import main  # noqa: E402
from edgevl.errors import CalibrationError, QuantizationError  # noqa: E402
from edgevl.tasks.encoders import ImageEncoder  # noqa: E402

SIZE = 8
IN = 3 * SIZE * SIZE


def sensitive_mlp(path: Path, seed: int = 0) -> Path:
    """pixels → A → relu → B → relu → C → embeds; B makes one hidden channel ~1000x the others.

    Per-tensor int8 on C's input crushes every other channel to zero, so quantising C breaks the
    output while A and B quantise well: the sweep must find C.
    """
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1 / np.sqrt(IN), (IN, 32)).astype(np.float32)
    b = rng.normal(0, 1 / np.sqrt(32), (32, 32)).astype(np.float32)
    b[:, 0] = np.abs(b[:, 0]) * 1000.0  # the outlier channel
    c = rng.normal(0, 1 / np.sqrt(32), (32, 16)).astype(np.float32)
    c[0] *= 1e-3  # so the outlier channel contributes like the others
    nodes = [
        helper.make_node("Flatten", ["pixel_values"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "A"], ["h1"], name="A"),
        helper.make_node("Relu", ["h1"], ["r1"]),
        helper.make_node("MatMul", ["r1", "B"], ["h2"], name="B"),
        helper.make_node("Relu", ["h2"], ["r2"]),
        helper.make_node("MatMul", ["r2", "C"], ["image_embeds"], name="C"),
    ]
    g = helper.make_graph(
        nodes, "sensitive",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["batch", 16])],
        initializer=[numpy_helper.from_array(a, "A"), numpy_helper.from_array(b, "B"),
                     numpy_helper.from_array(c, "C")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def sensitive_bundle(root: Path) -> tuple[Bundle, Path]:
    """A one-MLP "clip" image bundle with an outlier-sensitive layer and 48 random calibration images."""
    bundle = write_bundle(
        root / "fp32", name="sensitive", task="clip", models={"image": sensitive_mlp(root / "m.onnx")},
        preprocess={"size": SIZE, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
                    "interpolation": "bilinear"},
        config={"embed_dim": 16},
    )
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(1)
    for i in range(48):
        cv2.imwrite(str(images / f"{i:03d}.png"), rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
    return bundle, images


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Bundle, Path]:
    return sensitive_bundle(tmp_path_factory.mktemp("quant"))


def test_full_int8_qdq_structure(tiny: tuple[Bundle, Path], tmp_path: Path) -> None:
    bundle, images = tiny
    loose = GuardThresholds(min_cosine=-1.0, min_mean_cosine=-1.0)
    out = quantize_bundle(bundle.path, images, tmp_path / "int8", samples=32, holdout=16, guard=loose,
                          smooth_alpha=None)
    model = onnx.load(str(out.model_path("image")))
    q = quantized_nodes(model)
    assert sorted(q) == ["A", "B", "C"]
    for name, ch in (("A", 32), ("B", 32), ("C", 16)):
        assert q[name]["op"] == "MatMul"
        assert q[name]["weight_axis"] == 1 and q[name]["weight_channels"] == ch  # per output channel
        assert q[name]["weight_dtype"] == "int8"
        assert q[name]["symmetric"]
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    for n in qdq:
        zp = inits[n.input[2]]
        assert zp.dtype == np.int8 and not zp.any()  # symmetric: zero point 0
        if n.input[0] not in inits:
            assert inits[n.input[1]].size == 1  # activations per-tensor
    # MatMul outputs stay float (no Q right after a MatMul)
    producers = {o: n for n in model.graph.node for o in n.output}
    assert not any(producers.get(n.input[0]) is not None and producers[n.input[0]].op_type == "MatMul"
                   for n in qdq if n.op_type == "QuantizeLinear")
    report = out.manifest.extra["quantization"]
    assert out.manifest.precision == "int8" and report["format"] == "QDQ"
    assert report["roles"]["image"]["kept_float"] == []
    # and this fully quantised model is badly off: what the guard is for
    assert report["guard"]["checks"][0]["value"] < 0.9


def test_guard_sweep_keeps_the_sensitive_layer_float(tiny: tuple[Bundle, Path], tmp_path: Path) -> None:
    bundle, images = tiny
    out = quantize_bundle(bundle.path, images, tmp_path / "int8", samples=32, holdout=16, smooth_alpha=None)
    report = out.manifest.extra["quantization"]
    role = report["roles"]["image"]
    assert role["attempts"][0]["stage"] == "all" and not role["attempts"][0]["passed"]
    assert role["kept_float"] == ["C"]
    assert role["most_sensitive"][0]["node"] == "C"
    assert report["guard"]["passed"]
    assert sorted(quantized_nodes(onnx.load(str(out.model_path("image"))))) == ["A", "B"]
    # round trip: the written bundle verifies and runs through the runtime encoder
    again = load_bundle(out.path)
    files = sorted(images.iterdir())[:8]
    ref = ImageEncoder(bundle).encode(files)
    got = ImageEncoder(again).encode(files)
    assert got.shape == ref.shape
    assert cosines(ref, got).min() >= 0.99


def test_smoothquant_rescues_the_outlier_without_float_nodes(tiny: tuple[Bundle, Path],
                                                              tmp_path: Path) -> None:
    bundle, images = tiny
    out = quantize_bundle(bundle.path, images, tmp_path / "int8", samples=32, holdout=16, smooth_alpha=0.8)
    report = out.manifest.extra["quantization"]
    assert report["roles"]["image"]["kept_float"] == []
    assert report["roles"]["image"]["smoothquant"]["matmul_inputs"] == 3
    assert report["guard"]["passed"]


def test_guard_that_cannot_pass_writes_nothing(tiny: tuple[Bundle, Path], tmp_path: Path) -> None:
    bundle, images = tiny
    with pytest.raises(QuantizationError, match=r"cannot meet the guard.*Tried: all 0 in float"):
        quantize_bundle(bundle.path, images, tmp_path / "int8", samples=32, holdout=16, smooth_alpha=None,
                        guard=GuardThresholds(min_cosine=1.5), max_float_fraction=0.34)
    assert not (tmp_path / "int8").exists()


def test_calibration_errors(tiny: tuple[Bundle, Path], tmp_path: Path) -> None:
    bundle, _ = tiny
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CalibrationError, match="no images"):
        quantize_bundle(bundle.path, empty, tmp_path / "o1")
    text = tmp_path / "sentences.txt"
    text.write_text("a sentence\nanother one\n")
    with pytest.raises(CalibrationError, match=r"text file.*folder of images"):
        quantize_bundle(bundle.path, text, tmp_path / "o2")
    with pytest.raises(CalibrationError, match="not found"):
        quantize_bundle(bundle.path, tmp_path / "missing", tmp_path / "o3")
    one = tmp_path / "one"
    one.mkdir()
    cv2.imwrite(str(one / "a.png"), np.zeros((SIZE, SIZE, 3), np.uint8))
    with pytest.raises(CalibrationError, match="need at least 2"):
        quantize_bundle(bundle.path, one, tmp_path / "o4")
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))


def test_text_bundle_rejects_images_and_empty_text(tmp_path: Path) -> None:
    from tiny_encoders import make_text_embedding_bundle

    te = make_text_embedding_bundle(tmp_path)
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    cv2.imwrite(str(imgs / "a.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(CalibrationError, match=r"folder of images.*text file"):
        quantize_bundle(te.path, imgs, tmp_path / "o")
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n")
    with pytest.raises(CalibrationError, match="no sentences"):
        quantize_bundle(te.path, blank, tmp_path / "o")


def test_cli_reports_errors_and_writes_bundle(tiny: tuple[Bundle, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bundle, images = tiny
    assert main(["quantize", str(bundle.path), "--calibration", str(tmp_path / "nope"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "edgevl: error:" in capsys.readouterr().err
    rc = main(["quantize", str(bundle.path), "--calibration", str(images), "--out", str(tmp_path / "o"),
               "--samples", "32", "--holdout", "16", "--smooth-alpha", "0", "--json"])
    assert rc == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    assert doc["precision"] == "int8" and doc["quantization"]["roles"]["image"]["kept_float"] == ["C"]


def test_word_crops_labels(tmp_path: Path) -> None:
    for n in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / n), np.zeros((8, 20, 3), np.uint8))
    (tmp_path / "labels.tsv").write_text("file\tlabel\na.png\tHello\nb.png\tworld\n")
    files, labels = read_word_crops(tmp_path)
    assert [f.name for f in files] == ["a.png", "b.png"] and labels == ["Hello", "world"]
    (tmp_path / "labels.tsv").write_text("c.png\tmissing\n")
    with pytest.raises(CalibrationError, match="not in"):
        read_word_crops(tmp_path)


def test_split_is_disjoint_and_bounded() -> None:
    s = split(100, samples=30, holdout=20)
    assert len(s.calibration) == 30 and len(s.holdout) == 20
    assert not set(s.calibration) & set(s.holdout)
    s = split(10, samples=100, holdout=64)
    assert len(s.holdout) == 2 and len(s.calibration) == 8


def test_metrics() -> None:
    a = np.array([[1, 0], [0, 1]], np.float32)
    assert cosines(a, a * 3).tolist() == pytest.approx([1.0, 1.0])
    assert cosines(a, a[::-1]).tolist() == pytest.approx([0.0, 0.0])
    assert word_accuracy(["Hello!", "wor1d"], ["hello", "world"]) == 0.5
    sq = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float32)
    far = sq + 100
    assert box_agreement([sq[None]], [sq[None] + 1], 0.5) == 1.0  # IoU 0.68
    assert box_agreement([sq[None]], [far[None]], 0.5) == 0.0
    assert box_agreement([np.stack([sq, far])], [sq[None]], 0.5) == pytest.approx(2 / 3)
    assert box_agreement([np.zeros((0, 4, 2))], [np.zeros((0, 4, 2))], 0.5) == 1.0


def test_calibration_flush_never_divides_the_batch_count() -> None:
    from edgevl_export.quantize.qdq import _flush_every

    assert _flush_every(8) == {}
    for n in (17, 32, 64, 240, 256, 1000):
        m = _flush_every(n)["CalibMaxIntermediateOutputs"]
        assert 2 <= m <= 16 and n % m != 0



def test_text_bundle_calibrates_from_sentences_and_says_when_nothing_is_quantisable(tmp_path: Path) -> None:
    from tiny_encoders import make_text_embedding_bundle

    te = make_text_embedding_bundle(tmp_path)  # Gather + ReduceSum: no weight MatMul/Gemm/Conv
    text = tmp_path / "s.txt"
    text.write_text("\n".join(["hello world", "a cat", "the dog runs", "red blue"] * 3) + "\n")
    with pytest.raises(QuantizationError, match="no MatMul/Gemm/Conv node"):
        quantize_bundle(te.path, text, tmp_path / "o", samples=8, holdout=4)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_other_calibration_methods_produce_guarded_bundles(tiny: tuple[Bundle, Path], tmp_path: Path,
                                                           method: str) -> None:
    bundle, images = tiny
    out = quantize_bundle(bundle.path, images, tmp_path / "int8", samples=32, holdout=16, method=method)
    report = out.manifest.extra["quantization"]
    assert report["method"] == method and report["guard"]["passed"]
    kept = set(report["roles"]["image"]["kept_float"])
    assert set(quantized_nodes(onnx.load(str(out.model_path("image"))))) == {"A", "B", "C"} - kept
    with pytest.raises(QuantizationError, match="not in"):
        quantize_bundle(bundle.path, images, tmp_path / "x", method="kl")
