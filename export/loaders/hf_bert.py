"""Hugging Face BERT folder (``config.json`` + ``model.safetensors`` / ``pytorch_model.bin``) → our modules.

Every key of the checkpoint is accounted for: it maps onto a parameter of
:class:`edgevl_export.models.bert.BertEncoder`, or is one of the few known to be unused by a
sentence encoder (the pooler, the ``position_ids`` buffer). Anything else — unknown, missing or
mis-shaped keys — raises :class:`edgevl.errors.CheckpointError` listing them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from edgevl_export.loaders.files import read_hf_config
from edgevl_export.models.bert import BertConfig, BertEncoder, SentenceEncoder

from edgevl.errors import CheckpointError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# keys a BertModel checkpoint carries that mean pooling does not use
_IGNORED = re.compile(r"^(pooler\..*|embeddings\.position_ids)$")
# HF name (after any "bert." prefix) → our name; {i} is the layer index
_RULES: tuple[tuple[str, str], ...] = (
    (r"embeddings\.word_embeddings\.(weight)", r"embeddings.word.\1"),
    (r"embeddings\.position_embeddings\.(weight)", r"embeddings.position.\1"),
    (r"embeddings\.token_type_embeddings\.(weight)", r"embeddings.token_type.\1"),
    (r"embeddings\.LayerNorm\.(weight|bias)", r"embeddings.norm.\1"),
    (r"encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(weight|bias)", r"layers.\1.attn.\2.\3"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)", r"layers.\1.attn.out.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(weight|bias)", r"layers.\1.attn_norm.\2"),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)", r"layers.\1.fc1.\2"),
    (r"encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)", r"layers.\1.fc2.\2"),
    (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.(weight|bias)", r"layers.\1.mlp_norm.\2"),
)


def _short(keys: list[str], n: int = 12) -> str:
    return ", ".join(keys[:n]) + (f", … ({len(keys)} in all)" if len(keys) > n else "")


def read_config(folder: Path) -> dict[str, Any]:
    cfg = read_hf_config(folder, "Hugging Face BERT")
    if cfg.get("model_type") != "bert":
        got = cfg.get("model_type")
        raise CheckpointError(f"{folder / 'config.json'}: model_type is {got!r}, expected 'bert'")
    return cfg


def read_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """The weights of a HF folder: safetensors preferred, else a ``weights_only`` torch pickle."""
    for name in WEIGHT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            if name.endswith(".safetensors"):
                from safetensors.torch import load_file

                return dict(load_file(str(path)))
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:  # safetensors/pickle raise assorted types for truncated or foreign files
            raise CheckpointError(f"{path}: cannot be read as a checkpoint ({str(e)[:200]})") from e
        if not isinstance(sd, dict):
            raise CheckpointError(f"{path}: expected a state dict, got {type(sd).__name__}")
        return {str(k): v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    raise CheckpointError(f"{folder}: none of {list(WEIGHT_FILES)} found")


def map_keys(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename HF keys to ours; returns (mapped, unknown keys)."""
    mapped: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in sd.items():
        k = key[len("bert."):] if key.startswith("bert.") else key
        if _IGNORED.match(k):
            continue
        for pattern, repl in _RULES:
            if re.fullmatch(pattern, k):
                mapped[re.sub(pattern, repl, k)] = value
                break
        else:
            unknown.append(key)
    return mapped, unknown


def load_encoder_weights(model: BertEncoder, sd: dict[str, torch.Tensor], where: str) -> None:
    mapped, unknown = map_keys(sd)
    own = model.state_dict()
    missing = sorted(set(own) - set(mapped))
    extra = sorted(set(mapped) - set(own))  # e.g. layer 7 of a 6-layer config
    shapes = sorted(
        f"{k} {tuple(v.shape)} (expected {tuple(own[k].shape)})"
        for k, v in mapped.items() if k in own and v.shape != own[k].shape
    )
    problems = []
    if unknown or extra:
        problems.append(f"unknown keys: {_short(sorted(unknown) + extra)}")
    if missing:
        problems.append(f"missing keys: {_short(missing)}")
    if shapes:
        problems.append(f"mis-shaped keys: {_short(shapes)}")
    if problems:
        raise CheckpointError(f"{where}: checkpoint does not match the BERT config; " + "; ".join(problems))
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in mapped.items()}, strict=True)


def load_hf_bert(folder: Path | str) -> tuple[SentenceEncoder, BertConfig, dict[str, Any]]:
    """A :class:`SentenceEncoder` (eval mode) from a HF BERT folder, with its config and the raw config."""
    root = Path(folder)
    if not root.is_dir():
        raise CheckpointError(f"{root}: not a folder (expected a Hugging Face BERT folder with config.json)")
    raw = read_config(root)
    try:
        cfg = BertConfig.from_hf(raw)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{root / 'config.json'}: missing or bad BERT field {e}") from e
    model = SentenceEncoder(cfg)
    load_encoder_weights(model.bert, read_state_dict(root), str(root))
    return model.eval(), cfg, raw
