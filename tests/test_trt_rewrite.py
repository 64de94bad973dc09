"""--target tensorrt: attention subgraphs → EdgevlAttention, checked on ORT CPU with the numpy op."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime_extensions")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from conftest import save_tiny_bert  # noqa: E402
from edgevl_export.clip_bundle import export_clip  # noqa: E402
from edgevl_export.models.clip import build_model, get_arch  # noqa: E402
from edgevl_export.trt import rewrite as rw  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from edgevl.bundle import load_bundle  # noqa: E402
from edgevl.cli import main  # noqa: E402


def _ops(model: object) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in model.graph.node:  # type: ignore[attr-defined]
        out[n.op_type] = out.get(n.op_type, 0) + 1
    return out


@pytest.fixture(scope="module")
def clip_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = build_model(get_arch("test-vit"))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return export_clip(model, tmp_path_factory.mktemp("clip") / "b", tokenizer_json="{}", name="t",
                       arch="test-vit").path


def test_clip_towers_rewrite_every_attention_and_keep_parity(clip_bundle: Path) -> None:
    b = load_bundle(clip_bundle)
    rng = np.random.default_rng(0)
    feeds = {"text": {"input_ids": rng.integers(0, 299, (2, 9)).astype(np.int64)},
             "image": {"pixel_values": rng.standard_normal((2, 3, 32, 32)).astype(np.float32)}}
    for role in ("text", "image"):
        model = onnx.load(str(b.model_path(role)))
        n_softmax = _ops(model)["Softmax"]
        out, report = rw.rewrite_attention(model)
        ops = _ops(out)
        assert report.replaced == n_softmax == ops[rw.PLUGIN_OP] == 2
        assert "Softmax" not in ops
        node = next(n for n in out.graph.node if n.op_type == rw.PLUGIN_OP)
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        head_dim = {"text": 48 // 4, "image": 64 // 4}[role]  # test-vit widths 48 / 64, 4 heads
        assert attrs["scale"] == pytest.approx(head_dim ** -0.5)
        assert attrs["plugin_version"] == b"1" and node.domain == rw.PLUGIN_DOMAIN
        onnx.checker.check_model(out)
        parity = rw.check_parity(model, out, feeds[role])
        assert parity.ok and parity.max_abs_error < 1e-5
    text = rw.rewrite_attention(onnx.load(str(b.model_path("text"))))[0]
    # the causal mask reaches the plugin as a 4-D additive bias
    assert all(len(n.input) == 4 for n in text.graph.node if n.op_type == rw.PLUGIN_OP)


def test_bert_rewrite_keeps_the_padding_mask(tmp_path: Path) -> None:
    from edgevl_export.bert_bundle import export_bert

    b = export_bert(save_tiny_bert(tmp_path / "hf"), tmp_path / "bert")
    model = onnx.load(str(b.model_path("text")))
    out, report = rw.rewrite_attention(model)
    assert report.replaced == 2 and report.skipped == ()
    rng = np.random.default_rng(1)
    feeds = rw.padded_feeds({"input_ids": rng.integers(5, 99, (3, 11)).astype(np.int64),
                             "attention_mask": np.ones((3, 11), np.int64)})
    assert feeds["attention_mask"][-1].tolist() == [1] * 5 + [0] * 6
    assert rw.check_parity(model, out, feeds).max_abs_error < 1e-5


def _toy_attention(scale_op: str, k_perm: list[int]) -> object:
    """Q/K/V graph inputs, softmax(Q·Kᵀ ∘ c + bias)·V with a rank-2 bias: the general shapes."""
    b, h, s, d = 2, 2, 5, 8
    kt_shape = [b, h, d, s] if k_perm == [0, 1, 3, 2] else [b, s, h, d]
    c = helper.make_tensor("c", TensorProto.FLOAT, [], [0.25 if scale_op == "Mul" else 4.0])
    nodes = [
        helper.make_node("Transpose", ["kin"], ["kt"], perm=k_perm),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node(scale_op, ["s", "c"], ["ss"]),
        helper.make_node("Add", ["ss", "bias"], ["sb"]),
        helper.make_node("Softmax", ["sb"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["o"]),
    ]
    kin_shape = [b, h, s, d] if k_perm == [0, 1, 3, 2] else kt_shape
    g = helper.make_graph(nodes, "toy", [
        helper.make_tensor_value_info("q", TensorProto.FLOAT, [b, h, s, d]),
        helper.make_tensor_value_info("kin", TensorProto.FLOAT, kin_shape),
        helper.make_tensor_value_info("v", TensorProto.FLOAT, [b, h, s, d]),
        helper.make_tensor_value_info("bias", TensorProto.FLOAT, [s, s])],
        [helper.make_tensor_value_info("o", TensorProto.FLOAT, [b, h, s, d])], initializer=[c])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


@pytest.mark.parametrize(("scale_op", "perm"), [("Mul", [0, 1, 3, 2]), ("Div", [0, 2, 3, 1])])
def test_general_forms_divide_scale_key_permutation_and_low_rank_bias(scale_op: str, perm: list[int]) -> None:
    model = _toy_attention(scale_op, perm)
    out, report = rw.rewrite_attention(model)
    assert report.replaced == 1
    ops = _ops(out)
    assert ops.get("Unsqueeze") == 1 and ops.get("Softmax") is None
    assert ops.get("Transpose", 0) == (0 if perm == [0, 1, 3, 2] else 1)  # Kᵀ folded or composed
    rng = np.random.default_rng(3)
    kin = rng.standard_normal((2, 2, 5, 8) if perm == [0, 1, 3, 2] else (2, 5, 2, 8)).astype(np.float32)
    feeds = {"q": rng.standard_normal((2, 2, 5, 8)).astype(np.float32), "kin": kin,
             "v": rng.standard_normal((2, 2, 5, 8)).astype(np.float32),
             "bias": rng.standard_normal((5, 5)).astype(np.float32)}
    assert rw.check_parity(model, out, feeds).max_abs_error < 1e-5


def test_parity_check_catches_a_wrong_plugin_scale() -> None:
    model = _toy_attention("Mul", [0, 1, 3, 2])
    out, _ = rw.rewrite_attention(model)
    for n in out.graph.node:
        for a in n.attribute:
            if n.op_type == rw.PLUGIN_OP and a.name == "scale":
                a.f *= 1.5
    rng = np.random.default_rng(4)
    feeds = {k: rng.standard_normal(s).astype(np.float32)
             for k, s in (("q", (2, 2, 5, 8)), ("kin", (2, 2, 5, 8)), ("v", (2, 2, 5, 8)), ("bias", (5, 5)))}
    assert not rw.check_parity(model, out, feeds).ok


def test_softmax_outside_attention_is_left_alone() -> None:
    g = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], "sm",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    out, report = rw.rewrite_attention(helper.make_model(g))
    assert report.replaced == 0 and len(report.skipped) == 1
    assert _ops(out) == {"Softmax": 1}


def test_cli_export_target_tensorrt_writes_checked_graphs(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    hf = save_tiny_bert(tmp_path / "hf")
    out = tmp_path / "bundle"
    assert main(["export", "-c", str(hf), "-o", str(out), "--target", "tensorrt"]) == 0
    b = load_bundle(out)  # checksums of the new files verify
    cfg = b.manifest.config["tensorrt"]
    assert cfg["graphs"] == {"text": "tensorrt/text.onnx"} and cfg["attention_nodes"] == {"text": 2}
    assert cfg["parity_max_abs_error"]["text"] <= rw.PARITY_TOL
    g = onnx.load(str(out / "tensorrt" / "text.onnx"))
    assert _ops(g)[rw.PLUGIN_OP] == 2
    assert "EdgevlAttention nodes" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert "tensorrt/text.onnx" in manifest["files"]


def test_cli_export_target_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hf = tmp_path / "missing"
    assert main(["export", "-c", str(hf), "-o", str(tmp_path / "o"), "--target", "trt"]) == 2
    assert "--target 'trt'" in capsys.readouterr().err
    assert main(["export", "-c", str(hf), "-o", str(tmp_path / "o"), "--target", "tensorrt",
                 "--precision", "fp16"]) == 2
    assert "edgevl engine build" in capsys.readouterr().err
