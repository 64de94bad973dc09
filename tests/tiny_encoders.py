"""Tiny hand-made encoder bundles whose embeddings follow from construction (no torch needed).

CLIP-contract bundle (task ``clip``):
- image model: ``pixel_values`` [batch, 3, S, S] → ``image_embeds`` = the mean of each channel
  (after the manifest's normalisation, mean 0.5 / std 0.5, RGB). A pure red image gives (1, -1, -1).
- text model: ``input_ids`` [batch, seq] → ``text_embeds`` = sum of per-token vectors. Colour words
  have the vectors of their colour, every other word (template words, [UNK], [PAD]) the zero vector;
  so "a photo of a red." embeds as (1, -1, -1).
- tokenizer: WordLevel, lower-case, whitespace/punctuation split, [CLS] … [SEP] around each text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgevl.bundle import Bundle, write_bundle

COLOURS = {
    "red": (1.0, -1.0, -1.0), "crimson": (1.0, -1.0, -1.0), "scarlet": (0.9, -1.0, -1.0),
    "green": (-1.0, 1.0, -1.0), "emerald": (-1.0, 1.0, -1.0),
    "blue": (-1.0, -1.0, 1.0), "navy": (-1.0, -1.0, 1.0),
}
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "photo", "of", "the", "picture", *COLOURS]
BGR = {"red": (0, 0, 255), "green": (0, 255, 0), "blue": (255, 0, 0)}
IMAGE_SIZE = 8
LOGIT_SCALE = 10.0


def make_tokenizer(path: Path) -> Path:
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel

    vocab = {w: i for i, w in enumerate(WORDS)}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tok.save(str(path))
    return path


def token_table() -> np.ndarray:
    table = np.zeros((len(WORDS), 3), np.float32)
    for i, w in enumerate(WORDS):
        if w in COLOURS:
            table[i] = COLOURS[w]
    return table


def _save(graph: object, path: Path) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_image_onnx(path: Path) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("ReduceMean", ["pixel_values"], ["pooled"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["pooled", "P"], ["image_embeds"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_image",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT,
                                       ["batch", 3, IMAGE_SIZE, IMAGE_SIZE])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(np.eye(3, dtype=np.float32), "P")],
    )
    return _save(graph, path)


def make_text_onnx(path: Path, inputs: tuple[str, ...] = ("input_ids",), output: str = "text_embeds") -> Path:
    """Sum of token vectors; extra declared inputs (attention_mask, token_type_ids) multiply in as masks."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Gather", ["E", "input_ids"], ["vecs"])]
    cur = "vecs"
    for name in inputs[1:]:
        # multiply by (x + 1) for token_type_ids (all zeros → identity) or by the mask itself
        nodes += [helper.make_node("Cast", [name], [f"{name}_f"], to=TensorProto.FLOAT)]
        src = f"{name}_f"
        if name == "token_type_ids":
            nodes += [helper.make_node("Add", [src, "one"], [f"{name}_p1"])]
            src = f"{name}_p1"
        nodes += [helper.make_node("Unsqueeze", [src, "ax2"], [f"{name}_u"]),
                  helper.make_node("Mul", [cur, f"{name}_u"], [f"{cur}_{name}"])]
        cur = f"{cur}_{name}"
    nodes.append(helper.make_node("ReduceSum", [cur, "ax1"], [output], keepdims=0))
    graph = helper.make_graph(
        nodes, "tiny_text",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in inputs],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(token_table(), "E"),
                     numpy_helper.from_array(np.array([1], np.int64), "ax1"),
                     numpy_helper.from_array(np.array([2], np.int64), "ax2"),
                     numpy_helper.from_array(np.array(1.0, np.float32), "one")],
    )
    return _save(graph, path)


def make_clip_bundle(root: Path, context_length: int = 16) -> Bundle:
    work = root / "src"
    work.mkdir(parents=True, exist_ok=True)
    return write_bundle(
        root / "tiny-clip", name="tiny-clip", task="clip",
        models={"image": make_image_onnx(work / "image.onnx"), "text": make_text_onnx(work / "text.onnx")},
        extra_files={"tokenizer.json": make_tokenizer(work / "tokenizer.json")},
        preprocess={"size": IMAGE_SIZE, "resize": "shortest", "crop": "center", "interpolation": "bicubic",
                    "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "color": "RGB"},
        config={"tokenizer": "tokenizer.json", "context_length": context_length, "pad_id": 0,
                "logit_scale": LOGIT_SCALE, "embed_dim": 3, "arch": "tiny-test"},
    )


def make_text_embedding_bundle(root: Path,
                               inputs: tuple[str, ...] = ("input_ids", "attention_mask")) -> Bundle:
    work = root / "src-te"
    work.mkdir(parents=True, exist_ok=True)
    return write_bundle(
        root / "tiny-te", name="tiny-te", task="text-embedding",
        models={"text": make_text_onnx(work / "text.onnx", inputs, "sentence_embedding")},
        extra_files={"tokenizer.json": make_tokenizer(work / "tokenizer.json")},
        config={"tokenizer": "tokenizer.json", "max_length": 8, "pad_id": 0, "normalized": False},
    )


def solid_image(colour: str, h: int = 20, w: int = 30) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = BGR[colour]
    return img
