"""Exact float rewrites of transformer attention before int8 quantisation (BERT, CLIP text/vision).

On ORT's CPU provider an int8 transformer spends as long in its elementwise passes as in its int8
MatMuls, and every bias ``Add`` after an int8 MatMul is one more pass over the activations
(ORT's QDQ MatMul fusion, ``MatMulIntegerToFloat``, leaves it outside). Two of the attention biases
can go without changing the function:

* the **key bias**: ``scores[i, j] = q_i · (k_j + b_k) = q_i · k_j + q_i · b_k``; the second term is
  the same for every key j of query i, and softmax over the keys ignores it.
* the **value bias**: the softmax rows sum to 1, so ``P @ (V + b_v) = P @ V + b_v``, and after the
  output projection ``(ctx + b_v) @ W_o + b_o = ctx @ W_o + (b_v @ W_o + b_o)``: folded into b_o.

Both are checked on the graph's structure (a Softmax over the last axis, only a constant scale and
an additive mask between the scores MatMul and it, reshapes/transposes on the key/value path) and
then on its outputs (:func:`fold_attention_biases` keeps the model unchanged when they differ).
These rewrites make the float graph cheaper too: they are part of what the int8 bundle gains over
the fp32 bundle and are reported separately (``report["attention_biases"]``).
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

PASS_THROUGH = ("Reshape", "Transpose")


class _Graph:
    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.inits = {i.name: i for i in model.graph.initializer}
        self.producer = {o: n for n in model.graph.node for o in n.output}
        self.readers: dict[str, list[onnx.NodeProto]] = collections.defaultdict(list)
        for n in model.graph.node:
            for i in n.input:
                self.readers[i].append(n)
        self.outputs = {o.name for o in model.graph.output}

    def const(self, name: str) -> np.ndarray | None:
        return numpy_helper.to_array(self.inits[name]) if name in self.inits else None

    def add_const(self, base: str, value: np.ndarray) -> str:
        """A new float initializer under an unused name (exported graphs share equal constants)."""
        name, k = base, 0
        while name in self.inits or name in self.producer:
            k += 1
            name = f"{base}_{k}"
        self.model.graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), name))
        self.inits[name] = self.model.graph.initializer[-1]
        return name

    def single(self, tensor: str) -> bool:
        return len(self.readers[tensor]) == 1 and tensor not in self.outputs

    def projection_bias(self, tensor: str) -> tuple[onnx.NodeProto, int, onnx.NodeProto] | None:
        """``tensor`` ← Reshape/Transpose* ← Add(MatMul(x, W), b): (the Add, b's input index, the MatMul)."""
        cur = tensor
        while True:
            p = self.producer.get(cur)
            if p is None or not self.single(p.output[0]):
                return None
            if p.op_type in PASS_THROUGH:
                cur = p.input[0]
                continue
            if p.op_type != "Add" or len(p.input) != 2:
                return None
            k = next((k for k, i in enumerate(p.input) if i in self.inits), None)
            if k is None:
                return None
            mm = self.producer.get(p.input[1 - k])
            b, w = self.const(p.input[k]), None if mm is None else self.const(mm.input[1])
            if (mm is None or mm.op_type != "MatMul" or w is None or b is None or w.ndim != 2
                    or b.shape != (w.shape[1],) or not self.single(mm.output[0])):
                return None
            return p, k, mm

    def scores_matmul(self, softmax: onnx.NodeProto) -> onnx.NodeProto | None:
        """The activation x activation MatMul whose output reaches ``softmax`` through a scale/mask."""
        return self._scores(softmax.input[0], 4)

    def _scores(self, cur: str, depth: int) -> onnx.NodeProto | None:
        p = self.producer.get(cur)
        if p is None or depth == 0 or not self.single(cur):
            return None
        if p.op_type == "MatMul" and p.input[1] not in self.inits:
            return p
        scale = self.const(p.input[1]) if p.op_type in ("Div", "Mul") and len(p.input) == 2 else None
        if scale is not None and scale.size == 1:
            return self._scores(p.input[0], depth - 1)
        if p.op_type == "Add" and len(p.input) == 2:  # the additive mask: follow the side that is not it
            found = [m for m in (self._scores(i, depth - 1) for i in p.input) if m is not None]
            return found[0] if len(found) == 1 else None
        return None


def _softmax_last_axis(n: onnx.NodeProto, opset: int) -> bool:
    axis = next((a.i for a in n.attribute if a.name == "axis"), -1 if opset >= 13 else 1)
    return axis == -1  # the exporters write -1; another explicit axis is not matched


def _bypass(g: _Graph, add: onnx.NodeProto, k: int) -> None:
    """Rewire the Add's reader to its non-bias input; the Add is then pruned."""
    for r in g.readers[add.output[0]]:
        r.input[:] = [add.input[1 - k] if i == add.output[0] else i for i in r.input]


def _out_projection_bias(g: _Graph, ctx: str) -> tuple[onnx.NodeProto, onnx.NodeProto, int] | None:
    """ctx → Reshape/Transpose* → MatMul(·, W_o) → Add(·, b_o): (the MatMul, the Add, b_o's index)."""
    cur = ctx
    while True:
        if not g.single(cur):
            return None
        r = g.readers[cur][0]
        if r.op_type in PASS_THROUGH and r.input[0] == cur:
            cur = r.output[0]
            continue
        if (r.op_type != "MatMul" or r.input[0] != cur or g.const(r.input[1]) is None
                or not g.single(r.output[0])):
            return None
        add = g.readers[r.output[0]][0]
        k = next((k for k, i in enumerate(add.input) if i in g.inits), None) if add.op_type == "Add" else None
        if k is None:
            return None
        return r, add, k


def _rewrite(model: onnx.ModelProto) -> dict[str, int]:
    g = _Graph(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    dropped = folded = 0
    for sm in [n for n in model.graph.node if n.op_type == "Softmax"]:
        if not _softmax_last_axis(sm, opset):
            continue
        scores = g.scores_matmul(sm)
        if scores is not None:
            key = g.projection_bias(scores.input[1])
            if key is not None:
                _bypass(g, key[0], key[1])
                dropped += 1
        readers = g.readers[sm.output[0]]
        pv = readers[0] if len(readers) == 1 and readers[0].op_type == "MatMul" else None
        if pv is None or pv.input[0] != sm.output[0]:
            continue
        value = g.projection_bias(pv.input[1])
        out = _out_projection_bias(g, pv.output[0])
        if value is None or out is None:
            continue
        add_v, kv, _ = value
        mm_o, add_o, ko = out
        bv, wo, bo = g.const(add_v.input[kv]), g.const(mm_o.input[1]), g.const(add_o.input[ko])
        assert bv is not None and wo is not None and bo is not None
        if wo.ndim != 2 or bv.shape != (wo.shape[0],) or bo.shape != (wo.shape[1],):
            continue
        add_o.input[ko] = g.add_const(f"{add_o.input[ko]}__value_bias_folded", bo + bv @ wo)
        _bypass(g, add_v, kv)
        folded += 1
    return {"key_bias_dropped": dropped, "value_bias_folded": folded, "ffn_bias_folded": _fold_ffn_biases(g)}


def _fold_ffn_biases(g: _Graph) -> int:
    """Post-LN blocks (BERT): ``h = LN(x)``, ``r = h + (f @ W2 + b2)`` with ``f = act(h @ W1 + b1)``.

    ``b2`` moves into the LayerNorm's beta (``h' = h + b2``) and ``b2 @ W1`` out of ``b1``, so FC1's
    pre-activation and the residual sum are unchanged and one Add per block is gone.
    """
    folded = 0
    for ln in [n for n in g.model.graph.node if n.op_type == "LayerNormalization" and len(n.input) == 3]:
        h = ln.output[0]
        beta = g.const(ln.input[2])
        readers = g.readers[h]
        if beta is None or len(readers) != 2 or h in g.outputs:
            continue
        fc1 = next((r for r in readers if r.op_type == "MatMul" and r.input[0] == h), None)
        res = next((r for r in readers if r.op_type == "Add"), None)
        if fc1 is None or res is None:
            continue
        w1 = g.const(fc1.input[1])
        add1 = g.readers[fc1.output[0]][0] if g.single(fc1.output[0]) else None
        k1 = next((k for k, i in enumerate(add1.input) if i in g.inits), None) if add1 is not None \
            and add1.op_type == "Add" else None
        other = res.input[1] if res.input[0] == h else res.input[0]
        add2 = g.producer.get(other)
        if (w1 is None or add1 is None or k1 is None or add2 is None or add2.op_type != "Add"
                or not g.single(other)):
            continue
        k2 = next((k for k, i in enumerate(add2.input) if i in g.inits), None)
        fc2 = g.producer.get(add2.input[1 - k2]) if k2 is not None else None
        if k2 is None or fc2 is None or fc2.op_type != "MatMul" or g.const(fc2.input[1]) is None:
            continue
        b1, b2 = g.const(add1.input[k1]), g.const(add2.input[k2])
        assert b1 is not None and b2 is not None
        if w1.ndim != 2 or b2.shape != beta.shape or b2.shape != (w1.shape[0],) or b1.shape != (w1.shape[1],):
            continue
        for node, k, value in ((ln, 2, beta + b2), (add1, k1, b1 - b2 @ w1)):
            node.input[k] = g.add_const(f"{node.input[k]}__ffn_bias_folded", value)
        _bypass(g, add2, k2)
        folded += 1
    return folded


def fold_attention_biases(model: onnx.ModelProto, feeds: Sequence[Mapping[str, Any]]
                          ) -> tuple[onnx.ModelProto, dict[str, int]]:
    """The key bias dropped and the value bias folded into the output projection's, on a copy.

    The original model is returned (with zero counts and ``"rejected": 1``) when the rewritten one's
    outputs differ from it on the first calibration feed.
    """
    from .qdq import prune

    m = onnx.ModelProto()
    m.CopyFrom(model)
    info = _rewrite(m)
    if not any(info.values()):
        return model, info
    prune(m)
    ref, got = _outputs(model, feeds[0]), _outputs(m, feeds[0])
    if all(np.allclose(a, b, rtol=1e-3, atol=1e-4 * max(1.0, float(np.abs(a).max())))
           for a, b in zip(ref, got, strict=True)):
        return m, info
    return model, {**{k: 0 for k in info}, "rejected": 1}


def _outputs(model: onnx.ModelProto, feeds: Mapping[str, Any]) -> list[np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return [np.asarray(v, np.float64) for v in sess.run(None, dict(feeds))]
