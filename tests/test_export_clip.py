"""CLIP export parity: our torch module vs an independent reference, and ONNX Runtime vs torch.

Random weights (no CLIP weights exist offline), small configs. "Relative error" is
max|a - b| / max|b| throughout (edgevl_export.onnx.rel_error).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import torch.nn.functional as F  # noqa: E402
from edgevl_export.clip_bundle import export_clip  # noqa: E402
from edgevl_export.loaders.clip import load_clip  # noqa: E402
from edgevl_export.loaders.openclip import convert_state_dict, to_openai_state_dict  # noqa: E402
from edgevl_export.models.clip import CLIP, AttentionPool2d, build_model, get_arch  # noqa: E402
from edgevl_export.onnx import ort_run, rel_error  # noqa: E402
from edgevl_export.tokenizer import train_clip_bpe  # noqa: E402

from edgevl.bundle import load_bundle  # noqa: E402

TOL = 1e-4
ARCHS = ("test-vit", "test-rn", "test-lightclip")


def _randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Perturb every parameter and BN statistic so no weight keeps its (structured) init value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if not p.is_floating_point():
                continue
            if name.endswith("running_var"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            else:
                p.add_(0.05 * torch.randn(p.shape, generator=g))


def _ids(vocab: int, eot: int, batch: int, seq: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, eot, (batch, seq)).astype(np.int64)
    for i in range(batch):
        ids[i, rng.integers(1, seq)] = eot  # EOT somewhere, random padding after it
    return ids


def _hf_model(act: str = "quick_gelu", vocab: int = 600) -> transformers.CLIPModel:
    cfg = transformers.CLIPConfig(
        text_config=dict(vocab_size=vocab, hidden_size=48, intermediate_size=192, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=16, eos_token_id=vocab - 1,
                         hidden_act=act, bos_token_id=vocab - 2, pad_token_id=0),
        vision_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8, hidden_act=act),
        projection_dim=32,
    )
    torch.manual_seed(0)
    model = transformers.CLIPModel(cfg).eval()
    _randomise(model)
    return model


def _features(out: object) -> torch.Tensor:
    """get_*_features returns a tensor (transformers 4) or an output object (transformers 5)."""
    if isinstance(out, torch.Tensor):
        return out
    return out.pooler_output  # type: ignore[attr-defined,no-any-return]


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HF CLIP folder: random small CLIPModel + a CLIP-format vocab whose EOT id is the model's."""
    d = tmp_path_factory.mktemp("hfclip")
    corpus = [f"a photo of a {c} {s}" for c in ("red", "green", "blue") for s in ("circle", "square")] * 20
    vocab, merges = train_clip_bpe(corpus, num_merges=80)
    model = _hf_model(vocab=len(vocab))
    model.save_pretrained(d)
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    return d


@pytest.mark.parametrize("act", ["quick_gelu", "gelu"])
def test_module_matches_transformers_clip(tmp_path: Path, act: str) -> None:
    hf = _hf_model(act)
    hf.save_pretrained(tmp_path)
    ours = load_clip(tmp_path).model
    pixels = torch.randn(3, 3, 32, 32)
    ids = torch.from_numpy(_ids(600, 599, 3, 16))
    with torch.no_grad():
        want_i = _features(hf.get_image_features(pixel_values=pixels)).numpy()
        want_t = _features(hf.get_text_features(input_ids=ids)).numpy()
        assert rel_error(ours.encode_image(pixels).numpy(), want_i) < TOL
        assert rel_error(ours.encode_text(ids).numpy(), want_t) < TOL
        assert abs(ours.logit_scale.item() - hf.logit_scale.item()) < 1e-6


def test_resnet_attention_pool_matches_torch_mha() -> None:
    """The ResNet tower's attention pooling vs torch's own multi_head_attention_forward."""
    torch.manual_seed(0)
    pool = AttentionPool2d(spacial_dim=3, embed_dim=32, heads=4, output_dim=16).eval()
    _randomise(pool)
    x = torch.randn(2, 32, 3, 3)
    seq = x.flatten(2).permute(2, 0, 1)  # [hw, b, c]
    seq = torch.cat([seq.mean(dim=0, keepdim=True), seq]) + pool.positional_embedding[:, None, :]
    with torch.no_grad():
        want, _ = F.multi_head_attention_forward(
            query=seq[:1], key=seq, value=seq, embed_dim_to_check=32, num_heads=4,
            q_proj_weight=pool.q_proj.weight, k_proj_weight=pool.k_proj.weight,
            v_proj_weight=pool.v_proj.weight, in_proj_weight=None,
            in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0, out_proj_weight=pool.c_proj.weight,
            out_proj_bias=pool.c_proj.bias, use_separate_proj_weight=True, training=False, need_weights=False,
        )
        got = pool(x)
    assert rel_error(got.numpy(), want[0].numpy()) < TOL


def test_text_attention_matches_torch_mha() -> None:
    """Our causal attention block vs nn.MultiheadAttention with OpenAI's packed weights."""
    torch.manual_seed(0)
    model = build_model(get_arch("test-vit"))
    _randomise(model)
    attn = model.transformer.resblocks[0].attn
    mha = torch.nn.MultiheadAttention(48, 4, batch_first=True).eval()
    packed = to_openai_state_dict({f"a.{k}": v for k, v in attn.state_dict().items()})
    mha.in_proj_weight.data.copy_(packed["a.in_proj_weight"])
    mha.in_proj_bias.data.copy_(packed["a.in_proj_bias"])
    mha.out_proj.load_state_dict(attn.out_proj.state_dict())
    x = torch.randn(2, 7, 48)
    mask = torch.full((7, 7), float("-inf")).triu(1)
    from edgevl_export.models.clip import causal_mask

    with torch.no_grad():
        want = mha(x, x, x, attn_mask=mask, need_weights=False)[0]
        got = attn(x, causal_mask(2, 7, x.dtype))
    assert rel_error(got.numpy(), want.numpy()) < TOL


@pytest.mark.parametrize("arch", ARCHS)
def test_openai_state_dict_round_trip(tmp_path: Path, arch: str) -> None:
    torch.manual_seed(1)
    model = build_model(get_arch(arch))
    _randomise(model)
    sd = to_openai_state_dict(model.state_dict())
    assert not any(".q_proj." in k for k in sd if "attnpool" not in k)
    path = tmp_path / "openai.pt"
    torch.save(sd, path)
    loaded = load_clip(path, arch=arch).model
    s = model.config.vision.image_size
    px = torch.randn(2, 3, s, s)
    with torch.no_grad():
        assert torch.equal(loaded.encode_image(px), model.encode_image(px))
    assert set(convert_state_dict(sd)) == set(model.state_dict())


def _contract(bundle_dir: Path, model: CLIP) -> None:
    b = load_bundle(bundle_dir)
    m = b.manifest
    assert m.task == "clip" and set(m.models) == {"image", "text"}
    img, txt = m.models["image"], m.models["text"]
    s = model.config.vision.image_size
    assert [(t.name, t.dtype) for t in img.inputs] == [("pixel_values", "float32")]
    assert img.inputs[0].shape[1:] == (3, s, s) and isinstance(img.inputs[0].shape[0], str)
    assert [(t.name, t.dtype) for t in img.outputs] == [("image_embeds", "float32")]
    assert [(t.name, t.dtype) for t in txt.inputs] == [("input_ids", "int64")]
    assert all(isinstance(d, str) for d in txt.inputs[0].shape)  # dynamic batch and sequence
    assert [(t.name, t.dtype) for t in txt.outputs] == [("text_embeds", "float32")]
    assert img.outputs[0].shape[1] == txt.outputs[0].shape[1] == model.config.embed_dim
    for key in ("tokenizer", "context_length", "pad_id", "logit_scale", "embed_dim", "arch"):
        assert key in m.config
    assert m.config["logit_scale"] == pytest.approx(float(model.logit_scale.detach().exp()))
    assert b.file(m.config["tokenizer"]).is_file()
    assert m.config["text_clean"] == "ftfy_html"  # OpenAI's basic_clean runs before the BPE
    for key in ("size", "resize", "crop", "interpolation", "mean", "std", "color"):
        assert key in m.preprocess
    assert m.preprocess["size"] == s


@pytest.mark.parametrize("arch", ARCHS)
def test_onnx_matches_torch(tmp_path: Path, arch: str) -> None:
    torch.manual_seed(2)
    model = build_model(get_arch(arch))
    _randomise(model)
    b = export_clip(model, tmp_path / arch, tokenizer_json="{}", name=arch, arch=arch)
    _contract(tmp_path / arch, model)
    cfg = model.config
    s, ctx = cfg.vision.image_size, cfg.text.context_length
    for batch, seq in ((1, 3), (4, ctx)):
        px = np.random.default_rng(batch).standard_normal((batch, 3, s, s)).astype(np.float32)
        ids = _ids(cfg.text.vocab_size, cfg.text.eot_id, batch, seq, seed=batch)
        with torch.no_grad():
            want_i = model.encode_image(torch.from_numpy(px)).numpy()
            want_t = model.encode_text(torch.from_numpy(ids)).numpy()
        assert rel_error(ort_run(b.model_path("image"), {"pixel_values": px})[0], want_i) < TOL
        assert rel_error(ort_run(b.model_path("text"), {"input_ids": ids})[0], want_t) < TOL
    text = onnx.load(str(b.model_path("text")))
    ops = {n.op_type for n in text.graph.node}
    assert "LayerNormalization" in ops and "ArgMax" in ops
    assert not ops & {"NonZero", "GatherND", "Loop", "If"}  # no data-dependent shapes
    assert text.opset_import[0].version == 17


def test_eot_pooling_uses_first_eot_and_ignores_padding() -> None:
    torch.manual_seed(3)
    model = build_model(get_arch("test-vit"))
    eot = model.config.text.eot_id
    base = torch.tensor([[5, 6, 7, eot, 0, 0, 0]])
    other_pad = torch.tensor([[5, 6, 7, eot, eot, 9, 3]])
    with torch.no_grad():
        assert torch.allclose(model.encode_text(base), model.encode_text(other_pad), atol=1e-6)
        assert torch.allclose(model.encode_text(base), model.encode_text(base[:, :4]), atol=1e-6)


def test_fp16_bundle(tmp_path: Path) -> None:
    torch.manual_seed(4)
    model = build_model(get_arch("test-vit"))
    _randomise(model)
    b = export_clip(model, tmp_path / "fp16", tokenizer_json="{}", name="t", arch="test-vit",
                    precision="fp16")
    assert b.manifest.precision == "fp16"
    assert b.model("image").inputs[0].dtype == "float32"  # casts live inside the graph
    g = onnx.load(str(b.model_path("text"))).graph
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in g.initializer)
    produced = {o: n for n in g.node for o in n.output}
    for ln in (n for n in g.node if n.op_type == "LayerNormalization"):
        src = produced.get(ln.input[0])
        assert src is not None and src.op_type == "Cast"  # fed by a cast to fp32
    for r in b.manifest.extra["parity"]:
        assert r["rel_error"] < 2e-2


def test_ort_attention_fusion_finds_both_towers(tmp_path: Path) -> None:
    """ONNX Runtime's transformer optimizer (model_type clip) fuses our attention in both towers.

    The image tower's last block asks with the class token alone (``forward_first``): a one-query
    attention that is plain MatMuls, not the fused pattern; every other block must fuse.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    torch.manual_seed(5)
    model = build_model(get_arch("test-vit"))
    _randomise(model)
    b = export_clip(model, tmp_path / "b", tokenizer_json="{}", name="t", arch="test-vit")
    ids = _ids(300, 299, 2, 9)
    with torch.no_grad():
        want = model.encode_text(torch.from_numpy(ids)).numpy()
    for role, width, fused in (("text", 48, 2), ("image", 64, 1)):
        opt = optimize_model(str(b.model_path(role)), model_type="clip", num_heads=4, hidden_size=width,
                             opt_level=0)
        n_attn = sum(n.op_type == "Attention" for n in opt.model.graph.node)
        assert n_attn == fused, f"{role}: {n_attn} fused Attention nodes, expected {fused}"
        if role == "text":
            opt.save_model_to_file(str(tmp_path / "text_fused.onnx"))
            assert rel_error(ort_run(tmp_path / "text_fused.onnx", {"input_ids": ids})[0], want) < TOL


def test_export_checkpoint_from_hf_folder(hf_folder: Path, tmp_path: Path) -> None:
    from edgevl.cli import main

    out = tmp_path / "bundle"
    assert main(["export", "--checkpoint", str(hf_folder), "--out", str(out), "--json"]) == 0
    b = load_bundle(out)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(b.file("tokenizer.json")))
    ids = tok.encode("a photo of a red circle").ids
    n = b.manifest.config["eot_id"] + 1
    assert ids[0] == n - 2 and ids[-1] == n - 1
    assert len(tok.encode("red " * 100).ids) == b.manifest.config["context_length"] == 16
    hf = transformers.CLIPModel.from_pretrained(str(hf_folder)).eval()
    x = np.asarray([ids], dtype=np.int64)
    with torch.no_grad():
        want = _features(hf.get_text_features(input_ids=torch.from_numpy(x))).numpy()
    assert rel_error(ort_run(b.model_path("text"), {"input_ids": x})[0], want) < TOL


def test_cli_exports_openai_pt_with_bpe_simple_vocab(tmp_path: Path) -> None:
    """An OpenAI-layout .pt + open_clip's gzipped merges file, arch inferred from the shapes."""
    import dataclasses
    import gzip

    from edgevl.cli import main

    vocab, merges = train_clip_bpe([f"a {c} {s}" for c in ("red", "blue") for s in ("cat", "dog")] * 5, 40)
    cfg = get_arch("test-vit")
    text = dataclasses.replace(cfg.text, vocab_size=len(vocab), eot_id=len(vocab) - 1)
    cfg = dataclasses.replace(cfg, text=text)
    torch.manual_seed(6)
    model = build_model(cfg)
    torch.save(to_openai_state_dict(model.state_dict()), tmp_path / "model.pt")
    with gzip.open(tmp_path / "bpe_simple_vocab_16e6.txt.gz", "wt", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    out = tmp_path / "bundle"
    assert main(["export", "--checkpoint", str(tmp_path / "model.pt"), "--out", str(out)]) == 0
    b = load_bundle(out)
    assert b.manifest.source["format"] == "torch" and b.manifest.config["eot_id"] == len(vocab) - 1
    assert all(r["ok"] for r in b.manifest.extra["parity"])
    assert any("QuickGELU" in n for n in b.manifest.source["notes"])  # the assumption is recorded


@pytest.mark.slow
def test_dynamo_exporter(tmp_path: Path) -> None:
    """torch's dynamo exporter (``--dynamo``) gives the same contract and parity (5-10 s a model)."""
    torch.manual_seed(7)
    model = build_model(get_arch("test-vit"))
    b = export_clip(model, tmp_path / "dyn", tokenizer_json="{}", name="t", arch="test-vit", dynamo=True)
    _contract(tmp_path / "dyn", model)
    assert b.manifest.extra["exporter"] == "dynamo"
    assert all(r["rel_error"] < TOL for r in b.manifest.extra["parity"])


def _reference_modified_resnet(sd: dict[str, torch.Tensor], x: torch.Tensor, layers: tuple[int, ...],
                               heads: int) -> torch.Tensor:
    """OpenAI's modified-ResNet forward written with torch.nn.functional straight from an
    OpenAI-layout state dict (no module of ours involved)."""

    def bn(t: torch.Tensor, p: str) -> torch.Tensor:
        return F.batch_norm(t, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"],
                            sd[f"{p}.bias"], training=False, eps=1e-5)

    x = F.relu(bn(F.conv2d(x, sd["visual.conv1.weight"], stride=2, padding=1), "visual.bn1"))
    x = F.relu(bn(F.conv2d(x, sd["visual.conv2.weight"], padding=1), "visual.bn2"))
    x = F.avg_pool2d(F.relu(bn(F.conv2d(x, sd["visual.conv3.weight"], padding=1), "visual.bn3")), 2)
    for li, n in enumerate(layers, start=1):
        for bi in range(n):
            p = f"visual.layer{li}.{bi}"
            stride = 2 if li > 1 and bi == 0 else 1
            out = F.relu(bn(F.conv2d(x, sd[f"{p}.conv1.weight"]), f"{p}.bn1"))
            out = F.relu(bn(F.conv2d(out, sd[f"{p}.conv2.weight"], padding=1), f"{p}.bn2"))
            if stride > 1:
                out = F.avg_pool2d(out, stride)
            out = bn(F.conv2d(out, sd[f"{p}.conv3.weight"]), f"{p}.bn3")
            if f"{p}.downsample.0.weight" in sd:
                idn = F.avg_pool2d(x, stride) if stride > 1 else x
                idn = bn(F.conv2d(idn, sd[f"{p}.downsample.0.weight"]), f"{p}.downsample.1")
            else:
                idn = x
            x = F.relu(out + idn)
    seq = x.flatten(2).permute(2, 0, 1)
    a = "visual.attnpool"
    seq = torch.cat([seq.mean(dim=0, keepdim=True), seq]) + sd[f"{a}.positional_embedding"][:, None]
    out, _ = F.multi_head_attention_forward(
        query=seq[:1], key=seq, value=seq, embed_dim_to_check=seq.shape[-1], num_heads=heads,
        q_proj_weight=sd[f"{a}.q_proj.weight"], k_proj_weight=sd[f"{a}.k_proj.weight"],
        v_proj_weight=sd[f"{a}.v_proj.weight"], in_proj_weight=None,
        in_proj_bias=torch.cat([sd[f"{a}.q_proj.bias"], sd[f"{a}.k_proj.bias"], sd[f"{a}.v_proj.bias"]]),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
        out_proj_weight=sd[f"{a}.c_proj.weight"], out_proj_bias=sd[f"{a}.c_proj.bias"],
        use_separate_proj_weight=True, training=False, need_weights=False,
    )
    return out[0]


@pytest.mark.parametrize("layers", [(1, 1, 1, 1), (2, 1, 2, 1)])
def test_resnet_tower_matches_functional_reference(layers: tuple[int, ...]) -> None:
    import dataclasses

    cfg = get_arch("test-rn")
    cfg = dataclasses.replace(cfg, vision=dataclasses.replace(cfg.vision, layers=layers))
    torch.manual_seed(8)
    model = build_model(cfg)
    _randomise(model)
    sd = to_openai_state_dict(model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want = _reference_modified_resnet(sd, x, layers, cfg.vision.num_heads)
        got = model.encode_image(x)
    assert rel_error(got.numpy(), want.numpy()) < TOL


def test_lightclip_tower_matches_functional_reference() -> None:
    """The MobileNet-style tower vs conv/BN/hardswish written with torch.nn.functional from its weights."""
    cfg = get_arch("test-lightclip")
    torch.manual_seed(9)
    model = build_model(cfg)
    _randomise(model)
    sd = model.state_dict()

    def cbn(t: torch.Tensor, p: str, stride: int = 1, groups: int = 1, act: bool = True) -> torch.Tensor:
        w = sd[f"{p}.conv.weight"]
        t = F.conv2d(t, w, stride=stride, padding=w.shape[-1] // 2, groups=groups)
        t = F.batch_norm(t, sd[f"{p}.bn.running_mean"], sd[f"{p}.bn.running_var"], sd[f"{p}.bn.weight"],
                         sd[f"{p}.bn.bias"], training=False, eps=1e-5)
        return F.hardswish(t) if act else t

    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = cbn(x, "visual.stem", stride=2)
        i = 0
        for _expand, _cout, repeats, stride in cfg.vision.blocks:  # type: ignore[union-attr]
            for r in range(repeats):
                p = f"visual.blocks.{i}"
                h = cbn(want, f"{p}.expand") if f"{p}.expand.conv.weight" in sd else want
                h = cbn(h, f"{p}.depthwise", stride=stride if r == 0 else 1, groups=h.shape[1])
                h = cbn(h, f"{p}.project", act=False)
                want = want + h if h.shape == want.shape and (stride == 1 or r > 0) else h
                i += 1
        pooled = cbn(want, "visual.head").mean(dim=(2, 3))
        want = pooled @ sd["visual.proj.weight"].t() + sd["visual.proj.bias"]
        got = model.encode_image(x)
    assert rel_error(got.numpy(), want.numpy()) < TOL
