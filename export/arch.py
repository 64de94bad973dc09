"""Which exporter a single-file checkpoint needs, from its tensor names (``edgevl export`` dispatch).

CLIP checkpoints (OpenAI/OpenCLIP ``.pt``, TorchScript, ``.safetensors``) keep their own loader;
this only tells the OCR models apart: EasyOCR's CRNN recogniser (``FeatureExtraction`` /
``SequenceModeling`` / ``Prediction``) and the CRAFT detector (``basenet`` / ``upconv`` /
``conv_cls``). A ``.pt``/``.pth``/``.bin`` file is read once here (with
``weights_only=True``) and its tensors handed to the OCR exporter, so bad files fail here with the
loader's own errors; a ``.safetensors`` file's names are read without its tensors.
"""

from __future__ import annotations

from pathlib import Path

from edgevl_export.loaders.files import StateDict, is_torchscript, read_tensors
from edgevl_export.models.craft import CRAFT_PREFIXES, is_craft
from edgevl_export.models.crnn import CRNN_PREFIXES, is_crnn

from edgevl.errors import CheckpointError

KINDS = ("crnn", "craft", "other")


def _safetensors_keys(path: Path) -> list[str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return list(f.keys())
    except Exception as e:  # safetensors raises SafetensorError (not importable by name everywhere)
        raise CheckpointError(f"{path}: not a readable .safetensors file (truncated or corrupt?): {e}") from e


def sniff(path: Path) -> tuple[str, StateDict | None, str]:
    """(kind, the tensors when they were read, their format) of a checkpoint file."""
    if path.suffix == ".safetensors":
        keys = _safetensors_keys(path)
        kind = ("crnn" if any(k.startswith(CRNN_PREFIXES) for k in keys)
                else "craft" if any(k.startswith(CRAFT_PREFIXES) for k in keys) else "other")
        return kind, None, "safetensors"
    if is_torchscript(path):
        return "other", None, "torchscript"
    sd, _, fmt = read_tensors(path)
    return ("crnn" if is_crnn(sd) else "craft" if is_craft(sd) else "other"), sd, fmt
