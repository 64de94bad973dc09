"""int8 on a (tiny, random) BERT sentence encoder: the graph edits that make the QDQ model fast on ORT.

What is checked is structure and exactness, not speed: the key bias is dropped and the value and
FFN output biases are folded (float outputs unchanged, padding included), SmoothQuant's ``1/s``
before the attention output projection is folded into the value projection (no Mul left there),
the residual ``Add → LayerNormalization`` pairs are not fused into ORT's slow
``SkipLayerNormalization``, and ORT still fuses every weight MatMul into ``MatMulIntegerToFloat``.
"""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the export extra (torch) is not installed")
transformers = pytest.importorskip("transformers", reason="the export extra (transformers) is not installed")

import onnx  # noqa: E402
from conftest import save_tiny_bert  # noqa: E402
from edgevl_export.quantize import GuardThresholds, quantize_bundle  # noqa: E402
from edgevl_export.quantize.qdq import channel_absmax, prepare, smooth_checked  # noqa: E402
from edgevl_export.quantize.transformer import fold_attention_biases  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgevl.bundle import Bundle  # noqa: E402
from edgevl.tasks.encoders import TextEncoder  # noqa: E402

LAYERS = 2


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Bundle, Path]:
    from edgevl_export.bert_bundle import export_bert

    d = save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), LAYERS)
    bundle = export_bert(d, d / "bundle")
    rng = np.random.default_rng(0)
    text = d / "sentences.txt"
    text.write_text("\n".join(" ".join(f"w{i}" for i in rng.integers(0, 94, rng.integers(3, 20)))
                              for _ in range(96)) + "\n")
    return bundle, text


def ort_optimized_ops(path: Path, tmp: Path) -> collections.Counter[str]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.optimized_model_filepath = str(tmp / "optimized.onnx")
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return collections.Counter(n.op_type for n in onnx.load(str(tmp / "optimized.onnx")).graph.node)


def test_bert_int8_graph_is_what_ort_runs_fast(bert: tuple[Bundle, Path], tmp_path: Path) -> None:
    bundle, text = bert
    out = quantize_bundle(bundle.path, text, tmp_path / "int8", samples=64, holdout=32,
                          guard=GuardThresholds(min_cosine=0.9, min_mean_cosine=0.95))
    role = out.manifest.extra["quantization"]["roles"]["text"]
    assert role["attention_biases"] == {"key_bias_dropped": LAYERS, "value_bias_folded": LAYERS,
                                        "ffn_bias_folded": LAYERS}
    # Q, K, V, out, fc1, fc2 per layer; Q/K/V share one smoothing scale; out's is folded into V
    assert role["smoothquant"]["matmul_inputs"] == 4 * LAYERS
    assert role["smoothquant"]["folded"] == LAYERS
    assert role["quantized"] == 6 * LAYERS and not role["kept_float"]
    model = onnx.load(str(out.model_path("text")))
    producers = {o: n for n in model.graph.node for o in n.output}
    for n in model.graph.node:
        if n.op_type == "MatMul" and n.name.endswith("attn/out/MatMul"):
            q = producers[producers[n.input[0]].input[0]]  # DequantizeLinear <- QuantizeLinear <- ?
            assert producers[q.input[0]].op_type == "Reshape"  # no SmoothQuant Mul left there
    muls = [n for n in model.graph.node if n.op_type == "Mul" and n.name.endswith("_SmoothQuantMul")]
    assert len(muls) == 3 * LAYERS
    assert not model.graph.value_info
    ops = ort_optimized_ops(out.model_path("text"), tmp_path)
    assert ops["MatMulIntegerToFloat"] == 6 * LAYERS
    assert ops["SkipLayerNormalization"] == 0 and ops["LayerNormalization"] == 2 * LAYERS + 1
    # the same embeddings as fp32, within int8 noise
    texts = text.read_text().splitlines()[:16]
    a, b = TextEncoder(bundle).encode(texts), TextEncoder(out).encode(texts)
    assert float((a * b).sum(1).min()) > 0.9


def test_attention_bias_folds_are_exact_with_padding(bert: tuple[Bundle, Path], tmp_path: Path) -> None:
    import onnxruntime as ort

    bundle, _ = bert
    prepare(bundle.model_path("text"), tmp_path / "prep.onnx")
    model = onnx.load(str(tmp_path / "prep.onnx"))
    rng = np.random.default_rng(5)
    mask = np.array([[1] * 12, [1] * 7 + [0] * 5, [1] * 3 + [0] * 9], np.int64)
    feeds = [{"input_ids": rng.integers(5, 99, (3, 12)), "attention_mask": mask}]
    folded, info = fold_attention_biases(model, feeds)
    assert info == {"key_bias_dropped": LAYERS, "value_bias_folded": LAYERS, "ffn_bias_folded": LAYERS}
    adds = collections.Counter(n.op_type for n in model.graph.node)["Add"]
    assert collections.Counter(n.op_type for n in folded.graph.node)["Add"] == adds - 3 * LAYERS
    other = {"input_ids": rng.integers(5, 99, (2, 9)),
             "attention_mask": np.array([[1] * 9, [1] * 4 + [0] * 5])}
    sessions = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
                for m in (model, folded)]
    a, b = (sess.run(None, other)[0] for sess in sessions)
    assert np.allclose(a, b, atol=1e-5)
    # a graph without attention is left as it is
    plain = attention_like(tmp_path / "a.onnx", relu=False)
    same, none = fold_attention_biases(plain, [{"x": np.zeros((2, 5, 8), np.float32),
                                                "p": np.full((2, 2, 5, 5), 0.2, np.float32)}])
    assert same is plain and not any(none.values())


def attention_like(path: Path, *, relu: bool) -> onnx.ModelProto:
    """x → V (+bias) → reshape/transposes around P @ V → out-projection, with outlier channels.

    With ``relu`` a Relu sits between V and the attention product: the chain is not
    channel-linear any more and the smoothing must stay a Mul.
    """
    rng = np.random.default_rng(3)
    d, heads = 8, 2
    wv = rng.normal(0, 1, (d, d)).astype(np.float32)
    wv[:, 3] *= 50.0  # an outlier channel at the out-projection's input
    bv = rng.normal(0, 1, d).astype(np.float32)
    wo = rng.normal(0, 1, (d, d)).astype(np.float32)
    shape4 = np.array([0, 0, heads, d // heads], np.int64)
    shape3 = np.array([0, 0, d], np.int64)
    v_in = "vr" if relu else "vb"
    nodes = [
        helper.make_node("MatMul", ["x", "Wv"], ["vm"], name="v/MatMul"),
        helper.make_node("Add", ["vm", "bv"], ["vb"], name="v/Add"),
        *([helper.make_node("Relu", ["vb"], ["vr"])] if relu else []),
        helper.make_node("Reshape", [v_in, "shape4"], ["v4"]),
        helper.make_node("Transpose", ["v4"], ["vt"], perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", ["p", "vt"], ["ctx"], name="attn/MatMul_1"),
        helper.make_node("Transpose", ["ctx"], ["ct"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ct", "shape3"], ["c3"]),
        helper.make_node("MatMul", ["c3", "Wo"], ["y"], name="out/MatMul"),
    ]
    g = helper.make_graph(
        nodes, "attn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5, d]),
         helper.make_tensor_value_info("p", TensorProto.FLOAT, [2, heads, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5, d])],
        initializer=[numpy_helper.from_array(a, n) for a, n in
                     ((wv, "Wv"), (bv, "bv"), (wo, "Wo"), (shape4, "shape4"), (shape3, "shape3"))],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return m


@pytest.mark.parametrize("relu", [False, True])
def test_smoothing_folds_into_the_value_projection_only_when_exact(tmp_path: Path, relu: bool) -> None:
    import onnxruntime as ort

    model = attention_like(tmp_path / "m.onnx", relu=relu)
    rng = np.random.default_rng(4)
    feeds = [{"x": rng.normal(0, 1, (2, 5, 8)).astype(np.float32),
              "p": rng.dirichlet(np.ones(5), (2, 2, 5)).astype(np.float32)} for _ in range(3)]
    smoothed, info = smooth_checked(model, feeds, alpha=0.8)
    assert info["matmul_inputs"] == 2  # the V projection's input and the out-projection's
    muls = [n for n in smoothed.graph.node if n.op_type == "Mul"]
    out = next(n for n in smoothed.graph.node if n.name == "out/MatMul")
    if relu:
        assert info["folded"] == 0 and len(muls) == 2 and out.input[0].endswith("_smoothed")
    else:
        assert info["folded"] == 1 and len(muls) == 1 and out.input[0] == "c3"
    # SmoothQuant is exact in float either way
    run = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
           for m in (model, smoothed)]
    for f in feeds:
        a, b = (s.run(None, f)[0] for s in run)
        assert np.allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(a).max())
    # and the out-projection's int8 input has flatter channel ranges than before
    before = channel_absmax(model, feeds, ["c3"])["c3"]
    after = channel_absmax(smoothed, feeds, [out.input[0]])[out.input[0]]
    assert after.max() / after.min() < 0.5 * before.max() / before.min()


def test_histogram_calibration_on_sentences_of_different_lengths(bert: tuple[Bundle, Path],
                                                                 tmp_path: Path) -> None:
    # ORT's percentile/entropy calibrators stack all batches: they need one shape (padded here)
    bundle, text = bert
    out = quantize_bundle(bundle.path, text, tmp_path / "p", samples=48, holdout=16, method="percentile",
                          guard=GuardThresholds(min_cosine=0.8, min_mean_cosine=0.9))
    assert out.manifest.extra["quantization"]["method"] == "percentile"


def test_pad_to_common_shape() -> None:
    from edgevl_export.quantize.data import pad_to_common_shape

    feeds = [{"input_ids": np.array([[5, 6, 7], [8, 9, 1]]), "attention_mask": np.ones((2, 3), np.int64)},
             {"input_ids": np.array([[4, 2]]), "attention_mask": np.array([[1, 1]])}]
    a, b = pad_to_common_shape(feeds, {"input_ids": 1})
    assert a["input_ids"] is feeds[0]["input_ids"] or np.array_equal(a["input_ids"], feeds[0]["input_ids"])
    assert b["input_ids"].tolist() == [[4, 2, 1], [4, 2, 1]]  # last item repeated, then pad id
    assert b["attention_mask"].tolist() == [[1, 1, 0], [1, 1, 0]]
    assert pad_to_common_shape([], {}) == []


def test_shapes_are_dropped_only_from_graphs_with_layernorm() -> None:
    from edgevl_export.quantize.qdq import drop_shape_info

    def graph(op: str) -> onnx.ModelProto:
        inits = [numpy_helper.from_array(np.ones(4, np.float32), n) for n in ("g", "b")]
        node = (helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"]) if op == "ln"
                else helper.make_node("Relu", ["x"], ["y"]))
        g = helper.make_graph([helper.make_node("Add", ["x0", "x0"], ["x"]), node], "g",
                              [helper.make_tensor_value_info("x0", TensorProto.FLOAT, [2, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])], inits,
                              value_info=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    ln, relu = graph("ln"), graph("relu")
    assert drop_shape_info(ln) and not ln.graph.value_info
    assert not drop_shape_info(relu) and len(relu.graph.value_info) == 1
