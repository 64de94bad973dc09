"""``edgevl models build svtrv2 --target tensorrt``: the SVTRv2 bundle with its attention blocks as
``EdgevlAttention`` plugin nodes (``tensorrt/model.onnx``, :mod:`edgevl_export.trt`), for
``edgevl engine build``.

The bundle keeps the wheel's graph (not the GELU-fused one: ``BiasGelu`` is an ONNX Runtime op that
TensorRT's parser does not know) as its ONNX Runtime model, so it still runs everywhere. The
rewrite replaces the 11 ``MatMul(Q, Kᵀ) → Mul(c) → Softmax → MatMul(·, V)`` blocks of the graph
(4 + 6 encoder mixers and the decoder's attention block); the decoder's two other Softmax nodes
(a pooling over the feature height and the class softmax) are not attention and stay. Parity is
checked on ONNX Runtime CPU with the plugin op in numpy (onnxruntime-extensions) at batch 1 and 3
on the manifest's optimal size, and again here at batch 2 on each of the four input sizes; the
TensorRT optimisation profile comes from the manifest's ranges (height 32..64, width 64..128,
:func:`edgevl.tasks.registry.input_dims`). Needs the build-side extra (``pip install 'edgevl[export]'``).
TensorRT itself is not run here.
"""

from __future__ import annotations

import importlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgevl.bundle import MANIFEST_NAME, Bundle, load_bundle
from edgevl.errors import EdgevlError
from edgevl.models import svtrv2
from edgevl.safeio import read_json_file, write_text_atomic

BUNDLE_NAME = f"{svtrv2.BUNDLE_NAME}-tensorrt"
PARITY_TOL = 1e-4


def build_trt_bundle(root: Path | str) -> Bundle:
    """Build ``svtrv2-rec-tensorrt`` into ``root`` and return it loaded."""
    try:
        import onnx

        trt_bundle = importlib.import_module("edgevl_export.trt.bundle")
        check_parity = importlib.import_module("edgevl_export.trt.rewrite").check_parity
    except ImportError as e:
        raise EdgevlError("--target tensorrt needs the build-side extra "
                          f"(pip install 'edgevl[export]'): {e}") from e
    base = Path(root)
    final = base / BUNDLE_NAME
    work = Path(tempfile.mkdtemp(prefix=f".{BUNDLE_NAME}-", dir=base if base.exists() else None))
    try:
        built = svtrv2.build_bundle(work, fuse=False)
        b: Bundle = trt_bundle.add_tensorrt_graphs(built)
        trt = b.manifest.config["tensorrt"]
        original = onnx.load(str(b.model_path("model")))
        rewritten = onnx.load(str(b.path / trt["graphs"]["model"]))
        rng = np.random.default_rng(0)
        per_size = {}
        for h, w in svtrv2.SIZES:
            x = rng.uniform(-1, 1, (2, 3, h, w)).astype(np.float32)
            per_size[f"{h}x{w}"] = check_parity(original, rewritten, {"image": x}).max_abs_error
        worst = max(per_size.values())
        if worst > PARITY_TOL:
            raise EdgevlError(f"SVTRv2's EdgevlAttention graph differs by {worst:.3g} (> {PARITY_TOL})")
        path = b.path / MANIFEST_NAME
        data = read_json_file(path, "bundle manifest")
        data["name"] = BUNDLE_NAME
        data["config"]["tensorrt"]["parity_by_size"] = per_size
        write_text_atomic(path, json.dumps(data, indent=2) + "\n", "bundle manifest")
        if final.exists():
            shutil.rmtree(final)
        shutil.move(str(b.path), str(final))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return load_bundle(final)
