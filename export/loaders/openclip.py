"""OpenAI / OpenCLIP state dicts → :class:`edgevl_export.models.clip.CLIP`.

Both use OpenAI's names; the differences handled here: attention's packed ``in_proj_*`` (split
into q/k/v), TorchScript-only entries (``input_resolution``, ``context_length``, ``vocab_size``),
BatchNorm's ``num_batches_tracked`` (absent from some saves; unused at inference).

The architecture is read from the tensors' shapes, like OpenAI's ``build_model``: what shapes
cannot tell is the head count (OpenAI's convention: width / 64) and the MLP activation (QuickGELU
for OpenAI's weights, GELU for most OpenCLIP-trained ones): pass ``arch`` or ``quick_gelu``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch
from edgevl_export.loaders.files import StateDict
from edgevl_export.models.clip import CLIPConfig, TextConfig, VisionConfig

from edgevl.errors import CheckpointError

IGNORED_KEYS = ("input_resolution", "context_length", "vocab_size", "attn_mask", "visual.attn_mask")


def _count(sd: Mapping[str, torch.Tensor], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in sd if (m := rx.match(k))})


def _get(sd: Mapping[str, torch.Tensor], key: str, where: str) -> torch.Tensor:
    if key not in sd:
        raise CheckpointError(
            f"{where}: key {key!r} not found; not an OpenAI/OpenCLIP CLIP state dict? "
            f"(first keys: {sorted(sd)[:8]})"
        )
    return sd[key]


def infer_config(sd: Mapping[str, torch.Tensor], where: str, quick_gelu: bool = True) -> CLIPConfig:
    """The CLIP config an OpenAI-layout state dict was built with (ViT or modified ResNet)."""
    text_proj = _get(sd, "text_projection", where)
    pos = _get(sd, "positional_embedding", where)
    tok = _get(sd, "token_embedding.weight", where)
    t_width = _get(sd, "ln_final.weight", where).shape[0]
    t_layers = _count(sd, r"transformer\.resblocks\.(\d+)\.")
    t_fc = _get(sd, "transformer.resblocks.0.mlp.c_fc.weight", where)
    text = TextConfig(
        context_length=pos.shape[0], vocab_size=tok.shape[0], width=t_width, heads=max(1, t_width // 64),
        layers=t_layers, mlp_ratio=t_fc.shape[0] / t_width, eot_id=tok.shape[0] - 1,
    )
    if "visual.proj" in sd:
        conv = _get(sd, "visual.conv1.weight", where)
        width, patch = conv.shape[0], conv.shape[-1]
        grid = round(math.sqrt(_get(sd, "visual.positional_embedding", where).shape[0] - 1))
        fc = _get(sd, "visual.transformer.resblocks.0.mlp.c_fc.weight", where)
        vision = VisionConfig(
            image_size=patch * grid, layers=_count(sd, r"visual\.transformer\.resblocks\.(\d+)\."),
            width=width, patch_size=patch, mlp_ratio=fc.shape[0] / width,
        )
    elif "visual.attnpool.positional_embedding" in sd:
        counts = tuple(_count(sd, rf"visual\.layer{i}\.(\d+)\.") for i in (1, 2, 3, 4))
        grid = round(math.sqrt(sd["visual.attnpool.positional_embedding"].shape[0] - 1))
        vision = VisionConfig(
            image_size=grid * 32, layers=counts,  # type: ignore[arg-type]
            width=_get(sd, "visual.layer1.0.conv1.weight", where).shape[0],
        )
    else:
        raise CheckpointError(
            f"{where}: cannot tell the image tower (no visual.proj for a ViT, no "
            "visual.attnpool.positional_embedding for a ResNet); pass --arch"
        )
    return CLIPConfig(embed_dim=text_proj.shape[1], vision=vision, text=text, quick_gelu=quick_gelu)


def convert_state_dict(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """OpenAI/OpenCLIP names → our module's names (split packed attention projections)."""
    out: StateDict = {}
    for k, v in sd.items():
        if k in IGNORED_KEYS:
            continue
        m = re.match(r"(.*)\.in_proj_(weight|bias)$", k)
        if m:
            q, kk, vv = v.chunk(3, dim=0)
            for name, part in (("q_proj", q), ("k_proj", kk), ("v_proj", vv)):
                out[f"{m.group(1)}.{name}.{m.group(2)}"] = part.contiguous()
        else:
            out[k] = v
    for k in [k for k in out if k.endswith(".running_var")]:
        out.setdefault(k[: -len("running_var")] + "num_batches_tracked", torch.tensor(0))
    return out


def to_openai_state_dict(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """Our names → OpenAI's (packed ``in_proj``): the inverse of :func:`convert_state_dict`."""
    out: StateDict = {}
    for k, v in sd.items():
        m = re.match(r"(.*)\.q_proj\.(weight|bias)$", k)
        if m and "attnpool" not in k:
            base, kind = m.group(1), m.group(2)
            parts = [sd[f"{base}.{p}.{kind}"] for p in ("q_proj", "k_proj", "v_proj")]
            out[f"{base}.in_proj_{kind}"] = torch.cat(parts, dim=0)
        elif not re.match(r".*\.(k_proj|v_proj)\.(weight|bias)$", k) or "attnpool" in k:
            out[k] = v
    return out
