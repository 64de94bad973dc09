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
  Giving every Q/DQ node its own copy of its (scalar) parameters lets all 30 fuse. A Q/DQ pair
  per consumer (``DedicatedQDQPair``) is needed too: one QuantizeLinear shared by Q/K/V (each with
  its own DequantizeLinear) left those 18 MatMuls unfused on ORT 1.32 (measured).
* :func:`drop_shape_info` (our own): ORT fuses the residual ``Add → LayerNormalization`` into a
  ``SkipLayerNormalization`` when it knows the shapes (which ``quant_pre_process`` writes), and that
  kernel is ~8x slower on this CPU than the pair; without the shapes MiniLM int8 went from 1.28x to
  1.54x faster than fp32 (same run, loaded machine).
* :func:`smooth` (our own, SmoothQuant, Xiao et al. 2023): per-channel activation outliers make
  per-tensor int8 activations lossy (MiniLM fully quantised: worst cosine 0.88). Dividing each
  input channel of a MatMul by ``s_j = max|X_j|^a / max|W_j|^(1-a)`` and multiplying the weight's
  row j by ``s_j`` is exact in float and moves the range problem to the per-channel weights
  (every weight MatMul int8, worst cosine on 600 held-out catalogue lines: a = 0.5: 0.84, 0.65: 0.97,
  0.8: 0.988-0.991, 0.85: 0.990, **0.9: 0.993**, 0.95: 0.991, 1.0: 0.986). ORT has ``SmoothQuant`` in
  ``quantize_static`` but it needs Intel Neural Compressor, a heavy extra dependency. The
  ``1/s`` costs a ``Mul`` pass over the activation except where it folds into a constant upstream
  (the attention output projection's input is ``reshape(P @ V)``: into V's weight columns and bias;
  MiniLM 1.54x → 1.78x faster than fp32 in the same run). Before Q/K/V and FC1 (a LayerNorm output
  that also feeds the residual) and FC2 (after GELU) it stays a ``Mul``: without it there the
  worst cosine fell to 0.991 (Q/K/V), 0.965 (FC1), 0.960 (FC2).
"""


from __future__ import annotations

import collections
import contextlib
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from edgevl.errors import QuantizationError

from ..trt.rewrite import subgraph_reads
from .data import FeedReader

METHODS = ("minmax", "percentile", "entropy")
WEIGHT_OPS = ("MatMul", "Gemm", "Conv")
NO_OUTPUT_QUANT = ("MatMul", "Gemm")
# a Q/DQ pair per consumer: measured faster on MiniLM (1171 vs 1304 ms, batch 64x56) than one shared Q
DEDICATED_QDQ = True


@contextlib.contextmanager
def _working_dir(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


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
            # ORT's symbolic inference, when it gives up, dumps sym_shape_infer_temp.onnx and a
            # <uuid>.data file into the working directory: run it from a scratch directory so the
            # user's folder stays clean
            with tempfile.TemporaryDirectory(prefix="edgevl-prep-") as scratch, _working_dir(Path(scratch)):
                quant_pre_process(str(Path(src).resolve()), str(Path(dst).resolve()),
                                  skip_symbolic_shape=skip_symbolic)
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


def smooth(model: onnx.ModelProto, feeds: Sequence[Mapping[str, Any]], alpha: float = 0.9,
           fold: bool = True) -> dict[str, int]:
    """SmoothQuant in place on MatMuls with a 2-D constant weight (see module doc).

    MatMuls that read the same tensor (Q/K/V) share one scale vector. The ``1/s`` goes where it
    costs nothing when it can (``fold``, see :func:`_fold_chain`: the attention output projection's
    ``1/s`` goes into the value projection's weight columns and bias), otherwise into a ``Mul``
    inserted after the tensor's producer, so other readers of the tensor (a residual) are untouched.
    Returns ``{"matmul_inputs": smoothed, "folded": folded into a producer}``.
    """
    inits = {i.name: i for i in model.graph.initializer}
    groups: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        w = inits.get(n.input[1]) if n.op_type == "MatMul" else None
        if w is not None and len(w.dims) == 2 and w.data_type == onnx.TensorProto.FLOAT:
            groups.setdefault(n.input[0], []).append(n)
    if not groups:
        return {"matmul_inputs": 0, "folded": 0}
    amax = channel_absmax(model, feeds, list(groups))
    # every scale from the unmodified weights first, so folding (which rescales weight columns)
    # leaves the other groups' scales as they were
    plans: list[tuple[str, list[onnx.NodeProto], np.ndarray]] = []
    for t, nodes in groups.items():
        wmax = np.max([np.abs(numpy_helper.to_array(inits[n.input[1]])).max(1) for n in nodes], axis=0)
        if amax[t].shape != wmax.shape:
            continue
        s = (np.maximum(amax[t], 1e-5) ** alpha / np.maximum(wmax, 1e-5) ** (1 - alpha)).astype(np.float32)
        plans.append((t, nodes, np.clip(s, 1e-4, 1e4)))
    for _t, nodes, s in plans:
        for n in nodes:
            _scale_init(inits[n.input[1]], s[:, None])
    position = {o: k for k, n in enumerate(model.graph.node) for o in n.output}
    inserts: list[tuple[int, onnx.NodeProto]] = []
    folded = 0
    for t, nodes, s in plans:
        chain = _fold_chain(model, t, {n.name for n in nodes}, s.size) if fold else None
        if chain is not None:
            for node, k, shape in chain:
                src = inits[node.input[k]]
                own = onnx.TensorProto()  # a private copy: exported graphs share equal constants
                own.CopyFrom(src)
                own.name = f"{src.name}__smooth_{node.name}"
                _scale_init(own, (1.0 / s).reshape(shape))
                model.graph.initializer.append(own)
                inits[own.name] = own
                node.input[k] = own.name
            folded += 1
            continue
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
    return {"matmul_inputs": len(plans), "folded": folded}


def _scale_init(init: onnx.TensorProto, factor: np.ndarray) -> None:
    scaled = (numpy_helper.to_array(init) * factor).astype(np.float32)
    init.CopyFrom(numpy_helper.from_array(scaled, init.name))


def _fold_chain(model: onnx.ModelProto, t: str, readers: set[str],
                channels: int) -> list[tuple[onnx.NodeProto, int, tuple[int, ...]]] | None:
    """Where ``t``'s per-channel ``1/s`` can be folded upstream: ``[(node, input index, shape)]``.

    Walks back from ``t`` through Reshape/Transpose, the value side of an activation × activation
    MatMul (``P @ V``: output channel j is V's channel j), a bias Add, down to a MatMul with a 2-D
    constant weight, whose columns (and the bias) then absorb ``1/s``: the attention output
    projection's input ``reshape(P @ V)`` becomes ``reshape(P @ (V / s))``. Every tensor on the way
    must have one reader (the scaled initializers get private copies), so nothing else sees the
    scaling. None when the chain is anything else. The channel bookkeeping through the reshapes is not derived
    here: :func:`smooth_checked` compares the smoothed model's outputs with the original's.
    """
    inits = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    readers_of = collections.defaultdict(list)
    for n in model.graph.node:
        for i in n.input:
            readers_of[i].append(n.name)
    outputs = {o.name for o in model.graph.output}
    if set(readers_of[t]) != readers or t in outputs:
        return None
    chain: list[tuple[onnx.NodeProto, int, tuple[int, ...]]] = []
    cur = t
    while True:
        p = producers.get(cur)
        if p is None:
            return None
        if cur != t and (len(readers_of[cur]) != 1 or cur in outputs):
            return None
        if p.op_type in ("Reshape", "Transpose"):
            cur = p.input[0]
            continue
        if p.op_type == "Add" and len(p.input) == 2:
            const = [k for k, i in enumerate(p.input) if i in inits]
            if len(const) != 1 or list(inits[p.input[const[0]]].dims) != [channels]:
                return None
            chain.append((p, const[0], (channels,)))
            cur = p.input[1 - const[0]]
            continue
        if p.op_type == "MatMul":
            w = inits.get(p.input[1])
            if w is None:
                cur = p.input[1]  # activation x activation: continue on the right-hand side
                continue
            if len(w.dims) != 2 or w.dims[1] != channels or w.data_type != onnx.TensorProto.FLOAT:
                return None
            chain.append((p, 1, (1, channels)))
            return chain
        return None


def smooth_checked(model: onnx.ModelProto, feeds: Sequence[Mapping[str, Any]],
                   alpha: float = 0.9) -> tuple[onnx.ModelProto, dict[str, int]]:
    """:func:`smooth` on a copy, with folding; without folding when the folded model's outputs
    differ from the original's on the first calibration feed (SmoothQuant is exact in float)."""
    import onnxruntime as ort

    def outputs(m: onnx.ModelProto) -> list[np.ndarray]:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return [np.asarray(v, np.float64) for v in sess.run(None, dict(feeds[0]))]

    def smoothed(fold: bool) -> tuple[onnx.ModelProto, dict[str, int]]:
        m = onnx.ModelProto()
        m.CopyFrom(model)
        return m, smooth(m, feeds, alpha, fold=fold)

    m, info = smoothed(True)
    if info["folded"]:
        ref, got = outputs(model), outputs(m)
        if not all(np.allclose(a, b, rtol=1e-3, atol=1e-4 * max(1.0, float(np.abs(a).max())))
                   for a, b in zip(ref, got, strict=True)):
            m, info = smoothed(False)
    return m, info


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
    drop_shape_info(model)
    onnx.save(model, str(dst))
    return model


def drop_shape_info(model: onnx.ModelProto) -> bool:
    """Drop the intermediate shapes ``quant_pre_process`` inferred, in graphs with LayerNormalization.

    With those shapes ORT 1.32 fuses each residual ``Add → LayerNormalization`` into
    ``SkipLayerNormalization``, whose CPU kernel measured ~8x slower than the pair it replaces
    (23 vs 2.7 ms at 64x56x384, one node in isolation; 12 of them took 18% of MiniLM's int8 time).
    The exported fp32 graphs carry no such shapes and are not fused. TensorRT and ORT infer shapes
    themselves; nothing else reads them. Returns whether anything was dropped.
    """
    if not any(n.op_type == "LayerNormalization" for n in model.graph.node) or not model.graph.value_info:
        return False
    del model.graph.value_info[:]
    return True


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
                    # ORT names a Conv bias DQ's output after the float bias: the copy needs its own name
                    name = f"{w}__float" if w in producers else w
                    if name not in qinits:
                        t = onnx.TensorProto()
                        t.CopyFrom(finits[w])
                        t.name = name
                        m.graph.initializer.append(t)
                        qinits.add(name)
                    n.input[k] = name
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
            needed |= subgraph_reads(n)  # If/Loop bodies read outer tensors by name (SVTRv2's decoder)
    keep.reverse()
    del model.graph.node[:]
    model.graph.node.extend(keep)
    inits = [i for i in model.graph.initializer if i.name in needed]
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)


def tmpdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="edgevl-quant-")
