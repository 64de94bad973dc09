"""Load an EasyOCR generation-2 CRNN checkpoint (``english_g2.pth``) into the torch reference.

The file is read with :func:`edgevl_export.loaders.files.read_tensors`: ``torch.load(weights_only=
True)``, so a pickle that asks for any Python object beyond tensors is refused, never run; a
truncated file and a state dict of another model are CheckpointErrors naming the file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgevl_export.loaders.files import StateDict, load_into, read_tensors
from edgevl_export.models.crnn import CRNN, CRNNConfig, build_model, infer_config

from edgevl.bundle import sha256_file


@dataclass(frozen=True)
class LoadedCRNN:
    model: CRNN
    config: CRNNConfig
    format: str  # torch, safetensors, torchscript
    weights: Path
    md5: str  # EasyOCR publishes md5 sums of its weights: the charset is looked up by it

    def source(self) -> dict[str, Any]:
        # the file's name and digests only: the manifest records nothing of the build machine
        return {"checkpoint": self.weights.name, "format": self.format,
                "architecture": self.config.describe(), "sha256": sha256_file(self.weights), "md5": self.md5}


def md5_file(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def crnn_from_state_dict(sd: StateDict, where: str) -> tuple[CRNN, CRNNConfig]:
    """The reference CRNN with ``sd`` loaded (CheckpointError listing keys that do not fit)."""
    cfg = infer_config(sd, where)
    model = build_model(cfg)
    load_into(model, sd, where)
    return model.eval(), cfg


def load_crnn(path: Path | str, state_dict: StateDict | None = None, fmt: str = "torch") -> LoadedCRNN:
    """``path``'s CRNN; ``state_dict`` (already read from ``path`` by the caller) saves a second read."""
    p = Path(path)
    if state_dict is None:
        state_dict, _, fmt = read_tensors(p)
    model, cfg = crnn_from_state_dict(state_dict, str(p))
    return LoadedCRNN(model=model, config=cfg, format=fmt, weights=p, md5=md5_file(p))
