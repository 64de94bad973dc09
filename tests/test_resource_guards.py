"""Issue 24: the mechanisms behind the hostile-case table (tests/test_hostile_bundles.py), each on its own:
the memory budget (address-space and cgroup limits), PNG EXIF orientation, the tokenizer regex bound,
the catalogue index cache key, the ONNX graph inspection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgevl import memlimit
from edgevl.errors import BundleError, ImageError, InputError
from edgevl.memlimit import MemoryBudget, cgroup_left
from edgevl.text.tokenizer import regex_problem
from edgevl.vision.imageheader import HeaderSize, png_orientation
from edgevl.vision.io import check_decode_size, read_image

# ---------------------------------------------------------------- memory budget


def test_address_space_limit_counts() -> None:
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30));"
            "from edgevl.memlimit import memory_budget; b = memory_budget();"
            "print(b.address_space, b.available, b.limited_by)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    room, avail, *by = out.stdout.split()
    assert 0 < int(room) < 3 << 30 and int(avail) <= int(room)
    assert " ".join(by).startswith("the address-space limit")


def test_cgroup_limit_is_the_tightest_level(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    leaf = root / "a" / "b"
    leaf.mkdir(parents=True)
    (root / "a" / "memory.max").write_text(f"{2 << 30}\n")
    (root / "a" / "memory.current").write_text(f"{1 << 30}\n")
    (leaf / "memory.max").write_text("max\n")
    (leaf / "memory.current").write_text("123\n")
    assert cgroup_left(leaf, root) == 1 << 30
    (leaf / "memory.max").write_text(f"{(1 << 29) + 123}\n")
    assert cgroup_left(leaf, root) == 1 << 29
    assert cgroup_left(root / "none", root) is None


def test_decode_estimate_uses_the_process_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import edgevl.vision.io as vio

    budget = MemoryBudget(host=64 << 30, address_space=800 << 20, cgroup=None)
    monkeypatch.setattr(vio, "memory_budget", lambda: budget)
    with pytest.raises(ImageError, match=r"14000x14000 needs about 1\.1 GiB, 0\.8 GiB is left under the "
                                         r"address-space limit"):
        check_decode_size(HeaderSize(14_000, 14_000, 3), "big.png")
    check_decode_size(HeaderSize(4000, 3000, 3), "ok.png")  # 72 MB fits
    monkeypatch.setattr(vio, "memory_budget", lambda: MemoryBudget(64 << 30, None, 500 << 20))
    with pytest.raises(ImageError, match="cgroup memory limit"):
        check_decode_size(HeaderSize(14_000, 14_000, 3), "big.png")


def test_memory_budget_is_the_smallest() -> None:
    assert MemoryBudget(10, None, None).available == 10
    assert MemoryBudget(10, 5, 7).available == 5
    assert MemoryBudget(10, 9, 7).limited_by.startswith("the cgroup")
    assert memlimit.available_bytes() > 0


# ---------------------------------------------------------------- PNG orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_png_exif_orientation_is_applied(orientation: int, tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(orientation)
    rgb = rng.integers(0, 255, (20, 40, 3), dtype=np.uint8)
    exif = pil.Exif()
    exif[0x0112] = orientation
    p = tmp_path / "o.png"
    pil.fromarray(rgb).save(p, exif=exif.tobytes())
    assert png_orientation(p.read_bytes()) == orientation
    got = read_image(p)
    # OpenCV applies EXIF orientation with IMREAD_COLOR (edgevl reads PNGs unchanged, for alpha/16-bit)
    want = cv2.imdecode(np.fromfile(p, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(got, want)
    if orientation == 6:  # rotate 90 degrees clockwise: the stored top-left pixel goes top-right
        assert got.shape[:2] == (40, 20)
        assert np.array_equal(got[0, -1], rgb[0, 0, ::-1])


def test_png_without_exif_has_no_orientation(tmp_path: Path) -> None:
    p = tmp_path / "plain.png"
    cv2.imwrite(str(p), np.zeros((4, 5, 3), np.uint8))
    assert png_orientation(p.read_bytes()) is None
    assert read_image(p).shape == (4, 5, 3)


# ---------------------------------------------------------------- tokenizer regex


@pytest.mark.parametrize(("pattern", "risky"), [
    (r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"""
     r"""[^\s\p{L}\p{N}]+""", False),
    (r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""", False),
    (r"\s+", False), (r"(ab)+", False), (r"[(+]+", False), (r"a{2,3}", False), (r"(?:ab){3}", False),
    (r"(a+)+$", True), (r"(a|aa)*b", True), (r"(a*)*", True), (r"(\w+\s?)+$", True), (r"(a)\1", True),
    (r"((ab)*c){2,}", True), (r"(?:x+){1,99}", True), ("a" * 3000, True),
])
def test_regex_bound(pattern: str, risky: bool) -> None:
    assert (regex_problem(pattern) is not None) == risky


# ---------------------------------------------------------------- catalogue index cache key


def test_index_cache_is_keyed_on_the_columns(tmp_path: Path) -> None:
    from edgevl.books.catalogue import Columns, load_catalogue
    from edgevl.books.index import load_or_build

    csv = tmp_path / "cat.csv"
    csv.write_text("title,author,name,writer\nMoby Dick,Melville,Hamlet,Shakespeare\n"
                   "Ulysses,Joyce,Don Quijote,Cervantes\n", encoding="utf-8")
    a, folder_a, built_a = load_or_build(load_catalogue(csv), tmp_path / "cache")
    b, folder_b, built_b = load_or_build(load_catalogue(csv, Columns(title="name", author="writer")),
                                         tmp_path / "cache")
    assert built_a and built_b and folder_a != folder_b
    assert list(a.titles) == ["Moby Dick", "Ulysses"]
    assert list(b.titles) == ["Hamlet", "Don Quijote"]
    again, folder, built = load_or_build(load_catalogue(csv, Columns(title="name", author="writer")),
                                         tmp_path / "cache")
    assert not built and folder == folder_b and list(again.titles) == ["Hamlet", "Don Quijote"]


def test_catalogue_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    import os

    from edgevl.books.catalogue import load_catalogue

    fifo = tmp_path / "cat.csv"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO"):
        load_catalogue(fifo)


# ---------------------------------------------------------------- JSON and ONNX inspection


def test_parse_json_turns_memory_error_into_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgevl import safeio

    def boom(*a: object, **k: object) -> object:
        raise MemoryError

    monkeypatch.setattr(safeio.json, "loads", boom)
    with pytest.raises(InputError, match="not enough memory to parse"):
        safeio.parse_json("{}", "m.json")


def test_inspect_reports_loops_and_embedding_rows(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from edgevl.onnxguard import MAX_LOOP_TRIPS, inspect_onnx

    def save(nodes: list[object], inits: list[object], name: str) -> Path:
        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        p = tmp_path / name
        onnx.save(m, str(p))
        return p

    table = numpy_helper.from_array(np.zeros((77, 4), np.float32), "E")
    facts = inspect_onnx(save([helper.make_node("Gather", ["E", "ids"], ["y"])], [table], "g.onnx"))
    assert facts.embedding_rows == {"ids": 77} and not facts.control_flow and facts.external_files == ()

    body = helper.make_graph([helper.make_node("Identity", ["c"], ["c2"]),
                              helper.make_node("Identity", ["v"], ["v2"])],
                             "b", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                                   helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                                   helper.make_tensor_value_info("v", TensorProto.FLOAT, [])],
                             [helper.make_tensor_value_info("c2", TensorProto.BOOL, []),
                              helper.make_tensor_value_info("v2", TensorProto.FLOAT, [])])
    inits = [numpy_helper.from_array(np.array(True), "t"),
             numpy_helper.from_array(np.array(0.0, np.float32), "z")]
    ok = [*inits, numpy_helper.from_array(np.array(MAX_LOOP_TRIPS, np.int64), "m")]
    loop = helper.make_node("Loop", ["m", "t", "z"], ["y"], body=body)
    assert inspect_onnx(save([loop], ok, "l1.onnx")).control_flow
    bad = [*inits, numpy_helper.from_array(np.array(MAX_LOOP_TRIPS + 1, np.int64), "m")]
    with pytest.raises(BundleError, match="runs 1000001 iterations"):
        inspect_onnx(save([helper.make_node("Loop", ["m", "t", "z"], ["y"], body=body)], bad, "l2.onnx"))


def test_expand_of_constants_is_refused_by_shape_inference(tmp_path: Path) -> None:
    """Not only ConstantOfShape: any tensor whose exact shape shape inference states is bounded."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from edgevl.onnxguard import inspect_onnx

    g = helper.make_graph(
        [helper.make_node("Expand", ["one", "shape"], ["big"]),
         helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0),
         helper.make_node("Add", ["x", "s"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        initializer=[numpy_helper.from_array(np.ones((1, 1), np.float32), "one"),
                     numpy_helper.from_array(np.array([300_000, 300_000], np.int64), "shape")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "e.onnx"))
    with pytest.raises(BundleError, match=r"\[300000, 300000\]"):
        inspect_onnx(tmp_path / "e.onnx")


def test_manifest_json_is_strict_through_load_bundle(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tiny_encoders import make_text_embedding_bundle

    from edgevl.bundle import load_bundle

    b = make_text_embedding_bundle(tmp_path).path
    m = b / "manifest.json"
    d = json.loads(m.read_text())
    text = json.dumps(d)
    m.write_text(text.replace('"precision": "fp32"', '"precision": "fp32", "precision": "int8"'))
    with pytest.raises(BundleError, match="duplicate key 'precision'"):
        load_bundle(b)


def test_inspection_runs_in_a_child_and_caches_its_verdict(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from edgevl import onnxguard

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tiny_encoders import make_text_onnx

    monkeypatch.setenv("EDGEVL_HOME", str(tmp_path / "home"))
    model = make_text_onnx(tmp_path / "t.onnx")
    child = onnxguard._inspect_in_child(model)
    assert child == onnxguard._inspect(model)  # the child reports what the in-process check finds
    assert child.embedding_rows["input_ids"] > 0
    garbage = tmp_path / "g.onnx"
    garbage.write_bytes(b"\x08\x07garbage" * 100)
    with pytest.raises(BundleError, match=r"g\.onnx: not a loadable ONNX model"):
        onnxguard._inspect_in_child(garbage)
    # without onnx in the process, a verdict is cached on disk and reused (no second child)
    monkeypatch.setitem(sys.modules, "onnx", None)
    onnxguard._cached.cache_clear()
    calls: list[Path] = []
    real = onnxguard._inspect_in_child

    def counting(p: Path) -> onnxguard.OnnxFacts:
        calls.append(p)
        return real(p)

    monkeypatch.setattr(onnxguard, "_inspect_in_child", counting)
    assert onnxguard.inspect_onnx(model) == child
    onnxguard._cached.cache_clear()
    assert onnxguard.inspect_onnx(model) == child
    assert len(calls) == 1 and list((tmp_path / "home" / "onnxguard").glob("*.json"))
    onnxguard._cached.cache_clear()
