"""Issue 24, bundles / images / catalogues: the hostile cases of the probe as one table.

Each row runs the real CLI in a child process (``python -m edgevl``) with a wall-clock timeout and,
where the case is about memory, an address-space limit (``RLIMIT_AS``), and asserts: the exit code
(2, or 0 for the controls), exactly one ``edgevl: error:`` line on stderr and no traceback, the
line's pattern, and that no input file changed (sha256 of every file under the case's folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_encoders import make_clip_bundle, make_text_embedding_bundle, solid_image, token_table

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

GiB = 1 << 30


# ---------------------------------------------------------------- builders


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _manifest(b: Path) -> dict[str, Any]:
    return json.loads((b / "manifest.json").read_text())


def _save_manifest(b: Path, d: dict[str, Any]) -> None:
    (b / "manifest.json").write_text(json.dumps(d, indent=1))


def _resign(b: Path, *rels: str) -> None:
    """Record the current sha256 of ``rels`` in the manifest (what a hostile author would do)."""
    d = _manifest(b)
    for rel in rels:
        d["files"][rel] = _sha(b / rel)
    _save_manifest(b, d)


def _model(nodes: list[Any], inits: list[Any], output: str = "sentence_embedding") -> Any:
    """A text model: ``vecs = E[input_ids]`` then ``nodes``, which must produce ``out3`` [batch, seq, 3]
    from ``vecs``; the output is its sum over the sequence."""
    graph = helper.make_graph(
        [helper.make_node("Gather", ["E", "input_ids"], ["vecs"]), *nodes,
         helper.make_node("ReduceSum", ["out3", "ax1"], [output], keepdims=0)],
        "hostile",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(token_table(), "E"),
                     numpy_helper.from_array(np.array([1], np.int64), "ax1"), *inits])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _put_model(b: Path, model: Any, rel: str = "text.onnx") -> None:
    (b / rel).write_bytes(model.SerializeToString())
    _resign(b, rel)


def _scalar_zero_from(src: str, name: str) -> list[Any]:
    """Nodes turning any float tensor ``src`` into a float 0 scalar ``name`` (keeps ``src`` used)."""
    return [helper.make_node("ReduceSum", [src], [f"{name}_s"], keepdims=0),
            helper.make_node("Mul", [f"{name}_s", "zero"], [name])]


ZERO = numpy_helper.from_array(np.array(0.0, np.float32), "zero")


def constant_of_shape(b: Path) -> None:
    shape = numpy_helper.from_array(np.array([200_000, 200_000], np.int64), "big_shape")
    nodes = [helper.make_node("ConstantOfShape", ["big_shape"], ["big"],
                              value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
             *_scalar_zero_from("big", "z"), helper.make_node("Add", ["vecs", "z"], ["out3"])]
    _put_model(b, _model(nodes, [shape, ZERO]))


def _loop(trips_name: str, extra_inits: list[Any], pre: list[Any]) -> Any:
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [])])
    nodes = [*pre, helper.make_node("Loop", [trips_name, "yes", "zero"], ["v_final"], body=body),
             helper.make_node("Add", ["vecs", "v_final"], ["out3"])]
    yes = numpy_helper.from_array(np.array(True), "yes")
    return _model(nodes, [yes, ZERO, *extra_inits])


def loop_constant(b: Path) -> None:
    trips = numpy_helper.from_array(np.array(10**12, np.int64), "trips")
    _put_model(b, _loop("trips", [trips], []))


def loop_dynamic(b: Path) -> None:
    """A trip count computed from the input (10^12 + max id): not a constant, bounded at run time."""
    base = numpy_helper.from_array(np.array(10**12, np.int64), "base")
    pre = [helper.make_node("ReduceMax", ["input_ids"], ["mx"], keepdims=0),
           helper.make_node("Add", ["mx", "base"], ["trips"])]
    _put_model(b, _loop("trips", [base], pre))


def fails_at_run_time(b: Path, output: str = "sentence_embedding") -> None:
    """Adds a [5, 3] constant to [batch, seq, 3]: loads (seq is symbolic), fails for seq not 1 or 5."""
    c = numpy_helper.from_array(np.zeros((5, 3), np.float32), "c53")
    _put_model(b, _model([helper.make_node("Add", ["vecs", "c53"], ["out3"])], [c], output))


def _external_model(b: Path, location: str) -> None:
    """The text model with its embedding table E in the external-data file ``location``."""
    m = _model([helper.make_node("Identity", ["vecs"], ["out3"])], [])
    e = next(t for t in m.graph.initializer if t.name == "E")
    data = e.raw_data if e.raw_data else numpy_helper.to_array(e).tobytes()
    e.ClearField("raw_data")
    e.ClearField("float_data")
    e.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(len(data)))):
        entry = e.external_data.add()
        entry.key, entry.value = k, v
    if location == "weights.bin":
        (b / location).write_bytes(data)
    _put_model(b, m)


def external_unlisted(b: Path) -> None:
    _external_model(b, "weights.bin")


def external_listed(b: Path) -> None:
    _external_model(b, "weights.bin")
    _resign(b, "weights.bin")


def external_listed_then_changed(b: Path) -> None:
    external_listed(b)
    w = bytearray((b / "weights.bin").read_bytes())
    w[0] ^= 0x40
    (b / "weights.bin").write_bytes(bytes(w))


def external_is_manifest(b: Path) -> None:
    _external_model(b, "manifest.json")


def external_is_tokenizer(b: Path) -> None:
    _external_model(b, "tokenizer.json")


def sparse_16gb(b: Path) -> None:
    with open(b / "big.bin", "wb") as f:
        f.truncate(16 * 10**9)
    d = _manifest(b)
    d["files"]["big.bin"] = "0" * 64
    _save_manifest(b, d)


def _raw_edit(b: Path, old: str, new: str) -> None:
    m = b / "manifest.json"
    text = m.read_text()
    assert old in text
    m.write_text(text.replace(old, new, 1))


def duplicate_files(b: Path) -> None:
    # a bad sha256 first, the good table after: a reader where the last key wins checks the good one
    d = _manifest(b)
    bad = {k: "0" * 64 for k in d["files"]}
    _raw_edit(b, '"files": {', f'"files": {json.dumps(bad)}, "files": {{')


def duplicate_models(b: Path) -> None:
    _raw_edit(b, '"models": {', '"models": {"text": {}}, "models": {')


def lone_surrogate(b: Path) -> None:
    _raw_edit(b, '"name": "tiny-te"', '"name": "tiny\\ud800te"')


def big_manifest(b: Path) -> None:
    """A 15.9 MiB manifest (many small keys in ``extra``): parsed, or refused in one line."""
    d = _manifest(b)
    d["extra"] = {f"k{i:07d}": f"{i:07d}" for i in range((int(15.9 * (1 << 20)) - 4000) // 21)}
    text = json.dumps(d, separators=(",", ":"))
    (b / "manifest.json").write_text(text)
    assert 15 * (1 << 20) < len(text) < 16 * (1 << 20)


def _tokenizer_edit(b: Path, fn: Callable[[dict[str, Any]], None]) -> None:
    t = b / "tokenizer.json"
    doc = json.loads(t.read_text())
    fn(doc)
    t.write_text(json.dumps(doc))
    _resign(b, "tokenizer.json")


def tokenizer_backtracking(b: Path) -> None:
    def f(doc: dict[str, Any]) -> None:
        doc["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "(a+)+$"}, "behavior": "Isolated",
                                "invert": False}
    _tokenizer_edit(b, f)


def tokenizer_id_outside_table(b: Path) -> None:
    def f(doc: dict[str, Any]) -> None:
        doc["added_tokens"].append({"id": 5000, "content": "zzz", "single_word": False, "lstrip": False,
                                    "rstrip": False, "normalized": False, "special": True})
    _tokenizer_edit(b, f)


def tokenizer_duplicate_key(b: Path) -> None:
    t = b / "tokenizer.json"
    text = t.read_text()
    t.write_text(text.replace('"model": {', '"model": {"type": "BPE"}, "model": {', 1))
    _resign(b, "tokenizer.json")


# ---------------------------------------------------------------- images and catalogues


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_14000(d: Path) -> None:
    """A PNG whose header declares 14000 x 14000 RGB (1.1 GiB to decode), chunks intact."""
    ihdr = struct.pack(">IIBBBBB", 14_000, 14_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    (d / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
                                + _png_chunk(b"IEND", b""))


def catalogue_2_5gb(d: Path) -> None:
    with open(d / "big.csv", "wb") as f:
        f.write(b"title,author\nMoby Dick,Melville\n")
        f.truncate(int(2.5 * 10**9))


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Path], None]
    argv: list[str]
    code: int
    pattern: str  # of the one stderr line (code 2) or of stdout (code 0)
    bundle: str = "te"  # te | clip | none
    as_limit: int = 0  # RLIMIT_AS in bytes, 0 = none
    timeout: float = 60.0
    env: tuple[tuple[str, str], ...] = ()
    max_seconds: float = 0.0  # 0 = only the timeout


EMBED = ["embed", "{b}", "--text", "red"]
CASES = [
    Case("manifest-duplicate-files", duplicate_files, ["info", "{b}"], 2, r"duplicate key 'files'"),
    Case("manifest-duplicate-models", duplicate_models, ["info", "{b}"], 2, r"duplicate key 'models'"),
    Case("manifest-lone-surrogate", lone_surrogate, ["info", "{b}"], 2, r"lone surrogate"),
    Case("manifest-15.9MiB-under-1.5GiB", big_manifest, ["info", "{b}"], -1,
         r"tiny-te|not enough memory", as_limit=3 * GiB // 2),
    Case("external-data-unlisted-embed", external_unlisted, EMBED, 2,
         r"external data 'weights\.bin' is not listed with a sha256"),
    Case("external-data-unlisted-verify", external_unlisted, ["info", "{b}", "--verify"], 2,
         r"external data 'weights\.bin' is not listed with a sha256"),
    Case("external-data-is-manifest", external_is_manifest, EMBED, 2, r"external data 'manifest\.json'"),
    Case("external-data-is-tokenizer", external_is_tokenizer, ["info", "{b}", "--verify"], 2,
         r"external data 'tokenizer\.json' is the bundle's tokenizer\.json, not a data file"),
    Case("external-data-listed-changed", external_listed_then_changed, ["info", "{b}", "--verify"], 2,
         r"weights\.bin: sha256 does not match"),
    Case("external-data-listed-ok", external_listed, EMBED, 0, r"red"),
    Case("listed-16GB-sparse-file", sparse_16gb, ["info", "{b}"], 2,
         r"big\.bin' is 14\.9 GiB, over the 8 GiB .* refused before hashing", max_seconds=20),
    Case("constant-of-shape-200000^2", constant_of_shape, EMBED, 2,
         r"ConstantOfShape .* shape \[200000, 200000\] .* refused before loading", as_limit=4 * GiB),
    Case("loop-10^12-under-bench", loop_constant, ["bench", "run", "{b}", "--seconds", "1"], 2,
         r"Loop .* runs 1000000000000 iterations", timeout=90),
    Case("loop-dynamic-run-time-bound", loop_dynamic, EMBED, 2,
         r"took over 2 s and was stopped", env=(("EDGEVL_RUN_TIMEOUT_S", "2"),), timeout=90),
    Case("text-model-fails-at-run-time-embed", fails_at_run_time, EMBED, 2, r"failed at run time"),
    Case("text-model-fails-at-run-time-classify", lambda b: fails_at_run_time(b, "text_embeds"),
         ["classify", "-b", "{b}", "{tmp}/red.png", "--labels", "red,green"], 2, r"failed at run time",
         bundle="clip"),
    Case("tokenizer-backtracking-regex", tokenizer_backtracking, EMBED, 2, r"catastrophic backtracking",
         max_seconds=30),
    Case("tokenizer-id-outside-embedding", tokenizer_id_outside_table, EMBED, 2,
         r"token id 5000, the text model's embedding table has \d+ rows"),
    Case("tokenizer-duplicate-key", tokenizer_duplicate_key, EMBED, 2, r"duplicate key 'model'"),
    Case("png-14000x14000-under-1.5GiB", png_14000, ["ocr", "{tmp}/big.png"], 2,
         r"big\.png: (decoding 14000x14000 needs about|not a readable)", bundle="none",
         as_limit=3 * GiB // 2),
    Case("catalogue-2.5GB-under-2GiB", catalogue_2_5gb,
         ["books", "index", "-c", "{tmp}/big.csv", "--cache-dir", "{tmp}/cache"], 2,
         r"big\.csv: a 2\.33 GiB catalogue needs at least .* GiB to read, .* left under", bundle="none",
         as_limit=2 * GiB, max_seconds=30),
]


def _limit(as_limit: int) -> Callable[[], None] | None:
    if not as_limit:
        return None

    def set_limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (as_limit, as_limit))

    return set_limit


def _digests(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink() and p.stat().st_size < (1 << 26):
            out[str(p.relative_to(folder))] = _sha(p)
        elif p.is_file():
            out[str(p.relative_to(folder))] = f"size {p.stat().st_size}"
    return out


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile-src")
    return {"te": make_text_embedding_bundle(d, inputs=("input_ids",)).path, "clip": make_clip_bundle(d).path}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_case(case: Case, sources: dict[str, Path], tmp_path: Path) -> None:
    import cv2

    cv2.imwrite(str(tmp_path / "red.png"), solid_image("red"))
    b = tmp_path / "bundle"
    if case.bundle != "none":
        shutil.copytree(sources[case.bundle], b)
        case.make(b)
    else:
        case.make(tmp_path)
    before = _digests(tmp_path)
    argv = [a.format(b=b, tmp=tmp_path) for a in case.argv]
    env = {**os.environ, "EDGEVL_HOME": str(tmp_path / "home"), "NO_COLOR": "1", **dict(case.env)}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "edgevl", *argv], capture_output=True, text=True,
                          timeout=case.timeout, env=env, preexec_fn=_limit(case.as_limit), check=False)
    took = time.monotonic() - t0
    err = proc.stderr.splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    if case.code == -1:  # a result, or one clean line
        assert proc.returncode in (0, 2), proc.stderr[-2000:]
        if proc.returncode == 2:
            assert len(err) == 1 and err[0].startswith("edgevl: error: "), err
        assert re.search(case.pattern, proc.stdout + proc.stderr)
    elif case.code == 0:
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert re.search(case.pattern, proc.stdout), proc.stdout[-2000:]
    else:
        assert proc.returncode == case.code, (proc.returncode, proc.stderr[-2000:])
        assert len(err) == 1, err
        assert err[0].startswith("edgevl: error: ")
        assert re.search(case.pattern, err[0]), err[0]
    if case.max_seconds:
        assert took < case.max_seconds, took
    after = {k: v for k, v in _digests(tmp_path).items() if not k.startswith(("home/", "cache/"))}
    assert after == {k: v for k, v in before.items() if not k.startswith(("home/", "cache/"))}
