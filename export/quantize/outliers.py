"""Outlier input channels of a weight MatMul computed in float beside its int8 part (exact in float).

Why (measured on all-MiniLM-L6-v2): the FFN down-projection's input (the GELU output, 1,536
channels) has one channel per early layer whose largest value is 7-15x the median channel's
(24.6 vs 1.7 in layer 0, 20.4 vs 2.0 in layer 1, …), the "massive activation" BERT writes at its
[SEP] token. SmoothQuant moves that range into the weight's row, whose per-column int8 scale is
then set by one row ~10x larger than the others: every other weight of the column loses ~3 bits.
The error lands hardest on short texts, whose mean-pooled embedding is one third [SEP]: with every
FFN down-projection int8, the worst cosine on 1-3 word prose fragments was 0.969 (0.991 on whole
sentences), and keeping the FFN down-projections of layers 0-3 in float was what lifted it.

The decomposition (LLM.int8(), Dettmers et al. 2022, here static): for the few input channels
``O`` whose calibrated max |x| is at least ``ratio`` times the median channel's,
``x @ W = x[..., O] @ W[O] + x[..., ~O] @ W[~O]``. The int8 MatMul keeps its shape (the ``O``
inputs are zeroed by the SmoothQuant ``Mul``, the ``O`` rows of its weight are zeroed), and a
``Gather → MatMul (k x N, float) → Add`` beside it adds the outlier channels back: k/1536 of the
FLOPs. Only down-projections (more input than output channels) that read their own SmoothQuant
``Mul`` are split: the ``1/s`` vector is private to them (zeroing it touches nothing else) and the
``Add`` runs over the narrow output. The up-projections' LayerNorm inputs have outlier channels too
(dims 99 and 223 of MiniLM's residual stream), but splitting them as well cost 8% of the int8 time
for +0.0005 worst cosine on the same fragments (measured, 2-core machine under load).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

SUFFIX = "_outliers"


def _narrowing(w: onnx.TensorProto) -> bool:
    """A 2-D weight with more input than output channels: a down-projection."""
    return len(w.dims) == 2 and w.dims[0] > w.dims[1]


def split_outliers(model: onnx.ModelProto, feeds: Sequence[Mapping[str, Any]], ratio: float,
                   max_channels: int = 8) -> dict[str, Any]:
    """The decomposition above, in place, on every down-projection (a 2-D weight with more input than
    output channels) fed by its own SmoothQuant ``Mul``, for at most ``max_channels`` channels each.

    Returns ``{"matmuls": split, "channels": {matmul: [channel, …]}, "float_matmuls": [name, …]}``;
    the ``float_matmuls`` (the small outlier MatMuls) must not be quantised.
    """
    from .qdq import channel_absmax

    inits = {i.name: i for i in model.graph.initializer}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    plans: list[tuple[onnx.NodeProto, list[onnx.NodeProto]]] = []  # (smoothing Mul, its MatMuls)
    for mul in model.graph.node:
        if mul.op_type != "Mul" or not mul.name.endswith("_SmoothQuantMul") or mul.input[1] not in inits:
            continue
        mms = readers.get(mul.output[0], [])
        if mms and all(r.op_type == "MatMul" and r.input[0] == mul.output[0] and r.input[1] in inits
                       and _narrowing(inits[r.input[1]]) for r in mms):
            plans.append((mul, mms))
    if not plans:
        return {"matmuls": 0, "channels": {}, "float_matmuls": []}
    amax = channel_absmax(model, feeds, [mul.input[0] for mul, _ in plans])
    channels: dict[str, list[int]] = {}
    small: list[str] = []
    after: dict[int, list[onnx.NodeProto]] = {}
    for mul, mms in plans:
        a = amax[mul.input[0]]
        med = float(np.median(a))
        order = np.argsort(-a)[:max_channels]
        idx = np.sort(order[a[order] >= ratio * max(med, 1e-12)]).astype(np.int64)
        inv_init = inits[mul.input[1]]
        inv = numpy_helper.to_array(inv_init).astype(np.float32).copy()
        if idx.size == 0 or inv.ndim != 1:
            continue
        weights = [numpy_helper.to_array(inits[mm.input[1]]).astype(np.float32).copy() for mm in mms]
        if any(w.ndim != 2 or w.shape[0] != inv.size for w in weights):
            continue
        gather = f"{mul.input[0]}{SUFFIX}"
        model.graph.initializer.append(numpy_helper.from_array(idx, f"{gather}_idx"))
        after[id(mul)] = [helper.make_node("Gather", [mul.input[0], f"{gather}_idx"], [gather],
                                           name=f"{gather}_Gather", axis=-1)]
        for mm, w in zip(mms, weights, strict=True):
            w_out = (w[idx] * inv[idx, None]).astype(np.float32)  # the rows before SmoothQuant scaled them
            w[idx] = 0.0
            w_init = inits[mm.input[1]]
            w_init.CopyFrom(numpy_helper.from_array(w, w_init.name))
            base = mm.name + SUFFIX
            model.graph.initializer.append(numpy_helper.from_array(w_out, f"{base}_W"))
            out = mm.output[0]
            int8_out = f"{out}_int8part"
            mm.output[0] = int8_out
            after[id(mm)] = [
                helper.make_node("MatMul", [gather, f"{base}_W"], [f"{base}_y"], name=f"{base}_MatMul"),
                helper.make_node("Add", [int8_out, f"{base}_y"], [out], name=f"{base}_Add"),
            ]
            channels[mm.name] = [int(i) for i in idx]
            small.append(f"{base}_MatMul")
        inv[idx] = 0.0
        inv_init.CopyFrom(numpy_helper.from_array(inv, inv_init.name))
    ordered: list[onnx.NodeProto] = []
    for n in model.graph.node:
        ordered.append(n)
        ordered.extend(after.get(id(n), []))
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    return {"matmuls": len(channels), "channels": channels, "float_matmuls": small}
