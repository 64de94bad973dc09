"""``edgevl export ... --target tensorrt``: add plugin-rewritten graphs to a written bundle.

For every model of the bundle, ``tensorrt/<role>.onnx`` is the graph with its attention subgraphs
replaced by ``EdgevlAttention`` (see rewrite.py), checked on ONNX Runtime CPU against the bundle's
own graph (numpy plugin op, parity ≤ 1e-4) on synthetic feeds at two batch sizes, with padded
attention masks where the model takes one. The manifest gains the files and
``config.tensorrt = {plugin, plugin_version, graphs, attention_nodes, parity_max_abs_error}``;
``edgevl engine build`` builds from these graphs when present. The ORT graphs are unchanged, so the
bundle still runs everywhere else.
"""

from __future__ import annotations

import json
from typing import Any

from edgevl_export.trt.rewrite import PLUGIN_OP, PLUGIN_VERSION, padded_feeds, rewrite_file

from edgevl.bench.inputs import synthetic_feeds
from edgevl.bundle import MANIFEST_NAME, Bundle, load_bundle, sha256_file
from edgevl.errors import EdgevlError

SUBDIR = "tensorrt"


def add_tensorrt_graphs(bundle: Bundle) -> Bundle:
    """Rewrite every model of ``bundle`` for the plugin, check parity, record it in the manifest."""
    if bundle.manifest.precision == "fp16":
        raise EdgevlError("--target tensorrt rewrites fp32 or int8 graphs; build an fp16 TensorRT engine "
                          "from the fp32 bundle with `edgevl engine build BUNDLE --precision fp16`")
    graphs: dict[str, str] = {}
    nodes: dict[str, int] = {}
    parity: dict[str, float] = {}
    for role, spec in bundle.manifest.models.items():
        feeds = [padded_feeds(synthetic_feeds(spec.inputs, bundle, batch, seed=batch)) for batch in (1, 3)]
        rel = f"{SUBDIR}/{role}.onnx"
        report, checks = rewrite_file(bundle.model_path(role), bundle.path / rel, feeds)
        graphs[role], nodes[role] = rel, report.replaced
        parity[role] = max(c.max_abs_error for c in checks)
    path = bundle.path / MANIFEST_NAME
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    for rel in graphs.values():
        data["files"][rel] = sha256_file(bundle.path / rel)
    data.setdefault("config", {})["tensorrt"] = {
        "plugin": PLUGIN_OP, "plugin_version": PLUGIN_VERSION, "graphs": graphs,
        "attention_nodes": nodes, "parity_max_abs_error": parity,
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    return load_bundle(bundle.path)
