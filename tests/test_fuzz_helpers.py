"""Property tests (hypothesis, seeded): the pure helpers take NaN, infinities, empty and huge inputs
and either return a well-formed result or raise a typed EdgevlError, never anything else.

Each property runs ``EXAMPLES`` examples (1,000 by default, derandomised so CI is reproducible;
``EDGEVL_FUZZ_EXAMPLES`` changes it). ``benchmarks/fuzz.py`` runs the same properties much longer.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgevl.books.catalogue import load_catalogue, normalize
from edgevl.errors import EdgevlError
from edgevl.text.ctc import ctc_greedy
from edgevl.vision.db import DBParams, db_boxes
from edgevl.vision.geometry import crop_quad, fit_stride, order_quad, quad_size, tiles
from edgevl.vision.imageheader import header_size, png_problem

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_encoders import make_tokenizer

EXAMPLES = int(os.environ.get("EDGEVL_FUZZ_EXAMPLES", "1000"))
# CI: derandomised (the same examples every run); benchmarks/fuzz.py sets EDGEVL_FUZZ_SEED and
# passes --hypothesis-seed for a long, seeded, non-derandomised run
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="EDGEVL_FUZZ_SEED" not in os.environ,
                database=None, suppress_health_check=list(HealthCheck))

ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True, width=64)
WILD = st.one_of(ANY_FLOAT, st.sampled_from([0.0, -0.0, 1e30, -1e30, 1e-30, float("nan"), float("inf")]))
SMALL_INT = st.integers(-(2**40), 2**40)


def _floats(max_size: int = 12) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, st.integers(0, max_size), elements=WILD)


@FUZZ
@given(_floats())
def test_order_quad_and_quad_size(points: np.ndarray) -> None:
    try:
        q = order_quad(points)
    except EdgevlError:
        return
    assert q.shape == (4, 2) and q.dtype == np.float32
    try:
        w, h = quad_size(q)
    except EdgevlError:
        return
    assert w >= 1 and h >= 1


@FUZZ
@given(_floats(), st.integers(1, 6), st.integers(1, 6))
def test_crop_quad(points: np.ndarray, ih: int, iw: int) -> None:
    image = np.full((ih, iw, 3), 7, np.uint8)
    try:
        out = crop_quad(image, points)
    except EdgevlError:
        return
    assert out.ndim == 3 and out.shape[2] == 3 and out.dtype == np.uint8


@FUZZ
@given(SMALL_INT, SMALL_INT, SMALL_INT, SMALL_INT)
def test_fit_stride(h: int, w: int, limit: int, stride: int) -> None:
    try:
        nh, nw, scale = fit_stride(h, w, limit, stride)
    except EdgevlError:
        return
    assert nh >= stride and nw >= stride and nh % stride == 0 and nw % stride == 0
    assert 0 < scale <= 1


@FUZZ
@given(st.integers(-5, 300), st.integers(-5, 300), st.integers(-50, 120), st.integers(-50, 120))
def test_tiles_cover_the_image(h: int, w: int, size: int, overlap: int) -> None:
    try:
        ts = tiles(h, w, size, overlap)
    except EdgevlError:
        return
    if h < 1 or w < 1:
        return
    covered = np.zeros((h, w), bool)
    for y0, x0, y1, x1 in ts:
        assert 0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w
        assert y1 - y0 <= size and x1 - x0 <= size
        covered[y0:y1, x0:x1] = True
    assert covered.all()  # no gaps, whatever the sizes


@FUZZ
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=12),
                  elements=st.one_of(st.floats(0, 1, width=32),
                                     st.sampled_from([np.nan, np.inf, -1.0, 2.0]))),
       st.floats(0.01, 4.0))
def test_db_boxes(prob: np.ndarray, unclip: float) -> None:
    try:
        quads, scores = db_boxes(prob, DBParams(unclip_ratio=unclip, min_size=1.0, box_thresh=0.1))
    except EdgevlError:
        return
    assert quads.ndim == 3 and quads.shape[1:] == (4, 2) and len(quads) == len(scores)
    assert np.isfinite(quads).all() and np.isfinite(scores).all()


@FUZZ
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6),
                  elements=WILD.map(lambda v: np.float32(v) if not np.isfinite(v) or abs(v) < 3e38
                                    else np.float32(np.inf))),
    st.integers(-2, 6), st.one_of(st.none(), st.lists(st.integers(-3, 8), max_size=4)))
def test_ctc_greedy(probs: np.ndarray, blank: int, lengths: list[int] | None) -> None:
    charset = list("_abcde")[: probs.shape[-1]]  # one character each: text length = characters
    try:
        out = ctc_greedy(probs, charset, blank=blank, lengths=lengths)
    except EdgevlError:
        return
    assert len(out) == probs.shape[0]
    for d in out:
        assert np.isfinite(d.score) and len(d.text) == len(d.char_scores)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> object:
    from edgevl.text.tokenizer import Tokenizer

    path = make_tokenizer(tmp_path_factory.mktemp("tok") / "tokenizer.json")
    return Tokenizer(path, max_length=8)


@FUZZ
@given(st.lists(st.text(alphabet=st.characters(codec=None), max_size=40), max_size=4))
def test_tokenizer(tokenizer: object, texts: list[str]) -> None:
    try:
        enc = tokenizer(texts)  # type: ignore[operator]
    except EdgevlError:
        return
    assert enc.input_ids.shape == enc.attention_mask.shape and enc.input_ids.shape[0] == len(texts)
    assert enc.input_ids.shape[1] <= 8


@FUZZ
@given(st.text(max_size=60))
def test_normalize(text: str) -> None:
    out = normalize(text)
    assert set(out) <= set("abcdefghijklmnopqrstuvwxyz0123456789 ")


CSV_PIECES = st.sampled_from(["title", "author", "tag", ",", '"', '""', "\n", "\r\n", "Moby", "é", "\x00",
                              "\ufeff", "\x85", " ", "\t", ";"])


@FUZZ
@given(st.one_of(st.lists(CSV_PIECES, max_size=30).map(lambda xs: "".join(xs).encode("utf-8")),
                 st.binary(max_size=80), st.lists(CSV_PIECES, max_size=30).map(
                     lambda xs: "".join(xs).encode("latin-1", "replace"))))
def test_catalogue(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz_catalogue.csv"
    path.write_bytes(data)
    try:
        cat = load_catalogue(path)
    except EdgevlError:
        return
    assert len(cat) >= 1 and all(b.title or b.author for b in cat.books)


@FUZZ
@given(st.one_of(st.binary(max_size=64),
                 st.binary(max_size=48).map(lambda b: b"\x89PNG\r\n\x1a\n" + b),
                 st.binary(max_size=48).map(lambda b: b"\xff\xd8" + b),
                 st.binary(max_size=48).map(lambda b: b"RIFF\x00\x00\x00\x00WEBP" + b),
                 st.binary(max_size=48).map(lambda b: b"BM" + b)))
def test_image_headers(data: bytes) -> None:
    size = header_size(data)
    assert size is None or (size.width >= 0 and size.height >= 0 and size.decode_bytes() >= 0)
    problem = png_problem(data) if data.startswith(b"\x89PNG") else None
    assert problem is None or isinstance(problem, str)


@FUZZ
@given(st.one_of(st.binary(max_size=64), st.binary(max_size=48).map(lambda b: b"\x89PNG\r\n\x1a\n" + b),
                 st.binary(max_size=48).map(lambda b: b"\xff\xd8\xff" + b)))
def test_read_image_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    from edgevl.vision.io import read_image

    path = tmp_path_factory.getbasetemp() / "fuzz_image.bin"
    path.write_bytes(data)
    try:
        img = read_image(path)
    except EdgevlError:
        return
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8


def test_memory_estimate_counts_attention_scores(tmp_path: Path) -> None:
    """[batch, seq, 8] → x·xᵀ → softmax: the activation estimate is LIVE_FACTOR × the score tensor."""
    import onnx
    from onnx import TensorProto, helper

    from edgevl.bench.memory import LIVE_FACTOR, estimate
    from edgevl.bundle import TensorSpec

    graph = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
         helper.make_node("MatMul", ["x", "xt"], ["s"]),
         helper.make_node("Softmax", ["s"], ["p"], axis=-1),
         helper.make_node("ReduceMean", ["p"], ["y"], axes=[2], keepdims=0)],
        "attn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "attn.onnx"
    onnx.save(model, str(path))
    spec_in = TensorSpec("x", "float32", ("batch", "seq", 8))
    spec_out = TensorSpec("y", "float32", ("batch", "seq"))
    est = estimate(path, [spec_in], [spec_out], {"x": (2000, 256, 8)}, {"y": (2000, 256)}, 2000)
    assert est.inputs == 2000 * 256 * 8 * 4 and est.outputs == 2000 * 256 * 4
    assert est.activations == LIVE_FACTOR * 2000 * 256 * 256 * 4  # the (2000, 256, 256) scores
    assert est.total == est.inputs + est.outputs + est.activations
