"""Shared fixtures: the ../shared library data (skipped when absent) and tiny ONNX models."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

# beside the checkout (../shared); EDGEVL_LIBRARY_DATA names another place (a git worktree one level deeper)
LIBRARY_DIR = Path(os.environ.get("EDGEVL_LIBRARY_DATA")
                   or Path(__file__).resolve().parents[2] / "shared" / "data" / "library")


def load_script(path: Path, name: str) -> ModuleType:
    """Import a script that is not in a package (benchmarks/, kernels/, scripts/) as module ``name``
    (registered in sys.modules, so its dataclasses and pickles can find it)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def library_dir() -> Path:
    """The real library dataset beside the checkout; tests using it skip on a user's fresh clone."""
    if not (LIBRARY_DIR / "library_books.csv").is_file():
        pytest.skip(f"library dataset not found at {LIBRARY_DIR} (only present in the project workspace)")
    return LIBRARY_DIR


def make_affine_onnx(path: Path, in_dim: int = 4, out_dim: int = 3, seed: int = 0) -> tuple[Path, np.ndarray]:
    """A tiny ONNX model y = x @ W (input 'x' float32 [batch, in_dim], output 'y'); returns (path, W)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(seed).standard_normal((in_dim, out_dim)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", in_dim])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", out_dim])],
        initializer=[numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path, w


@pytest.fixture()
def affine_onnx(tmp_path: Path) -> tuple[Path, np.ndarray]:
    return make_affine_onnx(tmp_path / "affine.onnx")


def save_tiny_bert(d: Path, layers: int = 2) -> Path:
    """A random HF BertModel (hidden 32, 4 heads) saved in ``d`` with a 99-word vocab.txt.

    Needs the export extra (torch, transformers); callers importorskip them first.
    """
    import torch
    import transformers

    cfg = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=layers,
                                  num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    transformers.BertModel(cfg).eval().save_pretrained(str(d), safe_serialization=True)
    (d / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                                           + [f"w{i}" for i in range(94)]) + "\n")
    return d
