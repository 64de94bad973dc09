"""Checks of an untrusted ONNX graph made before any runtime session is created.

Creating a session is not harmless: ONNX Runtime (and TensorRT's builder) fold constant
sub-graphs at load, so a ``ConstantOfShape`` of ``[200000, 200000]`` allocates and fills 160 GB
before the first run, and a ``Loop`` with a trip count of 10^12 never returns. The graph is read
here with the ``onnx`` protobuf parser (weights are not loaded, external data is not read) and
refused with a :class:`BundleError` when:

* an initializer or ``Constant`` holds more than :data:`MAX_TENSOR_ELEMENTS` elements, or all of
  them together more bytes than this process may still allocate (:mod:`edgevl.memlimit`);
* a ``ConstantOfShape`` whose shape is a constant, or any tensor whose shape ONNX shape inference
  (with data propagation) can state exactly, would hold more than :data:`MAX_TENSOR_ELEMENTS`;
* a ``Loop``'s trip count is a constant over :data:`MAX_LOOP_TRIPS`.

A graph with ``Loop`` or ``Scan`` nodes whose trip count is not a constant (a while loop) cannot be
bounded statically: :attr:`OnnxFacts.control_flow` tells the engine to run it with a wall-clock
limit (:data:`RUN_TIMEOUT_S`, ``EDGEVL_RUN_TIMEOUT_S``) instead. The facts also list every
external-data file the graph reads (checked against the bundle's manifest by
:func:`edgevl.bundle.check_external_data`) and the rows of embedding tables fed by a graph input
(token ids are checked against them).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from edgevl.errors import BundleError
from edgevl.memlimit import available_bytes

#: the most elements one tensor of an untrusted graph may hold (2^31: 8 GiB of float32; the
#: largest weight of a CLIP ViT-bigG is under 2^28)
MAX_TENSOR_ELEMENTS = 1 << 31
#: the largest constant trip count of a ``Loop``
MAX_LOOP_TRIPS = 1_000_000
#: default wall-clock limit of one run of a graph with data-dependent loops (seconds)
RUN_TIMEOUT_S = 300.0
#: an ONNX file larger than this is not parsed (protobuf's own limit is 2 GiB)
MAX_ONNX_BYTES = 2 << 30
_CONTROL_FLOW = ("Loop", "Scan")
# bytes per element of ONNX TensorProto data types (unknown ones count as 8)
_ELEM_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16,
               16: 2}


@dataclass(frozen=True)
class OnnxFacts:
    """What a session of this graph will read and need to be bounded."""

    #: external-data locations as written in the graph (relative to the ONNX file's folder)
    external_files: tuple[str, ...] = ()
    #: the graph has ``Loop``/``Scan`` nodes whose trip count is not a bounded constant
    control_flow: bool = False
    #: graph input name → rows of the smallest embedding table (``Gather`` data) it indexes
    embedding_rows: dict[str, int] = field(default_factory=dict)


def run_timeout_s() -> float:
    """The wall-clock limit of one run of a graph with data-dependent loops
    (``EDGEVL_RUN_TIMEOUT_S`` overrides :data:`RUN_TIMEOUT_S`; invalid values are ignored)."""
    raw = os.environ.get("EDGEVL_RUN_TIMEOUT_S", "")
    try:
        v = float(raw)
    except ValueError:
        return RUN_TIMEOUT_S
    return v if math.isfinite(v) and v > 0 else RUN_TIMEOUT_S


def _graphs(graph: Any) -> Iterator[Any]:
    """The graph and every sub-graph (If/Loop/Scan bodies), without recursion."""
    stack = [graph]
    while stack:
        g = stack.pop()
        yield g
        for node in g.node:
            for attr in node.attribute:
                if attr.HasField("g"):
                    stack.append(attr.g)
                stack.extend(attr.graphs)


def _elements(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= max(int(d), 0)
    return n


def _constant_ints(tensor: Any) -> list[int] | None:
    """The values of a small int64/int32 tensor, or None."""
    from onnx import numpy_helper

    if _elements(tensor.dims) > 64 or tensor.data_location == 1:
        return None
    try:
        return [int(v) for v in numpy_helper.to_array(tensor).reshape(-1)]
    except Exception:  # malformed tensor: ONNX Runtime will say so
        return None


def _inspect(path: Path) -> OnnxFacts:
    import onnx

    name = path.name
    try:
        size = path.stat().st_size
    except OSError as e:
        raise BundleError(f"{name}: cannot read the ONNX file ({e.strerror})") from None
    if size > MAX_ONNX_BYTES:
        raise BundleError(f"{name}: {size} bytes is over the {MAX_ONNX_BYTES >> 30} GiB an ONNX file may "
                          "hold (weights over that belong in listed external-data files)")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except MemoryError:
        raise BundleError(f"{name}: not enough memory to read the ONNX graph") from None
    except Exception as e:  # DecodeError and friends: ONNX Runtime gives the precise message later
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise BundleError(f"{name}: not a loadable ONNX model ({first[:200]})") from None
    external: list[str] = []
    consts: dict[str, Any] = {}
    total_bytes = 0
    control_flow = False
    gathers: dict[str, int] = {}

    def tensor(t: Any, what: str) -> None:
        nonlocal total_bytes
        n = _elements(t.dims)
        if n > MAX_TENSOR_ELEMENTS:
            raise BundleError(f"{name}: {what} {t.name[:60]!r} holds {n} elements "
                              f"(over {MAX_TENSOR_ELEMENTS}); refused before loading")
        total_bytes += n * _ELEM_BYTES.get(int(t.data_type), 8)
        if t.data_location == 1:  # EXTERNAL
            loc = next((e.value for e in t.external_data if e.key == "location"), "")
            external.append(loc)

    for g in _graphs(model.graph):
        for t in g.initializer:
            tensor(t, "initializer")
            consts[t.name] = t
        for t in g.sparse_initializer:
            tensor(t.values, "sparse initializer")
        for node in g.node:
            if node.op_type == "Constant":
                for attr in node.attribute:
                    if attr.HasField("t"):
                        tensor(attr.t, "constant")
                        if node.output:
                            consts[node.output[0]] = attr.t
    avail = available_bytes()
    if total_bytes > avail:
        raise BundleError(f"{name}: its weights need {total_bytes / 2**30:.1f} GiB, "
                          f"{avail / 2**30:.1f} GiB of memory is left")
    inputs = {i.name for i in model.graph.input} - {t.name for t in model.graph.initializer}
    for g in _graphs(model.graph):
        for node in g.node:
            if node.op_type == "ConstantOfShape" and node.input and node.input[0] in consts:
                shape = _constant_ints(consts[node.input[0]])
                if shape is not None and math.prod(max(d, 0) for d in shape) > MAX_TENSOR_ELEMENTS:
                    raise BundleError(f"{name}: ConstantOfShape {node.name[:60]!r} makes a tensor of shape "
                                      f"{shape[:8]} (over {MAX_TENSOR_ELEMENTS} elements); refused before "
                                      "loading")
            elif node.op_type == "Loop":
                trips = None
                if node.input and node.input[0] and node.input[0] in consts:
                    vals = _constant_ints(consts[node.input[0]])
                    trips = vals[0] if vals else None
                if trips is not None and trips > MAX_LOOP_TRIPS:
                    raise BundleError(f"{name}: Loop {node.name[:60]!r} runs {trips} iterations "
                                      f"(at most {MAX_LOOP_TRIPS}); refused before loading")
                control_flow = True
            elif node.op_type in _CONTROL_FLOW:
                control_flow = True
            elif (node.op_type == "Gather" and len(node.input) >= 2 and node.input[0] in consts
                  and node.input[1] in inputs and consts[node.input[0]].dims):
                rows = int(consts[node.input[0]].dims[0])
                gathers[node.input[1]] = min(rows, gathers.get(node.input[1], rows))
    _check_inferred_shapes(model, name)
    return OnnxFacts(tuple(external), control_flow, gathers)


def _check_inferred_shapes(model: Any, name: str) -> None:
    """Every tensor whose shape ONNX shape inference (with constant propagation) states exactly is at
    most :data:`MAX_TENSOR_ELEMENTS` (Expand, Tile, Resize… of constants: what constant folding would
    allocate). Weights are stripped first so nothing large is copied; a graph the inference cannot
    handle is left to ONNX Runtime's own checks."""
    from onnx import shape_inference

    for g in _graphs(model.graph):
        for t in g.initializer:
            if t.HasField("raw_data") and _elements(t.dims) > 64:
                t.ClearField("raw_data")
                t.data_location = 1
                e = t.external_data.add()
                e.key, e.value = "location", "edgevl-stripped"
    try:
        inferred = shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # inference errors: ONNX Runtime reports the model's problem itself
        return
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            continue
        dims = tt.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            n = _elements(d.dim_value for d in dims)
            if n > MAX_TENSOR_ELEMENTS:
                shape = [d.dim_value for d in dims][:8]
                raise BundleError(f"{name}: tensor {vi.name[:60]!r} would have shape {shape} (over "
                                  f"{MAX_TENSOR_ELEMENTS} elements); refused before loading")


#: bump when the checks change: cached verdicts of older checks are not reused
GUARD_VERSION = 1
#: wall-clock limit of the inspecting child process (seconds)
CHILD_TIMEOUT_S = 300.0


def _facts_to_json(f: OnnxFacts) -> dict[str, Any]:
    return {"external_files": list(f.external_files), "control_flow": f.control_flow,
            "embedding_rows": dict(f.embedding_rows)}


def _facts_from_json(d: Any) -> OnnxFacts | None:
    try:
        ext, cf, rows = d["external_files"], d["control_flow"], d["embedding_rows"]
        if not (isinstance(ext, list) and all(isinstance(x, str) for x in ext) and isinstance(cf, bool)
                and isinstance(rows, dict)
                and all(isinstance(k, str) and isinstance(v, int) for k, v in rows.items())):
            return None
        return OnnxFacts(tuple(ext), cf, dict(rows))
    except (KeyError, TypeError):
        return None


def _cache_file(key: str) -> Path:
    from edgevl.paths import edgevl_home

    return edgevl_home() / "onnxguard" / f"{key}.json"


def _read_cache(key: str) -> OnnxFacts | None:
    try:
        return _facts_from_json(json.loads(_cache_file(key).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def _write_cache(key: str, facts: OnnxFacts) -> None:
    """Best effort: a read-only or full cache folder only means inspecting again next time."""
    target = _cache_file(key)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(_facts_to_json(facts)), encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _inspect_in_child(path: Path) -> OnnxFacts:
    """:func:`_inspect` in a child process: the ``onnx`` package never enters the runtime process
    (tests/test_no_torch.py keeps it out), and a protobuf that exhausts memory or crashes the
    parser takes the child down, not edgevl. Bounded by :data:`CHILD_TIMEOUT_S`."""
    code = "import sys; from edgevl.onnxguard import child_main; sys.exit(child_main(sys.argv[1]))"
    try:
        r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                           timeout=CHILD_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BundleError(f"{path.name}: inspecting the ONNX graph took over {CHILD_TIMEOUT_S:g} s; "
                          "refused") from None
    except OSError as e:
        raise BundleError(f"{path.name}: cannot start the ONNX inspection ({e.strerror})") from None
    lines = r.stdout.strip().splitlines()
    try:
        reply = json.loads(lines[-1]) if lines else None
    except ValueError:
        reply = None
    if isinstance(reply, dict) and isinstance(reply.get("error"), str):
        raise BundleError(reply["error"])
    facts = _facts_from_json(reply) if isinstance(reply, dict) else None
    if r.returncode != 0 or facts is None:
        why = f"signal {-r.returncode}" if r.returncode < 0 else f"exit code {r.returncode}"
        raise BundleError(f"{path.name}: the ONNX graph could not be inspected (the parser ended with "
                          f"{why}); refused")
    return facts


def child_main(path: str) -> int:
    """Entry point of the inspecting child: one JSON line, the facts or ``{"error": message}``."""
    try:
        facts = _inspect(Path(path))
    except BundleError as e:
        print(json.dumps({"error": str(e)}))
        return 0
    except MemoryError:
        print(json.dumps({"error": f"{Path(path).name}: not enough memory to read the ONNX graph"}))
        return 0
    print(json.dumps(_facts_to_json(facts)))
    return 0


@lru_cache(maxsize=32)
def _cached(path: str, mtime: int, size: int, ino: int) -> OnnxFacts:
    p = Path(path)
    key = hashlib.sha256(f"{GUARD_VERSION}\x1f{path}\x1f{size}\x1f{mtime}\x1f{ino}".encode(
        "utf-8", "surrogateescape")).hexdigest()
    facts = _read_cache(key)
    if facts is None:
        if sys.modules.get("onnx") is not None:
            # the build side (bundle writers) has onnx loaded already: no child needed. Its verdict on
            # the bundles edgevl builds into its home (PP-OCR) is kept for the runtime process
            facts = _inspect(p)
            if p.is_relative_to(_cache_file(key).parent.parent.resolve()):
                _write_cache(key, facts)
        else:
            facts = _inspect_in_child(p)
            _write_cache(key, facts)
    return facts


def inspect_onnx(path: Path | str) -> OnnxFacts:
    """Check the ONNX file ``path`` (see the module doc) and return its facts; BundleError when it is
    refused. The check runs in a child process unless ``onnx`` is already imported; an accepted
    file's facts are cached per file identity (path, size, mtime, inode) in memory and under
    ``$EDGEVL_HOME/onnxguard/`` (a refusal is not cached)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise BundleError(f"{p}: cannot read the ONNX file ({e.strerror})") from None
    return _cached(str(p.resolve()), st.st_mtime_ns, st.st_size, st.st_ino)


__all__ = ["MAX_LOOP_TRIPS", "MAX_TENSOR_ELEMENTS", "RUN_TIMEOUT_S", "OnnxFacts", "inspect_onnx",
           "run_timeout_s"]
