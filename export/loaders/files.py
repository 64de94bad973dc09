"""Read tensors from checkpoint files safely, with errors that name the file and the problem.

* ``.safetensors``: ``safetensors.torch`` (metadata is returned too);
* ``.pt`` / ``.pth`` / ``.bin``: ``torch.load(weights_only=True)``; a pickle that needs arbitrary
  Python objects is refused (never unpickled) with a CheckpointError;
* TorchScript archives (OpenAI's released ``.pt`` files): ``torch.jit.load`` on CPU, then its
  ``state_dict()``. This runs the archive's TorchScript code (not arbitrary Python);
* training checkpoints that wrap the weights (``{"state_dict": …}``, ``{"model": …}``) and
  DistributedDataParallel's ``module.`` prefix are unwrapped.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgevl.errors import CheckpointError

StateDict = dict[str, torch.Tensor]
CONFIG_METADATA_KEY = "edgevl.config"  # our own safetensors carry the model config here


def read_hf_config(folder: Path, kind: str = "Hugging Face model") -> dict[str, Any]:
    """The parsed ``config.json`` of a Hugging Face folder (CheckpointError when missing or bad)."""
    path = folder / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{folder}: no config.json (expected a {kind} folder)")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: does not parse as JSON ({e})") from e
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return cfg


def is_torchscript(path: Path) -> bool:
    """A zip archive with TorchScript code (``<name>/code/…`` or ``constants.pkl``)."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any("/code/" in n or n.endswith("/constants.pkl") for n in names)


def read_tensors(path: Path) -> tuple[StateDict, dict[str, str], str]:
    """(state dict, metadata, format) of ``path``; CheckpointError for anything unreadable."""
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: checkpoint file is empty")
    if path.suffix == ".safetensors":
        return (*_read_safetensors(path), "safetensors")
    if is_torchscript(path):
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as e:  # TorchScript raises RuntimeError and friends
            raise CheckpointError(f"{path}: cannot load the TorchScript archive ({e})") from e
        return _tensors({k: v for k, v in module.state_dict().items()}, path), {}, "torchscript"
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path}: the pickle holds Python objects that torch.load(weights_only=True) refuses to "
            "load; edgevl never unpickles arbitrary code. Re-save the weights as a plain state dict "
            f"(torch.save(model.state_dict(), ...)) or as .safetensors. Detail: {str(e).splitlines()[0]}"
        ) from e
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint (truncated or corrupt?): {str(e).splitlines()[0]}"
        ) from e
    return _unwrap(obj, path), {}, "torch"


def _read_safetensors(path: Path) -> tuple[StateDict, dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except Exception as e:  # safetensors raises SafetensorError (not importable by name everywhere)
        raise CheckpointError(f"{path}: not a readable .safetensors file (truncated or corrupt?): {e}") from e
    return tensors, meta


def _unwrap(obj: Any, path: Path) -> StateDict:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(
                isinstance(v, torch.Tensor) for v in inner.values()
            ):
                obj = inner
                break
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if not tensors:
            raise CheckpointError(f"{path}: holds no tensors (keys: {sorted(map(str, obj))[:10]})")
        if all(k.startswith("module.") for k in tensors):
            tensors = {k[len("module."):]: v for k, v in tensors.items()}
        return _tensors(tensors, path)
    raise CheckpointError(
        f"{path}: expected a state dict (a mapping of names to tensors), got {type(obj).__name__}"
    )


def _tensors(sd: Mapping[str, torch.Tensor], path: Path) -> StateDict:
    out: StateDict = {}
    for k, v in sd.items():
        if v.is_floating_point() and v.dtype != torch.float32:
            v = v.float()  # fp16/bf16 checkpoints: export works in fp32 and converts at the end
        out[k] = v
    if not out:
        raise CheckpointError(f"{path}: holds no tensors")
    return out


def load_into(model: nn.Module, sd: Mapping[str, torch.Tensor], where: str) -> None:
    """Copy ``sd`` into ``model``; CheckpointError listing missing, unexpected and mis-shaped keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    misshaped = sorted(
        f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(sd) if tuple(own[k].shape) != tuple(sd[k].shape)
    )
    if missing or unexpected or misshaped:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
            if keys:
                shown = ", ".join(keys[:12]) + (f", … ({len(keys)} in all)" if len(keys) > 12 else "")
                parts.append(f"{label} keys: {shown}")
        raise CheckpointError(f"{where}: checkpoint does not match the architecture; " + "; ".join(parts))
    model.load_state_dict(dict(sd), strict=True)


def save_checkpoint(model: nn.Module, path: Path, config: Mapping[str, Any]) -> Path:
    """Our own ``.safetensors`` with the model config in the metadata (the toy model uses it)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={CONFIG_METADATA_KEY: json.dumps(dict(config))})
    return path
