"""One entry point for every CLIP checkpoint form: :func:`load_clip`.

``path`` may be a Hugging Face CLIP folder, an OpenCLIP/OpenAI ``.pt``/``.pth``/``.bin`` state
dict, an OpenAI TorchScript ``.pt`` archive, or a ``.safetensors`` file (OpenCLIP's, or ours with
the config in its metadata, e.g. a LightCLIP model). The architecture comes from, in order:
``arch`` if given, the HF ``config.json``, our safetensors metadata, the tensors' shapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgevl_export.loaders.files import CONFIG_METADATA_KEY, load_into, read_tensors
from edgevl_export.loaders.hf_clip import read_hf_clip
from edgevl_export.loaders.openclip import convert_state_dict, infer_config
from edgevl_export.models.clip import CLIP, CLIPConfig, build_model, get_arch

from edgevl.bundle import sha256_file
from edgevl.errors import CheckpointError


@dataclass(frozen=True)
class LoadedCLIP:
    model: CLIP
    arch: str  # the --arch name, or a description of the inferred config
    format: str  # hf, safetensors, torch, torchscript
    weights: Path
    notes: tuple[str, ...] = ()

    def source(self) -> dict[str, Any]:
        # the file's name and digest only: the manifest records nothing of the build machine
        return {"checkpoint": Path(self.weights).name, "format": self.format,
                "sha256": sha256_file(self.weights),
                "notes": list(self.notes)}


def _describe(cfg: CLIPConfig) -> str:
    v = cfg.vision
    if cfg.kind == "lightclip":
        return f"LightCLIP-{v.image_size}px-d{cfg.embed_dim}"
    if v.is_resnet:  # type: ignore[union-attr]
        return f"RN{'-'.join(map(str, v.layers))}-w{v.width}-{v.image_size}px"  # type: ignore[union-attr]
    return f"ViT-w{v.width}-L{v.layers}-p{v.patch_size}-{v.image_size}px"  # type: ignore[union-attr]


def _with_activation(cfg: CLIPConfig, quick_gelu: bool | None) -> CLIPConfig:
    return cfg if quick_gelu is None else replace(cfg, quick_gelu=quick_gelu)


def load_clip(path: Path | str, arch: str | None = None, quick_gelu: bool | None = None) -> LoadedCLIP:
    """Build our CLIP module from a checkpoint; CheckpointError with the keys when it does not fit."""
    p = Path(path)
    notes: list[str] = []
    if p.is_dir():
        cfg, sd, unknown, weights = read_hf_clip(p)
        if unknown:
            shown = ", ".join(unknown[:12]) + (f", … ({len(unknown)} in all)" if len(unknown) > 12 else "")
            raise CheckpointError(f"{weights}: keys not part of a CLIPModel: {shown}")
        fmt = "hf"
        if arch:
            cfg = get_arch(arch)
        name = arch or _describe(cfg)
    else:
        sd, meta, fmt = read_tensors(p)
        weights = p
        if arch:
            cfg = get_arch(arch)
            name = arch
        elif CONFIG_METADATA_KEY in meta:
            try:
                cfg = CLIPConfig.from_dict(json.loads(meta[CONFIG_METADATA_KEY]))
            except (ValueError, TypeError, KeyError) as e:
                raise CheckpointError(f"{p}: bad {CONFIG_METADATA_KEY} metadata ({e})") from e
            name = str(json.loads(meta[CONFIG_METADATA_KEY]).get("name", _describe(cfg)))
        else:
            if any(k.startswith("visual.stem.") for k in sd):
                raise CheckpointError(
                    f"{p}: a LightCLIP checkpoint without config metadata (strides cannot be read from the "
                    "weights); pass --arch (e.g. LightCLIP-MNv2)"
                )
            cfg = infer_config(sd, str(p), quick_gelu=True if quick_gelu is None else quick_gelu)
            name = _describe(cfg)
            if quick_gelu is None:
                notes.append("activation assumed QuickGELU (OpenAI's); most OpenCLIP-trained LAION weights "
                             "need GELU: pass --activation gelu")
        sd = convert_state_dict(sd)
    cfg = _with_activation(cfg, quick_gelu)
    model = build_model(cfg)
    load_into(model, sd, str(weights))
    return LoadedCLIP(model=model.eval(), arch=name, format=fmt, weights=weights, notes=tuple(notes))
