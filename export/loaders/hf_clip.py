"""Hugging Face CLIP folders (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``,
``vocab.json`` + ``merges.txt`` or ``tokenizer.json``) → our CLIP module and tokenizer.

Only ViT image towers exist in ``transformers``' CLIPModel, so that is what this maps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from edgevl_export.loaders.files import StateDict, read_hf_config, read_tensors
from edgevl_export.models.clip import CLIPConfig, TextConfig, VisionConfig

from edgevl.errors import CheckpointError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
IGNORED = re.compile(r".*position_ids$")
_LAYER = {
    "self_attn.q_proj": "attn.q_proj", "self_attn.k_proj": "attn.k_proj", "self_attn.v_proj": "attn.v_proj",
    "self_attn.out_proj": "attn.out_proj", "layer_norm1": "ln_1", "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
}
_FIXED = {
    "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
    "text_model.embeddings.position_embedding.weight": "positional_embedding",
    "text_model.final_layer_norm.weight": "ln_final.weight",
    "text_model.final_layer_norm.bias": "ln_final.bias",
    "vision_model.embeddings.class_embedding": "visual.class_embedding",
    "vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
    "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
    "vision_model.pre_layrnorm.weight": "visual.ln_pre.weight",  # sic: HF's spelling
    "vision_model.pre_layrnorm.bias": "visual.ln_pre.bias",
    "vision_model.post_layernorm.weight": "visual.ln_post.weight",
    "vision_model.post_layernorm.bias": "visual.ln_post.bias",
    "logit_scale": "logit_scale",
}


def _act(name: str, where: str) -> bool:
    if name == "quick_gelu":
        return True
    if name in ("gelu", "gelu_python"):
        return False
    raise CheckpointError(f"{where}: hidden_act {name!r} is not supported (quick_gelu or gelu)")


def config_from_hf(cfg: Mapping[str, Any], where: str, eot_id: int | None = None) -> CLIPConfig:
    """Our CLIPConfig from a CLIPModel ``config.json`` (transformers' defaults where absent)."""
    if cfg.get("model_type") not in ("clip", None):
        raise CheckpointError(f"{where}: model_type {cfg.get('model_type')!r} is not 'clip'")
    t, v = dict(cfg.get("text_config") or {}), dict(cfg.get("vision_config") or {})
    t_act = _act(str(t.get("hidden_act", "quick_gelu")), where)
    v_act = _act(str(v.get("hidden_act", "quick_gelu")), where)
    if t_act != v_act:
        raise CheckpointError(f"{where}: text and vision towers use different activations; not supported")
    t_width, v_width = int(t.get("hidden_size", 512)), int(v.get("hidden_size", 768))
    vocab = int(t.get("vocab_size", 49408))
    eos = int(t.get("eos_token_id", 2))
    if eot_id is None:
        # HF's legacy configs say eos_token_id 2 and pool with argmax(input_ids): the EOT is the top id
        eot_id = vocab - 1 if eos == 2 else eos
    text = TextConfig(
        context_length=int(t.get("max_position_embeddings", 77)), vocab_size=vocab, width=t_width,
        heads=int(t.get("num_attention_heads", 8)), layers=int(t.get("num_hidden_layers", 12)),
        mlp_ratio=int(t.get("intermediate_size", 2048)) / t_width, eot_id=eot_id,
    )
    vision = VisionConfig(
        image_size=int(v.get("image_size", 224)), layers=int(v.get("num_hidden_layers", 12)), width=v_width,
        patch_size=int(v.get("patch_size", 32)), heads=int(v.get("num_attention_heads", 12)),
        mlp_ratio=int(v.get("intermediate_size", 3072)) / v_width,
    )
    embed_dim = int(cfg.get("projection_dim", 512))
    return CLIPConfig(embed_dim=embed_dim, vision=vision, text=text, quick_gelu=t_act)


def convert_hf_state_dict(sd: Mapping[str, torch.Tensor]) -> tuple[StateDict, list[str]]:
    """HF CLIPModel names → ours. Returns (converted, keys it does not know)."""
    out: StateDict = {}
    unknown: list[str] = []
    for k, v in sd.items():
        if IGNORED.match(k):
            continue
        if k in _FIXED:
            out[_FIXED[k]] = v
        elif k == "text_projection.weight":
            out["text_projection"] = v.t().contiguous()
        elif k == "visual_projection.weight":
            out["visual.proj"] = v.t().contiguous()
        elif m := re.match(r"(text|vision)_model\.encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$", k):
            tower, i, sub, kind = m.groups()
            if sub not in _LAYER:
                unknown.append(k)
                continue
            prefix = "transformer" if tower == "text" else "visual.transformer"
            out[f"{prefix}.resblocks.{i}.{_LAYER[sub]}.{kind}"] = v
        else:
            unknown.append(k)
    return out, unknown


def find_weights(folder: Path) -> Path:
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(f"{folder}: no weights file (expected one of {', '.join(WEIGHT_FILES)})")


def read_hf_clip(folder: Path) -> tuple[CLIPConfig, StateDict, list[str], Path]:
    """(config, converted state dict, unknown keys, weights path) of a HF CLIP folder."""
    from edgevl_export.tokenizer import EOT

    hf_cfg = read_hf_config(folder)
    eot_id = None
    vocab_json = folder / "vocab.json"
    if vocab_json.is_file():
        try:
            eot_id = int(json.loads(vocab_json.read_text(encoding="utf-8"))[EOT])
        except (KeyError, ValueError, json.JSONDecodeError):
            eot_id = None
    cfg = config_from_hf(hf_cfg, str(folder / "config.json"), eot_id)
    weights = find_weights(folder)
    sd, _, _ = read_tensors(weights)
    converted, unknown = convert_hf_state_dict(sd)
    return cfg, converted, unknown, weights
