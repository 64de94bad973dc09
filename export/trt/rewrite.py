"""``--target tensorrt``: attention subgraphs → one ``EdgevlAttention`` node (the TensorRT plugin).

The exported CLIP and MiniLM graphs spell attention as

    MatMul(Q, Kᵀ) → Mul(c) | Div(c) → [Add(bias)] → Softmax(-1) → MatMul(·, V)

with Q, V ``[batch, heads, seq, head_dim]`` and Kᵀ a Transpose of the key projection. Each match
becomes ``EdgevlAttention(Q, K, V[, bias])`` with attributes ``scale`` (c, or 1/c for Div),
``causal`` = 0, and ``plugin_version``/``plugin_namespace`` for TensorRT's ONNX parser, which maps an
op type it does not know to the registered plugin creator of that name (kernels/plugin). Kᵀ's
Transpose is composed with the inverse swap, so K reaches the plugin as ``[b, h, s, d]``; a bias
of rank < 4 is unsqueezed to rank 4 (the plugin broadcasts size-1 batch/head/query axes).

Everything else in the graph is untouched. ``check_parity`` runs the rewritten graph on ONNX
Runtime CPU with the plugin op implemented in numpy (``numerics.attention``, an
onnxruntime-extensions Python custom op) against the original graph.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgevl.errors import EdgevlError

PLUGIN_OP = "EdgevlAttention"
PLUGIN_DOMAIN = "edgevl.trt"
PLUGIN_VERSION = "1"
ORT_CONTRIB_DOMAIN = "ai.onnx.contrib"  # the domain onnxruntime-extensions serves Python ops from
PARITY_TOL = 1e-4


@dataclass(frozen=True)
class RewriteReport:
    """What one rewrite did: the matches replaced and the Softmax nodes left alone (with why)."""

    replaced: int
    skipped: tuple[str, ...]


@dataclass(frozen=True)
class ParityReport:
    max_abs_error: float
    outputs: tuple[str, ...]
    feeds: Mapping[str, tuple[int, ...]]

    @property
    def ok(self) -> bool:
        return self.max_abs_error <= PARITY_TOL


def _const_scalar(model: Any, name: str, producers: Mapping[str, Any]) -> float | None:
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.name == name:
            arr = numpy_helper.to_array(init)
            return float(arr.reshape(-1)[0]) if arr.size == 1 else None
    node = producers.get(name)
    if node is not None and node.op_type == "Constant":
        for a in node.attribute:
            if a.name == "value":
                arr = numpy_helper.to_array(a.t)
                return float(arr.reshape(-1)[0]) if arr.size == 1 else None
            if a.name == "value_float":
                return float(a.f)
    return None


def _perm(node: Any) -> list[int] | None:
    for a in node.attribute:
        if a.name == "perm":
            return list(a.ints)
    return None


def _is_scaled_scores(node: Any, producers: Mapping[str, Any]) -> bool:
    """Mul/Div with a MatMul operand (q·kᵀ scaled), as opposed to the mask's own Mul."""
    if node is None or node.op_type not in ("Mul", "Div"):
        return False
    operands = node.input[:1] if node.op_type == "Div" else node.input
    return any((p := producers.get(i)) is not None and p.op_type == "MatMul" for i in operands)


def _ranks(model: Any) -> dict[str, int]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    out: dict[str, int] = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        t = vi.type.tensor_type
        if t.HasField("shape"):
            out[vi.name] = len(t.shape.dim)
    for init in model.graph.initializer:
        out[init.name] = len(init.dims)
    return out


def rewrite_attention(model: Any, *, domain: str = PLUGIN_DOMAIN) -> tuple[Any, RewriteReport]:
    """A copy of ``model`` (onnx.ModelProto) with every matched attention replaced by the plugin op."""
    import onnx
    from onnx import helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    producers = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    graph_outputs = {o.name for o in g.output}
    ranks = _ranks(m)

    def single_use(name: str) -> bool:
        return len(consumers.get(name, [])) == 1 and name not in graph_outputs

    remove: set[int] = set()
    new_nodes: dict[int, list[Any]] = {}  # insert before the node with this id (the P·V MatMul)
    skipped: list[str] = []
    replaced = 0
    for sm in list(g.node):
        if sm.op_type != "Softmax":
            continue
        axis = next((a.i for a in sm.attribute if a.name == "axis"), -1)
        where = sm.name or sm.output[0]
        if axis not in (-1, 3):
            skipped.append(f"{where}: softmax axis {axis}")
            continue
        pv = consumers.get(sm.output[0], [])
        if len(pv) != 1 or pv[0].op_type != "MatMul" or pv[0].input[0] != sm.output[0] \
                or sm.output[0] in graph_outputs:
            skipped.append(f"{where}: output is not only the left operand of a MatMul")
            continue
        chain = [sm]
        x = producers.get(sm.input[0])
        bias = None
        if x is not None and x.op_type == "Add" and single_use(x.output[0]):
            sc_side = [i for i in x.input if _is_scaled_scores(producers.get(i), producers)]
            if len(sc_side) != 1:
                skipped.append(f"{where}: Add without a scaled score operand")
                continue
            bias = x.input[1] if x.input[0] == sc_side[0] else x.input[0]
            chain.append(x)
            x = producers.get(sc_side[0])
        if x is None or x.op_type not in ("Mul", "Div") or not single_use(x.output[0]):
            skipped.append(f"{where}: no Mul/Div scale before the softmax")
            continue
        if x.op_type == "Mul":
            mm_in = [i for i in x.input if (p := producers.get(i)) is not None and p.op_type == "MatMul"]
            c_in = [i for i in x.input if i not in mm_in]
        else:
            mm_in, c_in = [x.input[0]], [x.input[1]]
        c = _const_scalar(m, c_in[0], producers) if len(mm_in) == 1 and len(c_in) == 1 else None
        if c is None or c == 0.0:
            skipped.append(f"{where}: scale is not a constant scalar")
            continue
        scale = c if x.op_type == "Mul" else 1.0 / c
        chain.append(x)
        qk = producers.get(mm_in[0])
        if qk is None or qk.op_type != "MatMul" or not single_use(qk.output[0]):
            skipped.append(f"{where}: scores are not a single-use MatMul")
            continue
        chain.append(qk)
        q, kt, v = qk.input[0], qk.input[1], pv[0].input[1]
        if any(ranks.get(t) != 4 for t in (q, kt, v)):
            skipped.append(f"{where}: q/kᵀ/v are not rank 4")
            continue
        if bias is not None and ranks.get(bias) is None:
            skipped.append(f"{where}: bias rank unknown")
            continue
        inserted: list[Any] = []
        tp = producers.get(kt)
        perm = _perm(tp) if tp is not None and tp.op_type == "Transpose" else None
        base = where.replace("/", "_")
        if perm is not None and len(perm) == 4:
            composed = [perm[i] for i in (0, 1, 3, 2)]
            if composed == [0, 1, 2, 3]:
                k = tp.input[0]
            else:
                k = f"{base}_k_bhsd"
                inserted.append(helper.make_node("Transpose", [tp.input[0]], [k], perm=composed,
                                                 name=f"{base}_k_transpose"))
        else:
            k = f"{base}_k_bhsd"
            inserted.append(helper.make_node("Transpose", [kt], [k], perm=[0, 1, 3, 2],
                                             name=f"{base}_k_transpose"))
        inputs = [q, k, v]
        if bias is not None:
            r = ranks[bias]
            if r > 4:
                skipped.append(f"{where}: bias rank {r} > 4")
                continue
            if r < 4:
                axes = f"{base}_bias_axes"
                axes_t = helper.make_tensor(axes, onnx.TensorProto.INT64, [4 - r], list(range(4 - r)))
                inserted.append(helper.make_node("Constant", [], [axes], name=f"{base}_bias_axes_const",
                                                 value=axes_t))
                b4 = f"{base}_bias4"
                inserted.append(helper.make_node("Unsqueeze", [bias, axes], [b4],
                                                 name=f"{base}_bias_unsqueeze"))
                bias = b4
            inputs.append(bias)
        inserted.append(helper.make_node(
            PLUGIN_OP, inputs, [pv[0].output[0]], name=f"{base}_{PLUGIN_OP}", domain=domain,
            scale=float(scale), causal=0, plugin_version=PLUGIN_VERSION, plugin_namespace=""))
        remove |= {id(n) for n in chain} | {id(pv[0])}
        new_nodes[id(pv[0])] = inserted
        replaced += 1
    if replaced == 0:
        return m, RewriteReport(0, tuple(skipped))
    nodes: list[Any] = []
    for n in g.node:
        if id(n) in new_nodes:
            nodes += new_nodes[id(n)]
        if id(n) not in remove:
            nodes.append(n)
    nodes = _drop_dead(nodes, graph_outputs)
    del g.node[:]
    g.node.extend(nodes)
    if not any(o.domain == domain for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid(domain, 1))
    return m, RewriteReport(replaced, tuple(skipped))


def subgraph_reads(node: Any) -> set[str]:
    """Every tensor name the node's subgraphs (If/Loop/Scan bodies) read, their own outputs included:
    a body may read a tensor of the outer graph by name (SVTRv2's decoder does), and a node feeding
    only such a body is not dead."""
    names: set[str] = set()
    for a in node.attribute:
        graphs = [a.g] if a.HasField("g") else list(a.graphs)
        for g in graphs:
            for n in g.node:
                names.update(n.input)
                names |= subgraph_reads(n)
            names.update(o.name for o in g.output)
    return names


def _drop_dead(nodes: list[Any], outputs: set[str]) -> list[Any]:
    """Nodes whose outputs nobody reads any more (the Kᵀ transposes that were folded away)."""
    inner = {i for n in nodes for i in subgraph_reads(n)}
    while True:
        used = set(outputs) | inner | {i for n in nodes for i in n.input}
        keep = [n for n in nodes if any(o in used for o in n.output)]
        if len(keep) == len(nodes):
            return keep
        nodes = keep


# ---------------------------------------------------------------- parity on ONNX Runtime CPU

_REGISTERED = False


def _register_numpy_op() -> str:
    """Register the plugin op (3- and 4-input forms) as onnxruntime-extensions Python ops."""
    global _REGISTERED
    try:
        from onnxruntime_extensions import PyCustomOpDef, get_library_path, onnx_op
    except ImportError as e:
        raise EdgevlError("the --target tensorrt parity check needs onnxruntime-extensions: "
                          "pip install 'edgevl[export]'") from e
    if not _REGISTERED:
        from edgevl_export.trt.numerics import attention

        f = PyCustomOpDef.dt_float
        attrs = {"scale": PyCustomOpDef.dt_float, "causal": PyCustomOpDef.dt_int64}

        def run(q: Any, k: Any, v: Any, bias: Any = None, **kw: Any) -> Any:
            return attention(q, k, v, scale=float(kw["scale"]), causal=bool(kw["causal"]),
                             bias=bias).astype(np.float32)

        onnx_op(op_type=PLUGIN_OP, inputs=[f, f, f, f], outputs=[f], attrs=attrs)(run)
        onnx_op(op_type=PLUGIN_OP + "3", inputs=[f, f, f], outputs=[f], attrs=attrs)(run)
        _REGISTERED = True
    return str(get_library_path())


def for_ort(model: Any) -> Any:
    """A copy whose plugin nodes are the onnxruntime-extensions ops (domain, 3-input op name)."""
    import onnx
    from onnx import helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for n in m.graph.node:
        if n.op_type == PLUGIN_OP:
            n.domain = ORT_CONTRIB_DOMAIN
            if len(n.input) == 3:
                n.op_type = PLUGIN_OP + "3"
            keep = [a for a in n.attribute if a.name in ("scale", "causal")]
            del n.attribute[:]
            n.attribute.extend(keep)
    ops = [o for o in m.opset_import if o.domain not in (PLUGIN_DOMAIN, ORT_CONTRIB_DOMAIN)]
    del m.opset_import[:]
    m.opset_import.extend([*ops, helper.make_opsetid(ORT_CONTRIB_DOMAIN, 1)])
    return m


def run_both(original: Any, rewritten: Any, feeds: Mapping[str, np.ndarray[Any, Any]]
             ) -> tuple[list[np.ndarray[Any, Any]], list[np.ndarray[Any, Any]]]:
    import onnxruntime as ort

    lib = _register_numpy_op()
    so = ort.SessionOptions()
    so.register_custom_ops_library(lib)
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    base = ort.InferenceSession(original.SerializeToString(), providers=["CPUExecutionProvider"])
    plug = ort.InferenceSession(for_ort(rewritten).SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    return base.run(None, dict(feeds)), plug.run(None, dict(feeds))


def check_parity(original: Any, rewritten: Any, feeds: Mapping[str, np.ndarray[Any, Any]]) -> ParityReport:
    """Max |rewritten - original| over every output, on ORT CPU with the numpy plugin op."""
    a, b = run_both(original, rewritten, feeds)
    err = max((float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))) if x.size else 0.0)
              for x, y in zip(a, b, strict=True))
    return ParityReport(err, tuple(o.name for o in original.graph.output),
                        {k: tuple(v.shape) for k, v in feeds.items()})


def padded_feeds(feeds: Mapping[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
    """Feeds with the last sequence of every ``*mask*`` input half padded (keys the plugin must skip)."""
    out = {k: np.array(v) for k, v in feeds.items()}
    for name, a in out.items():
        if "mask" in name.lower() and a.ndim == 2 and a.shape[1] > 1:
            a[-1, a.shape[1] // 2:] = 0
    return out


def rewrite_file(src: Path, dst: Path, feeds: Sequence[Mapping[str, np.ndarray[Any, Any]]]
                 ) -> tuple[RewriteReport, list[ParityReport]]:
    """Rewrite ``src`` into ``dst`` and check parity on each feed dict; EdgevlError past 1e-4."""
    import onnx

    model = onnx.load(str(src))
    rewritten, report = rewrite_attention(model)
    if report.replaced == 0:
        raise EdgevlError(f"{src}: no attention subgraph matched the plugin pattern "
                          f"({'; '.join(report.skipped[:3]) or 'no Softmax'})")
    parity = [check_parity(model, rewritten, f) for f in feeds]
    worst = max(p.max_abs_error for p in parity)
    if worst > PARITY_TOL:
        raise EdgevlError(f"{src}: the {PLUGIN_OP} rewrite differs from the original graph by {worst:.3g} "
                          f"(> {PARITY_TOL}) on ONNX Runtime CPU")
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(rewritten, str(dst))
    return report, parity
