"""Static QDQ quantisation with onnxruntime's tools, plus the few graph edits they lack.

Form produced (what TensorRT's explicit quantisation consumes and ORT's CPU provider runs):
symmetric int8 (zero point 0) for weights and activations, per-channel weights, per-tensor
activations, QuantizeLinear/DequantizeLinear pairs around the quantised nodes.

Choices, each measured on all-MiniLM-L6-v2 on this machine:

* only nodes with a constant weight (MatMul/Gemm with an initializer, Conv) are quantised;
  activation × activation MatMuls (attention scores, attention × values) stay float: they are a
  small share of the FLOPs at these sequence lengths and the softmax output loses half its
  int8 range when quantised symmetrically.
* MatMul/Gemm outputs are not quantised (``OpTypesToExcludeOutputQuantization``): the output
  Q/DQ of the FFN down-projection alone took the worst-case sentence cosine from 0.94 to 0.59
  (outlier channels of the residual stream), and without it ORT fuses DQ→MatMul into
  ``MatMulIntegerToFloat``. Conv outputs are quantised, which is what lets ORT fuse
  DQ→Conv→Q into ``QLinearConv``.
* :func:`unshare_qparams` (our own): ORT's x86 CPU provider only fuses QDQ pairs whose scale and
  zero point initializers are not shared with other Q/DQ nodes; the quantiser shares them when
  a tensor feeds several quantised nodes (Q/K/V projections, a LayerNorm output that also feeds
  the residual), so 18 of MiniLM's 30 weight MatMuls ran as DequantizeLinear + float MatMul.
  Giving every Q/DQ node its own copy of its (scalar) parameters lets all 30 fuse.
* :func:`smooth` (our own, SmoothQuant, Xiao et al. 2023): per-channel activation outliers make
  per-tensor int8 activations lossy (MiniLM fully quantised: worst cosine 0.88). Dividing each
  input channel of a MatMul by ``s_j = max|X_j|^a / max|W_j|^(1-a)`` and multiplying the weight's
  row j by ``s_j`` is exact in float and moves the range problem to the per-channel weights
  (a = 0.8: worst cosine 0.994 with every weight MatMul int8). ORT has ``SmoothQuant`` in
  ``quantize_static`` but it needs Intel Neural Compressor, a heavy extra dependency.
"""


from __future__ import annotations

import collections
import logging
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from edgevl.errors import QuantizationError

from .data import FeedReader

METHODS = ("minmax", "percentile", "entropy")
WEIGHT_OPS = ("MatMul", "Gemm", "Conv")
NO_OUTPUT_QUANT = ("MatMul", "Gemm")
# a Q/DQ pair per consumer: measured faster on MiniLM (1171 vs 1304 ms, batch 64x56) than one shared Q
DEDICATED_QDQ = True


def prepare(src: Path, dst: Path) -> dict[str, Any]:
    """ORT's ``quant_pre_process`` (shape inference + graph optimisation) with a fallback.

    Symbolic shape inference fails on some exported graphs (e.g. BERT's ``Min(512, seq)``
    position slicing); ONNX's own shape inference is then used alone.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    logging.getLogger("onnxruntime").setLevel(logging.ERROR)
    info: dict[str, Any] = {}
    model = onnx.load(str(src))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        # per-channel DequantizeLinear (its `axis`) needs opset 13; ORT's quantiser writes it on
        # Conv biases without upgrading older models (PP-OCR's are opset 11/12)
        from onnx import version_converter

        model = version_converter.convert_version(model, 13)
        src = dst.with_suffix(".opset13.onnx")
        onnx.save(model, str(src))
        info["opset_upgraded"] = f"{opset} -> 13"
    for skip_symbolic in (False, True):
        try:
            quant_pre_process(str(src), str(dst), skip_symbolic_shape=skip_symbolic)
            return {**info, "pre_process": "quant_pre_process", "symbolic_shape": not skip_symbolic}
        except Exception:  # ORT raises a bare Exception for incomplete symbolic inference
            continue
    onnx.save(onnx.load(str(src)), str(dst))
    return {**info, "pre_process": "none (quant_pre_process failed)", "symbolic_shape": False}


def channel_absmax(model: onnx.ModelProto, feeds: Sequence[Mapping[str, Any]],
                   tensors: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-channel (last axis) max |x| of ``tensors`` over the calibration feeds (fp32 model)."""
    import onnxruntime as ort

    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for t in tensors:
        if t not in have:
            m.graph.output.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    out: dict[str, np.ndarray] = {}
    for f in feeds:
        for t, v in zip(tensors, sess.run(list(tensors), dict(f)), strict=True):
            a = np.abs(np.asarray(v, np.float32)).reshape(-1, v.shape[-1]).max(0)
            out[t] = a if t not in out else np.maximum(out[t], a)
    return out


def smooth(model: onnx.ModelProto, feeds: Sequence[Mapping[str, Any]], alpha: float = 0.8) -> int:
    """SmoothQuant in place on MatMuls with a 2-D constant weight (see module doc); returns how many.

    MatMuls that read the same tensor (Q/K/V) share one scale vector; a ``Mul`` by ``1/s`` is
    inserted after the tensor's producer, so other readers of the tensor (a residual) are untouched.
    """
    inits = {i.name: i for i in model.graph.initializer}
    groups: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        w = inits.get(n.input[1]) if n.op_type == "MatMul" else None
        if w is not None and len(w.dims) == 2 and w.data_type == onnx.TensorProto.FLOAT:
            groups.setdefault(n.input[0], []).append(n)
    if not groups:
        return 0
    amax = channel_absmax(model, feeds, list(groups))
    position = {o: k for k, n in enumerate(model.graph.node) for o in n.output}
    inserts: list[tuple[int, onnx.NodeProto]] = []
    for t, nodes in groups.items():
        ws = [numpy_helper.to_array(inits[n.input[1]]) for n in nodes]
        wmax = np.max([np.abs(w).max(1) for w in ws], axis=0)
        if amax[t].shape != wmax.shape:
            continue
        s = (np.maximum(amax[t], 1e-5) ** alpha / np.maximum(wmax, 1e-5) ** (1 - alpha)).astype(np.float32)
        s = np.clip(s, 1e-4, 1e4)
        for n, w in zip(nodes, ws, strict=True):
            scaled = numpy_helper.from_array((w * s[:, None]).astype(np.float32), n.input[1])
            inits[n.input[1]].CopyFrom(scaled)
        inv, smoothed = f"{t}_smooth_inv", f"{t}_smoothed"
        model.graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), inv))
        for n in nodes:
            n.input[0] = smoothed
        inserts.append((position.get(t, -1), onnx.helper.make_node("Mul", [t, inv], [smoothed],
                                                                   name=f"{t}_SmoothQuantMul")))
    nodes_list = list(model.graph.node)
    for pos, mul in sorted(inserts, key=lambda x: -x[0]):
        nodes_list.insert(pos + 1, mul)
    del model.graph.node[:]
    model.graph.node.extend(nodes_list)
    return len(inserts)


def weight_nodes(model: onnx.ModelProto, op_types: Sequence[str] = WEIGHT_OPS) -> list[str]:
    """Names of the nodes that carry a constant weight: the quantisation candidates."""
    inits = {i.name for i in model.graph.initializer}
    out = []
    for n in model.graph.node:
        if n.op_type in op_types and len(n.input) > 1 and n.input[1] in inits and n.name:
            out.append(n.name)
    return out


def _calibration_method(method: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    table = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
             "entropy": CalibrationMethod.Entropy}
    if method not in table:
        raise QuantizationError(f"calibration method {method!r} not in {METHODS}")
    return table[method]


def quantize(src: Path, dst: Path, feeds: FeedReader, *, nodes: Sequence[str],
             exclude: Iterable[str] = (), method: str = "minmax", cache: Path | None = None,
             op_types: Sequence[str] = WEIGHT_OPS) -> onnx.ModelProto:
    """``quantize_static`` to symmetric int8 QDQ on ``nodes`` minus ``exclude``; returns the model.

    ``cache`` keeps the calibrated tensor ranges so that re-quantising with other exclusions does
    not run calibration again.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    excluded = set(exclude)
    todo = [n for n in nodes if n not in excluded]
    feeds.rewind()
    quantize_static(
        str(src), str(dst), feeds, quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
        op_types_to_quantize=list(op_types), nodes_to_quantize=todo or ["__none__"],
        calibrate_method=_calibration_method(method),
        calibration_cache_path=str(cache) if cache is not None else None,
        extra_options={
            "ActivationSymmetric": True, "WeightSymmetric": True,
            "OpTypesToExcludeOutputQuantization": list(NO_OUTPUT_QUANT),
            "DedicatedQDQPair": DEDICATED_QDQ,
            **_flush_every(len(feeds.feeds)),
        },
    )
    model = onnx.load(str(dst))
    unshare_qparams(model)
    prune(model)
    onnx.save(model, str(dst))
    return model


def _flush_every(n: int) -> dict[str, int]:
    """Bound calibration memory by flushing intermediate outputs every m batches.

    ORT 1.32 raises "No data is collected" when the batch count is an exact multiple of m (the
    last flush leaves nothing), so m is chosen not to divide n.
    """
    if n <= 16:
        return {}
    m = next((m for m in range(16, 1, -1) if n % m), 0)
    return {"CalibMaxIntermediateOutputs": m} if m else {}


def unshare_qparams(model: onnx.ModelProto) -> int:
    """Give each activation Q/DQ node its own scale / zero-point initializers (see module doc)."""
    inits = {i.name: i for i in model.graph.initializer}
    use = collections.Counter(i for n in model.graph.node for i in n.input)
    copied = 0
    for n in model.graph.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear") or n.input[0] in inits:
            continue
        for k in (1, 2):
            if len(n.input) > k and n.input[k] in inits and use[n.input[k]] > 1:
                t = onnx.TensorProto()
                t.CopyFrom(inits[n.input[k]])
                t.name = f"{n.input[k]}__{n.name}"
                model.graph.initializer.append(t)
                n.input[k] = t.name
                copied += 1
    return copied


def quantized_nodes(model: onnx.ModelProto) -> dict[str, dict[str, Any]]:
    """Nodes (other than Q/DQ) fed by a DequantizeLinear, with how their weight is quantised.

    Per node: ``op``, ``weight_axis`` (per-channel axis, None when per-tensor), ``weight_channels``,
    ``symmetric`` (every zero point is 0).
    """
    producers = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name: i for i in model.graph.initializer}
    out: dict[str, dict[str, Any]] = {}
    for n in model.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        dqs = [producers[i] for i in n.input if i in producers and producers[i].op_type == "DequantizeLinear"]
        if not dqs:
            continue
        info: dict[str, Any] = {"op": n.op_type, "weight_axis": None, "weight_channels": 0, "symmetric": True}
        for dq in dqs:
            has_zp = len(dq.input) > 2 and dq.input[2] in inits
            zp = numpy_helper.to_array(inits[dq.input[2]]) if has_zp else None
            if zp is not None and np.any(zp != 0):
                info["symmetric"] = False
            if dq.input[0] in inits:  # the weight
                scale = numpy_helper.to_array(inits[dq.input[1]])
                axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
                info["weight_axis"] = int(axis) if scale.ndim == 1 and scale.size > 1 else None
                info["weight_channels"] = int(scale.size)
                info["weight_dtype"] = str(numpy_helper.to_array(inits[dq.input[0]]).dtype)
        out[n.name] = info
    return out


def float_weight_name(dq_input: str, original: set[str]) -> str | None:
    """The float initializer a quantised weight came from (ORT names it ``<name>_quantized``)."""
    for suffix in ("_quantized",):
        if dq_input.endswith(suffix) and dq_input[: -len(suffix)] in original:
            return dq_input[: -len(suffix)]
    return None


def bypass(qmodel: onnx.ModelProto, fmodel: onnx.ModelProto, nodes: Iterable[str]) -> onnx.ModelProto:
    """A copy of ``qmodel`` with ``nodes`` fed float tensors again (their DQ inputs bypassed).

    Our own edit, for the sensitivity sweep only: re-running ``quantize_static`` per candidate
    costs a full quantisation (tens of seconds on MiniLM) where this costs milliseconds. The
    bundle that is written is always re-quantised by ORT with ``nodes_to_exclude``.
    """
    m = onnx.ModelProto()
    m.CopyFrom(qmodel)
    names = set(nodes)
    producers = {o: n for n in m.graph.node for o in n.output}
    qinits = {i.name for i in m.graph.initializer}
    finits = {i.name: i for i in fmodel.graph.initializer}
    for n in m.graph.node:
        if n.name not in names:
            continue
        for k, i in enumerate(n.input):
            dq = producers.get(i)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            src = dq.input[0]
            if src in qinits:
                w = float_weight_name(src, set(finits))
                if w is not None:
                    if w not in qinits:
                        m.graph.initializer.append(finits[w])
                        qinits.add(w)
                    n.input[k] = w
            else:
                q = producers.get(src)
                if q is not None and q.op_type == "QuantizeLinear":
                    n.input[k] = q.input[0]
    prune(m)
    return m


def prune(model: onnx.ModelProto) -> None:
    """Drop nodes and initializers nothing reads any more."""
    needed = {o.name for o in model.graph.output}
    keep = []
    for n in reversed(list(model.graph.node)):
        if any(o in needed for o in n.output):
            keep.append(n)
            needed.update(i for i in n.input if i)
    keep.reverse()
    del model.graph.node[:]
    model.graph.node.extend(keep)
    inits = [i for i in model.graph.initializer if i.name in needed]
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)


def tmpdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="edgevl-quant-")
