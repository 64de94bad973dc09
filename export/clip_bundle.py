"""Write a CLIP bundle (task ``clip``): image and text encoders as separate ONNX files.

Contract (see the team's bundle contracts): model ``image`` takes ``pixel_values`` float32
[batch, 3, S, S] and returns ``image_embeds`` float32 [batch, D]; model ``text`` takes
``input_ids`` int64 [batch, seq] (seq ≤ context_length) and returns ``text_embeds`` float32
[batch, D]. Embeddings are not normalised. fp16 bundles keep float32 inputs and outputs (the
casts are inside the graph) and LayerNorm/Softmax/ReduceMean in fp32.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from edgevl_export.models.clip import CLIP
from edgevl_export.onnx import DEFAULT_OPSET, ExportError, convert_fp16, export_module, verify_against_torch
from torch import nn

from edgevl.bundle import Bundle, write_bundle

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
FP32_TOLERANCE = 1e-4
FP16_TOLERANCE = 2e-2


class ImageTower(nn.Module):
    def __init__(self, model: CLIP) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixel_values)


class TextTower(nn.Module):
    def __init__(self, model: CLIP) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(input_ids)


def clip_preprocess(size: int, mean: tuple[float, ...] = OPENAI_MEAN,
                    std: tuple[float, ...] = OPENAI_STD) -> dict[str, Any]:
    return {"size": size, "resize": "shortest", "crop": "center", "interpolation": "bicubic",
            "mean": list(mean), "std": list(std), "color": "RGB"}


def _probe_inputs(model: CLIP, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Inputs for the post-export check, shaped unlike the export examples (batch 3, other seq)."""
    cfg = model.config
    rng = np.random.default_rng(seed)
    s = cfg.vision.image_size
    pixels = rng.standard_normal((3, 3, s, s)).astype(np.float32)
    seq = max(2, min(cfg.text.context_length, 11))
    ids = rng.integers(0, cfg.text.vocab_size, (3, seq)).astype(np.int64)
    ids[ids == cfg.text.eot_id] = 1
    ids[0, seq // 2] = cfg.text.eot_id  # one sequence with EOT mid-way, one with none, one at the end
    ids[2, -1] = cfg.text.eot_id
    return pixels, ids


def export_clip(
    model: CLIP,
    out_dir: Path | str,
    *,
    tokenizer_json: str | bytes,
    name: str,
    arch: str,
    precision: str = "fp32",
    opset: int = DEFAULT_OPSET,
    pad_id: int = 0,
    preprocess: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    dynamo: bool = False,
) -> Bundle:
    """Export ``model`` to a checked CLIP bundle in ``out_dir`` (fp32 or fp16).

    Every ONNX file passes ``onnx.checker`` and is run on ONNX Runtime against the torch module
    on fresh inputs (other batch size and sequence length than the export examples); the measured
    relative errors go into ``manifest.extra["parity"]``.
    """
    if precision not in ("fp32", "fp16"):
        raise ExportError(f"export_clip writes fp32 or fp16 bundles, not {precision!r} "
                          "(int8: export fp32, then edgevl_export.quantize.quantize_bundle)")
    model = model.float().eval()
    cfg = model.config
    s, ctx = cfg.vision.image_size, cfg.text.context_length
    pixels, ids = _probe_inputs(model)
    with torch.no_grad():
        want_img = model.encode_image(torch.from_numpy(pixels)).numpy()
        want_txt = model.encode_text(torch.from_numpy(ids)).numpy()
    tol = FP32_TOLERANCE if precision == "fp32" else FP16_TOLERANCE
    with tempfile.TemporaryDirectory(prefix="edgevl-export-") as tmp:
        t = Path(tmp)
        img = export_module(
            ImageTower(model), (torch.zeros(2, 3, s, s),), t / "image.onnx",
            input_names=["pixel_values"], output_names=["image_embeds"],
            dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}},
            opset=opset, dynamo=dynamo,
        )
        example_ids = torch.ones(2, max(2, min(ctx, 7)), dtype=torch.int64)
        txt = export_module(
            TextTower(model), (example_ids,), t / "text.onnx",
            input_names=["input_ids"], output_names=["text_embeds"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "text_embeds": {0: "batch"}},
            opset=opset, dynamo=dynamo,
        )
        if precision == "fp16":
            img = convert_fp16(img, t / "image16.onnx")
            txt = convert_fp16(txt, t / "text16.onnx")
        reports = [
            verify_against_torch(img, {"pixel_values": pixels}, want_img, "image", tol),
            verify_against_torch(txt, {"input_ids": ids}, want_txt, "text", tol),
        ]
        config = {
            "tokenizer": "tokenizer.json",
            "text_clean": "ftfy_html",  # OpenAI's basic_clean before the BPE (edgevl/text/clean.py)
            "context_length": ctx,
            "pad_id": pad_id,
            "eot_id": cfg.text.eot_id,
            "logit_scale": float(math.exp(float(model.logit_scale.detach()))),
            "embed_dim": cfg.embed_dim,
            "arch": arch,
            "model_config": cfg.to_dict(),
        }
        tok = tokenizer_json.encode() if isinstance(tokenizer_json, str) else tokenizer_json
        return write_bundle(
            out_dir, name=name, task="clip", precision=precision,
            models={"image": img, "text": txt},
            extra_files={"tokenizer.json": tok},
            preprocess=dict(preprocess) if preprocess else clip_preprocess(s),
            config=config,
            source=dict(source or {}),
            extra={"opset": opset, "exporter": "dynamo" if dynamo else "torchscript",
                   "parity": [r.to_dict() for r in reports]},
        )


def export_checkpoint(
    checkpoint: Path | str,
    out_dir: Path | str,
    *,
    arch: str | None = None,
    precision: str = "fp32",
    opset: int = DEFAULT_OPSET,
    tokenizer: Path | str | None = None,
    quick_gelu: bool | None = None,
    name: str | None = None,
    dynamo: bool = False,
) -> Bundle:
    """Checkpoint (any form :func:`edgevl_export.loaders.clip.load_clip` reads) → CLIP bundle.

    The tokenizer comes from ``tokenizer`` (tokenizer.json, vocab.json beside merges.txt,
    bpe_simple_vocab_16e6.txt.gz, or a folder with one of them), else from the checkpoint's folder.
    """
    from edgevl_export.loaders.clip import load_clip
    from edgevl_export.tokenizer import find_tokenizer_files, load_clip_tokenizer

    from edgevl.errors import CheckpointError

    ckpt = Path(checkpoint)
    loaded = load_clip(ckpt, arch=arch, quick_gelu=quick_gelu)
    cfg = loaded.model.config
    tok_src = Path(tokenizer) if tokenizer else find_tokenizer_files(ckpt if ckpt.is_dir() else ckpt.parent)
    if tok_src is None:
        raise CheckpointError(
            f"{ckpt}: no tokenizer found beside the checkpoint; pass --tokenizer with tokenizer.json, "
            "vocab.json (+ merges.txt) or open_clip's bpe_simple_vocab_16e6.txt.gz"
        )
    tok = load_clip_tokenizer(tok_src, context_length=cfg.text.context_length, pad_id=0)
    vocab = tok.get_vocab()
    if len(vocab) > cfg.text.vocab_size:
        raise CheckpointError(f"{tok_src}: tokenizer has {len(vocab)} tokens, the model's embedding only "
                              f"{cfg.text.vocab_size}; wrong tokenizer?")
    eot = vocab.get("<|endoftext|>")
    if eot != cfg.text.eot_id:
        raise CheckpointError(f"{tok_src}: tokenizer's <|endoftext|> id {eot} differs from the model's "
                              f"end-of-text id {cfg.text.eot_id}; wrong tokenizer?")
    source = {**loaded.source(), "tokenizer": tok_src.name}
    return export_clip(
        loaded.model, out_dir, tokenizer_json=tok.to_str(), name=name or loaded.arch, arch=loaded.arch,
        precision=precision, opset=opset, pad_id=0, source=source, dynamo=dynamo,
    )
