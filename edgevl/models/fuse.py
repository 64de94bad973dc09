"""Numerically equivalent rewrites of the PP-OCR ONNX graphs that ONNX Runtime's optimiser misses.

The PP-OCRv4 graphs exported by paddle2onnx spell every activation of their PP-LCNetV3 backbone as
eight element-wise nodes around each convolution: a "learnable affine" ``Mul(s)·Add(t)`` after the
convolution, hard-swish as ``y * Clip(y + 3, 0, 6) / 6``, and another ``Mul(s)·Add(t)`` after it.
ONNX Runtime fuses none of them (the scalars are ``Constant`` nodes in the first operand), so on a
CPU the element-wise nodes and the layout reorders around every convolution cost more than the
convolutions themselves. Three rewrites give the same function with the same weights:

1. ``Conv → Mul(s) → Add(t)`` becomes one ``Conv`` with weights ``s·W`` and bias ``s·B + t``;
2. ``y * Clip(y + 3, 0, 6) / 6`` becomes ``y * HardSigmoid(y)`` (alpha 1/6, beta 0.5);
3. ``Mul(s) → Add(t)`` feeding only unpadded convolutions (1×1) is folded into them: weights
   ``s·W``, bias ``B + t·ΣW`` (a padded convolution would see ``t`` in its zero border, so it
   cannot take them);
4. the ``Mul(s) → Add(t)`` left (before padded depthwise convolutions) becomes a
   ``BatchNormalization`` with scale ``s``, bias ``t``, mean 0, variance 1, epsilon 0, which ONNX
   Runtime keeps in its blocked (NCHWc) layout instead of reordering the tensor twice around it.

Only float rounding changes (outputs agree to ~1e-5). This is a build-side module: it needs the
``onnx`` package, and :func:`edgevl.models.ppocr.build_bundles` runs it in a child process
(``python -m edgevl.models.fuse SRC DST``) so the runtime process never loads ``onnx``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper, numpy_helper

Array = npt.NDArray[Any]


class _Graph:
    """The node list of a graph plus its constants (initializers and ``Constant`` node values)."""

    def __init__(self, model: onnx.ModelProto) -> None:
        g = model.graph
        self.nodes: list[onnx.NodeProto] = list(g.node)
        self.const: dict[str, Array] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        for n in self.nodes:
            if n.op_type == "Constant" and len(n.attribute) == 1 and n.attribute[0].name == "value":
                self.const[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        self.outputs = {o.name for o in g.output}
        self.new: dict[str, Array] = {}

    def consumers(self) -> dict[str, list[onnx.NodeProto]]:
        out: dict[str, list[onnx.NodeProto]] = {}
        for n in self.nodes:
            for i in n.input:
                out.setdefault(i, []).append(n)
        return out

    def array(self, name: str) -> Array | None:
        return self.new.get(name, self.const.get(name))

    def scalar(self, name: str) -> np.float32 | None:
        a = self.array(name)
        if a is None or a.size != 1 or a.dtype != np.float32:
            return None
        return np.float32(a.reshape(-1)[0])

    def conv_wb(self, conv: onnx.NodeProto) -> tuple[Array, Array] | None:
        w = self.array(conv.input[1])
        b = self.array(conv.input[2]) if len(conv.input) > 2 and conv.input[2] else None
        if w is None or w.dtype != np.float32:
            return None
        return w, (b if b is not None else np.zeros(w.shape[0], np.float32))

    def set_wb(self, conv: onnx.NodeProto, w: Array, b: Array) -> None:
        base = conv.output[0]
        wn, bn = f"{base}__fused_w", f"{base}__fused_b"
        self.new[wn] = np.asarray(w, np.float32)
        self.new[bn] = np.asarray(b, np.float32)
        x = conv.input[0]
        del conv.input[:]
        conv.input.extend([x, wn, bn])


def _other(n: onnx.NodeProto, x: str) -> str:
    return str(n.input[1] if n.input[0] == x else n.input[0])


def _attr(n: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in n.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _fold_conv_affine(g: _Graph) -> int:
    """Conv → Mul(s) → Add(t)  ⇒  Conv(s·W, s·B + t)."""
    cm = g.consumers()
    drop: set[int] = set()
    n_done = 0
    for conv in g.nodes:
        if conv.op_type != "Conv" or conv.output[0] in g.outputs:
            continue
        wb = g.conv_wb(conv)
        c = cm.get(conv.output[0], [])
        if wb is None or len(c) != 1 or c[0].op_type != "Mul" or c[0].output[0] in g.outputs:
            continue
        mul = c[0]
        s = g.scalar(_other(mul, conv.output[0]))
        c2 = cm.get(mul.output[0], [])
        if s is None or len(c2) != 1 or c2[0].op_type != "Add":
            continue
        add = c2[0]
        t = g.scalar(_other(add, mul.output[0]))
        if t is None:
            continue
        w, b = wb
        g.set_wb(conv, w * s, b * s + t)
        conv.output[0] = add.output[0]
        drop.update((id(mul), id(add)))
        n_done += 1
    g.nodes = [n for n in g.nodes if id(n) not in drop]
    return n_done


def _hard_swish(g: _Graph) -> int:
    """y * Clip(y + 3, 0, 6) / 6  ⇒  y * HardSigmoid(y)."""
    cm = g.consumers()
    prod = {o: n for n in g.nodes for o in n.output}
    drop: set[int] = set()
    replace: dict[int, list[onnx.NodeProto]] = {}
    for div in g.nodes:
        if div.op_type != "Div" or g.scalar(div.input[1]) != 6.0:
            continue
        mul = prod.get(div.input[0])
        if mul is None or mul.op_type != "Mul" or len(cm.get(mul.output[0], [])) != 1:
            continue
        for y, cl in ((mul.input[0], mul.input[1]), (mul.input[1], mul.input[0])):
            clip = prod.get(cl)
            if clip is None or clip.op_type != "Clip" or len(clip.input) != 3:
                continue
            if g.scalar(clip.input[1]) != 0.0 or g.scalar(clip.input[2]) != 6.0:
                continue
            add = prod.get(clip.input[0])
            if add is None or add.op_type != "Add" or y not in add.input or g.scalar(_other(add, y)) != 3.0:
                continue
            if len(cm[add.output[0]]) != 1 or len(cm[clip.output[0]]) != 1:
                continue
            hs = f"{div.output[0]}__hsig"
            replace[id(div)] = [helper.make_node("HardSigmoid", [y], [hs], alpha=1.0 / 6.0, beta=0.5),
                                helper.make_node("Mul", [y, hs], [div.output[0]])]
            drop.update((id(add), id(clip), id(mul)))
            break
    out: list[onnx.NodeProto] = []
    for n in g.nodes:
        if id(n) in replace:
            out.extend(replace[id(n)])
        elif id(n) not in drop:
            out.append(n)
    g.nodes = out
    return len(replace)


def _scalar_affine(g: _Graph, cm: dict[str, list[onnx.NodeProto]],
                   mul: onnx.NodeProto) -> tuple[str, np.float32, onnx.NodeProto, np.float32] | None:
    """``mul`` as the head of ``Mul(x, s) → Add(·, t)`` with scalar s, t and nothing else reading
    the Mul: ``(x, s, add, t)``, else None."""
    if mul.op_type != "Mul" or len(mul.input) != 2:
        return None
    x = next((i for i in mul.input if g.scalar(i) is None), None)
    if x is None:
        return None
    s = g.scalar(_other(mul, x))
    c = cm.get(mul.output[0], [])
    if s is None or len(c) != 1 or c[0].op_type != "Add" or mul.output[0] in g.outputs:
        return None
    add = c[0]
    t = g.scalar(_other(add, mul.output[0]))
    return None if t is None else (x, s, add, t)


def _fold_affine_into_unpadded_conv(g: _Graph) -> int:
    """Mul(s) → Add(t) → unpadded Conv(s)  ⇒  Conv(s·W, B + t·ΣW)."""
    cm = g.consumers()
    drop: set[int] = set()
    n_done = 0
    for mul in g.nodes:
        m = _scalar_affine(g, cm, mul)
        if m is None:
            continue
        x, s, add, t = m
        convs = cm.get(add.output[0], [])
        if add.output[0] in g.outputs or not convs:
            continue
        if any(k.op_type != "Conv" or k.input[0] != add.output[0] or any(_attr(k, "pads", []))
               or _attr(k, "auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID")
               or g.conv_wb(k) is None for k in convs):
            continue
        for k in convs:
            wb = g.conv_wb(k)
            assert wb is not None
            w, b = wb
            g.set_wb(k, w * s, b + t * w.sum(axis=tuple(range(1, w.ndim))))
            k.input[0] = x
        drop.update((id(mul), id(add)))
        n_done += 1
    g.nodes = [n for n in g.nodes if id(n) not in drop]
    return n_done


_ELEMENTWISE = ("Mul", "Add", "HardSigmoid", "Relu", "Sigmoid", "Clip", "Div", "Sub")


def _channels(g: _Graph, prod: dict[str, onnx.NodeProto], name: str) -> int | None:
    """Channel count of ``name`` when it comes from a Conv through element-wise nodes only."""
    for _ in range(16):
        n = prod.get(name)
        if n is None:
            return None
        if n.op_type == "Conv":
            w = g.array(n.input[1])
            return int(w.shape[0]) if w is not None and w.ndim == 4 else None
        if n.op_type not in _ELEMENTWISE:
            return None
        name = next((i for i in n.input if g.scalar(i) is None and i), "")
    return None


def _affine_to_batchnorm(g: _Graph) -> int:
    """Mul(s) → Add(t) on a conv's output  ⇒  BatchNormalization(scale s, bias t, mean 0, var 1)."""
    cm = g.consumers()
    prod = {o: n for n in g.nodes for o in n.output}
    drop: set[int] = set()
    replace: dict[int, onnx.NodeProto] = {}
    for mul in g.nodes:
        m = _scalar_affine(g, cm, mul)
        if m is None:
            continue
        x, s, add, t = m
        ch = _channels(g, prod, x)
        if ch is None:
            continue
        names = [f"{add.output[0]}__bn_{k}" for k in ("scale", "bias", "mean", "var")]
        for name, v in zip(names, (s, t, 0.0, 1.0), strict=True):
            g.new[name] = np.full(ch, v, np.float32)
        replace[id(mul)] = helper.make_node("BatchNormalization", [x, *names], [add.output[0]], epsilon=0.0)
        drop.add(id(add))
    g.nodes = [replace.get(id(n), n) for n in g.nodes if id(n) not in drop]
    return len(replace)


def fuse_model(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, int]]:
    """Apply the four rewrites in place; returns the model and how often each one applied."""
    g = _Graph(model)
    stats = {"conv_affine": _fold_conv_affine(g), "hard_swish": _hard_swish(g),
             "affine_into_conv": _fold_affine_into_unpadded_conv(g), "affine_to_batchnorm": 0}
    stats["affine_to_batchnorm"] = _affine_to_batchnorm(g)
    used = {i for n in g.nodes for i in n.input} | g.outputs
    nodes = [n for n in g.nodes if not (n.op_type == "Constant" and n.output[0] not in used)]
    graph = model.graph
    del graph.node[:]
    graph.node.extend(nodes)
    inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in g.new.items() if k in used)
    names = used | {o for n in nodes for o in n.output}
    vi = [v for v in graph.value_info if v.name in names]
    del graph.value_info[:]
    graph.value_info.extend(vi)
    onnx.checker.check_model(model)
    return model, stats


def max_output_diff(a: Path, b: Path, shape: tuple[int, ...], seed: int = 0) -> float:
    """Largest absolute difference between the outputs of two one-input ONNX files on the same
    random input of ``shape`` (uniform in [-1, 1], the range of PP-OCR's normalised images)."""
    import onnxruntime as ort

    sa = ort.InferenceSession(str(a), providers=["CPUExecutionProvider"])
    feeds = {sa.get_inputs()[0].name: np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)}
    sb = ort.InferenceSession(str(b), providers=["CPUExecutionProvider"])
    ya, yb = sa.run(None, feeds), sb.run(None, feeds)
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
               for x, y in zip(ya, yb, strict=True))


def fuse_file(src: Path | str, dst: Path | str, check_shape: tuple[int, ...]) -> dict[str, Any]:
    """Rewrite ``src`` into ``dst``; returns the rewrite counts and the largest output difference
    between the two files on a random input of ``check_shape``."""
    src, dst = Path(src), Path(dst)
    model, stats = fuse_model(onnx.load(str(src)))
    onnx.save(model, str(dst))
    return {**stats, "max_abs_diff": max_output_diff(src, dst, check_shape)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Fuse the element-wise chains of a PP-OCR ONNX graph.")
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--check-shape", required=True, help="input shape of the check, e.g. 1,3,96,128")
    args = ap.parse_args(argv)
    shape = tuple(int(v) for v in args.check_shape.split(","))
    sys.stdout.write(json.dumps(fuse_file(args.src, args.dst, shape)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
