"""Export a Hugging Face BERT sentence encoder (e.g. all-MiniLM-L6-v2) to an edgevl bundle.

Bundle contract (task ``text-embedding``): model ``text`` with inputs ``input_ids`` and
``attention_mask`` (int64 ``[batch, seq]``, both dynamic) and output ``sentence_embedding``
(float32 ``[batch, hidden]``, mean-pooled and L2-normalised inside the graph); ``tokenizer.json``
copied in; config ``tokenizer``, ``max_length``, ``pad_id``, ``normalized: true``.

By default the ONNX file holds standard ops only (opset ≥ 17, so LayerNorm is one
``LayerNormalization`` node), which keeps it portable to TensorRT and to QDQ quantisation. The
graph is written in the shape ONNX Runtime's transformer optimiser recognises: with ``fuse=True``
``onnxruntime.transformers.optimizer`` rewrites it to 6 ``Attention``, 12
``SkipLayerNormalization`` and 6 ``BiasGelu`` contrib nodes (MiniLM) and that model goes in the
bundle instead. It is not the default because on the 2-core Xeon this was measured on it ran
slower than the standard-op graph (673 vs 749 ms at batch 32 x 56 tokens, interleaved; ORT's
own session optimisation already fuses GELU and keeps LayerNormalization whole). The fused nodes
ORT builds at load time are recorded in ``manifest.extra["ort_fusions"]``.
"""

from __future__ import annotations

import collections
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from edgevl_export.loaders.hf_bert import WEIGHT_FILES, load_hf_bert
from edgevl_export.models.bert import SentenceEncoder

from edgevl.bundle import Bundle, sha256_file, write_bundle
from edgevl.errors import CheckpointError, InputError

TASK = "text-embedding"
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "sentence_embedding"
FUSED_OPS = ("Attention", "MultiHeadAttention", "SkipLayerNormalization", "BiasGelu", "Gelu",
             "FastGelu", "EmbedLayerNormalization", "LayerNormalization")


def export_onnx(model: SentenceEncoder, path: Path, opset: int = 17) -> None:
    """Trace the sentence encoder to ONNX with dynamic batch and sequence length."""
    if opset < 17:
        raise InputError(f"opset {opset} < 17: LayerNormalization needs opset 17 or newer")
    ids = torch.tensor([[2, 5, 6, 3], [2, 5, 3, 0]], dtype=torch.int64)  # any ids < vocab: traced once
    mask = (ids != 0).to(torch.int64)
    dyn = {"batch": 0, "seq": 1}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # the TorchScript exporter keeps the MatMul/Softmax attention pattern ORT fuses (the dynamo
        # exporter's output was not fused into Attention by onnxruntime 1.32)
        torch.onnx.export(
            model, (ids, mask), str(path),
            input_names=list(INPUTS), output_names=[OUTPUT], opset_version=opset, dynamo=False,
            dynamic_axes={
                "input_ids": {v: k for k, v in dyn.items()},
                "attention_mask": {v: k for k, v in dyn.items()},
                OUTPUT: {0: "batch"},
            },
        )
    import onnx

    onnx.checker.check_model(str(path), full_check=True)


def to_fp16(src: Path, dst: Path) -> None:
    """fp16 weights and compute, fp32 inputs/outputs; LayerNormalization kept in fp32."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    m = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True,
                                 op_block_list=["LayerNormalization", "ReduceSum", "Div", "Clip"])
    onnx.save(m, str(dst))


def fusion_report(path: Path) -> dict[str, int]:
    """Counts of fused transformer nodes in the graph ONNX Runtime (CPU, level ALL) builds."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        so.log_severity_level = 3
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        counts = collections.Counter(n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node)
    return {op: counts[op] for op in FUSED_OPS if counts[op]}


def _tokenizer_file(folder: Path, out: Path) -> Path:
    tj = folder / "tokenizer.json"
    if tj.is_file():
        return tj
    vocab = folder / "vocab.txt"
    if not vocab.is_file():
        raise CheckpointError(f"{folder}: neither tokenizer.json nor vocab.txt found")
    from tokenizers.implementations import BertWordPieceTokenizer

    lower = True
    tc = folder / "tokenizer_config.json"
    if tc.is_file():
        lower = bool(json.loads(tc.read_text(encoding="utf-8")).get("do_lower_case", True))
    dst = out / "tokenizer.from_vocab.json"
    BertWordPieceTokenizer(str(vocab), lowercase=lower).save(str(dst))
    return dst


def _max_length(folder: Path, raw: dict[str, Any]) -> int:
    limit = int(raw.get("max_position_embeddings", 512))
    st = folder / "sentence_bert_config.json"
    if st.is_file():
        v = json.loads(st.read_text(encoding="utf-8")).get("max_seq_length")
        if isinstance(v, int) and v > 0:
            return min(v, limit)
    return limit


def _parity(model: SentenceEncoder, onnx_path: Path, vocab: int) -> dict[str, float]:
    """Relative max error of the ONNX on ORT against the torch module on a padded random batch."""
    import onnxruntime as ort

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(min(1000, vocab // 4), min(vocab, 20000), (3, 19), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0
    mask[2, 4:] = 0
    ids[mask == 0] = 0
    with torch.no_grad():
        ref = model(ids, mask).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run([OUTPUT], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    return {"max_abs": float(np.abs(got - ref).max()),
            "rel": float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12))}


def fuse_for_ort(src: Path, dst: Path, num_heads: int, hidden_size: int) -> dict[str, int]:
    """ORT transformer optimiser (CPU): Attention / SkipLayerNormalization / BiasGelu contrib nodes."""
    from onnxruntime.transformers.optimizer import optimize_model

    opt = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                         opt_level=0, use_gpu=False)
    opt.save_model_to_file(str(dst))
    stats = opt.get_fused_operator_statistics()
    return {k: int(v) for k, v in stats.items() if v}


def export_bert(checkpoint_dir: Path | str, out_dir: Path | str, precision: str = "fp32",
                opset: int = 17, name: str | None = None, fuse: bool = False) -> Bundle:
    """HF BERT folder → ``text-embedding`` bundle in ``out_dir`` (see the module docstring)."""
    folder = Path(checkpoint_dir)
    if precision not in ("fp32", "fp16"):
        raise InputError(f"precision {precision!r}: export_bert writes fp32 or fp16 "
                         "(int8 comes from edgevl quantize)")
    model, cfg, raw = load_hf_bert(folder)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        onnx_path = tmp / "text.onnx"
        export_onnx(model, onnx_path, opset)
        parity = _parity(model, onnx_path, cfg.vocab_size)
        if parity["rel"] > 1e-4:
            raise CheckpointError(f"{folder}: exported ONNX disagrees with torch "
                                  f"(rel err {parity['rel']:.2e})")
        fused: dict[str, int] = {}
        if fuse:
            if precision != "fp32":
                raise InputError("fuse=True writes ORT contrib ops; use it with precision fp32")
            fused = fuse_for_ort(onnx_path, tmp / "text.fused.onnx", cfg.num_heads, cfg.hidden_size)
            onnx_path = tmp / "text.fused.onnx"
            parity = _parity(model, onnx_path, cfg.vocab_size)
            if parity["rel"] > 1e-4:
                raise CheckpointError(f"{folder}: ORT-fused ONNX disagrees with torch "
                                      f"(rel err {parity['rel']:.2e})")
        if precision == "fp16":
            to_fp16(onnx_path, tmp / "text16.onnx")
            onnx_path = tmp / "text16.onnx"
            parity = _parity(model, onnx_path, cfg.vocab_size)
            if parity["rel"] > 1e-2:
                raise CheckpointError(f"{folder}: fp16 ONNX disagrees with torch "
                                      f"(rel err {parity['rel']:.2e})")
        tokenizer = _tokenizer_file(folder, tmp)
        weights = next(folder / f for f in WEIGHT_FILES if (folder / f).is_file())
        pad_id = cfg.pad_id
        tj = json.loads(tokenizer.read_text(encoding="utf-8"))
        if isinstance(tj.get("padding"), dict) and "pad_id" in tj["padding"]:
            pad_id = int(tj["padding"]["pad_id"])
        if name is None:
            name = folder.resolve().name
            if name in ("model", "checkpoint", "."):
                name = folder.resolve().parent.name
        return write_bundle(
            out,
            name=name,
            task=TASK,
            models={"text": onnx_path},
            precision=precision,
            extra_files={"tokenizer.json": tokenizer},
            config={
                "tokenizer": "tokenizer.json",
                "max_length": _max_length(folder, raw),
                "pad_id": pad_id,
                "normalized": True,
                "pooling": "mean",
                "embed_dim": cfg.hidden_size,
                "arch": f"bert-L{cfg.num_layers}-H{cfg.hidden_size}",
            },
            source={"format": "hf-bert", "checkpoint": folder.resolve().name,
                    "weights": weights.name, "sha256": sha256_file(weights)},
            extra={"opset": opset, "parity_onnx_vs_torch": parity,
                   "ort_fusions": fusion_report(onnx_path),
                   "fused_at_export": fused or None},
        )
