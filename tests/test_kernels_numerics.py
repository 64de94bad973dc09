"""The documented numerics of kernels/ on the host: int8 rounding rules (bit-exact), the float64
attention reference, and the fp16 kernel's tiled online-softmax algorithm emulated in numpy."""

from __future__ import annotations

import numpy as np
import pytest
from edgevl_export.trt import numerics as nx
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays


def test_quantize_rounds_ties_to_even_and_scales_by_row_max() -> None:
    # amax 127 → scale exactly 1, so x / scale = x and the rounding rule is visible
    x = np.array([[127.0, 2.5, -2.5, 3.5, 0.5, -0.5, 1.5, -126.6]], np.float32)
    q, s = nx.quantize_rows(x)
    assert s.tolist() == [1.0]
    assert q.tolist() == [[127, 2, -2, 4, 0, 0, 2, -127]]
    assert q.dtype == np.int8


def test_quantize_zero_row_gets_scale_one_and_rows_are_independent() -> None:
    x = np.array([[0.0, 0.0, 0.0], [0.0, -2.0, 1.0]], np.float32)
    q, s = nx.quantize_rows(x)
    assert s[0] == 1.0 and q[0].tolist() == [0, 0, 0]
    assert s[1] == np.float32(2.0) / np.float32(127)
    assert q[1].tolist() == [0, -127, 64]  # 1 / (2/127) = 63.5 → ties to even → 64


def test_quantize_saturates_symmetrically_never_minus_128() -> None:
    x = np.array([[300.0, -300.0, -127.5, 126.5]], np.float32)
    q = nx.quantize_with_scale(x, np.array([1.0], np.float32))
    assert q.tolist() == [[127, -127, -127, 126]]


def test_quantize_uses_ieee_fp32_division_not_a_reciprocal() -> None:
    # x * (1/scale) and x / scale differ for some fp32 values; the rule is the division
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 97)).astype(np.float32) * 3
    q, s = nx.quantize_rows(x)
    div = np.clip(np.rint(x / s[:, None]), -127, 127)
    assert np.array_equal(q, div.astype(np.int8))
    assert s.dtype == np.float32


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, (3, 17), elements=st.floats(-1e4, 1e4, width=32)))
def test_quantize_error_is_at_most_half_a_step(x: np.ndarray) -> None:
    q, s = nx.quantize_rows(x)
    back = nx.dequantize_rows(q, s).astype(np.float64)
    assert np.all(np.abs(back - x) <= s[:, None].astype(np.float64) * (0.5 + 1e-6) + 1e-30)
    # the row max maps to ±127 unless the scale is subnormal (amax < 127·FLT_MIN: documented)
    normal = np.abs(x).max(axis=1) >= 127 * np.finfo(np.float32).tiny
    assert np.all(np.abs(q[normal]).max(axis=1) == 127)


def test_subnormal_scales_follow_the_same_ieee_rule() -> None:
    x = np.full((1, 4), 4.736e-42, np.float32)  # found by hypothesis: amax / 127 is subnormal
    q, s = nx.quantize_rows(x)
    assert s[0] == np.float32(4.736e-42) / np.float32(127) and s[0] < np.finfo(np.float32).tiny
    assert q.tolist() == [[125] * 4]  # not 127: the subnormal scale has lost precision


def test_dequantize_is_one_fp32_product() -> None:
    q = np.array([[1, -127, 55]], np.int8)
    s = np.array([0.1], np.float32)
    out = nx.dequantize_rows(q, s)
    assert out.dtype == np.float32
    assert out.tolist() == [[float(np.float32(0.1)), float(np.float32(-127) * np.float32(0.1)),
                             float(np.float32(55) * np.float32(0.1))]]


def test_layernorm_quantize_normalises_then_quantises() -> None:
    x = np.array([[1.0, 2.0, 3.0, 4.0]], np.float32)
    q, s = nx.layernorm_quantize(x, np.ones(4), np.zeros(4), 0.0)
    z = (np.array([1, 2, 3, 4]) - 2.5) / np.sqrt(1.25)  # ±1.3416, ±0.4472
    assert s[0] == pytest.approx(z.max() / 127, rel=1e-6)
    assert q.tolist() == [[-127, -42, 42, 127]]  # 0.4472 / 1.3416 * 127 = 42.33


def test_attention_single_key_returns_its_value_and_masked_rows_are_zero() -> None:
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 2, 3, 4)) for _ in range(3))
    k1, v1 = k[:, :, :1], v[:, :, :1]
    out = nx.attention(q, k1, v1)
    assert np.allclose(out, np.broadcast_to(v1, out.shape))
    # every key masked for batch 0 → zeros; causal row 0 sees only key 0 → v[0]
    out = nx.attention(q, k, v, key_mask=np.zeros((1, 3), np.int32))
    assert np.array_equal(out, np.zeros_like(out))
    out = nx.attention(q, k, v, causal=True)
    assert np.allclose(out[:, :, 0], v[:, :, 0])


def test_attention_reference_matches_torch_sdpa_in_float64() -> None:
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    rng = np.random.default_rng(1)
    b, h, s, d = 2, 3, 13, 8
    q, k, v = (rng.standard_normal((b, h, s, d)) for _ in range(3))
    mask = np.ones((b, s), np.int32)
    mask[1, 9:] = 0
    bias = rng.standard_normal((1, h, s, s))
    ref = nx.attention(q, k, v, key_mask=mask, bias=bias, scale=0.3)
    tq, tk, tv = (torch.from_numpy(t) for t in (q, k, v))
    additive = torch.from_numpy(bias) + torch.from_numpy(np.where(mask[:, None, None, :] != 0, 0.0, -np.inf))
    want = f.scaled_dot_product_attention(tq, tk, tv, attn_mask=additive, scale=0.3).numpy()
    assert np.max(np.abs(ref - want)) < 1e-12
    ref_c = nx.attention(q, k, v, causal=True)
    want_c = f.scaled_dot_product_attention(tq, tk, tv, is_causal=True).numpy()
    assert np.max(np.abs(ref_c - want_c)) < 1e-12


def test_int8_attention_is_attention_of_the_dequantised_inputs() -> None:
    rng = np.random.default_rng(2)
    q, k, v = (rng.integers(-127, 128, (1, 2, 5, 32)).astype(np.int8) for _ in range(3))
    got = nx.attention_int8(q, k, v, 0.01, 0.02, 0.03)
    want = nx.attention(q * 0.01, k * 0.02, v * 0.03)
    assert np.allclose(got, want, atol=1e-12)
    # the kernel's claim: an int8 dot product over head_dim <= 128 is exact in fp32 (< 2^24)
    assert 128 * 127 * 127 < 2**24


CASES = [
    # (batch, heads, seq, head_dim, causal, padded, bias)
    (2, 2, 77, 64, True, False, False),    # CLIP text
    (1, 2, 50, 64, False, False, False),   # ViT-B/32
    (2, 1, 197, 80, False, True, False),   # ViT-B/16 width, padded keys
    (1, 1, 257, 128, False, False, True),  # ViT-L/14, additive bias
    (3, 2, 33, 32, False, True, True),     # MiniLM-like, odd length
]


@pytest.mark.parametrize(("b", "h", "s", "d", "causal", "padded", "with_bias"), CASES)
@pytest.mark.parametrize("block_n", [64, 32])
def test_tiled_online_softmax_matches_float64_reference(b: int, h: int, s: int, d: int, causal: bool,
                                                        padded: bool, with_bias: bool, block_n: int) -> None:
    rng = np.random.default_rng(s + d)
    q, k, v = (rng.standard_normal((b, h, s, d)).astype(np.float16) for _ in range(3))
    mask = None
    if padded:
        mask = np.ones((b, s), np.int32)
        mask[-1, s // 2:] = 0
    bias = rng.standard_normal((b, 1, 1, s)).astype(np.float32) if with_bias else None
    ref = nx.attention(q, k, v, causal=causal, key_mask=mask, bias=bias)
    got = nx.flash_attention_emulated(q, k, v, causal=causal, key_mask=mask, bias=bias, block_n=block_n)
    assert nx.max_abs_error(got, ref) <= 2e-3


def test_emulation_fully_masked_rows_are_zero_not_nan() -> None:
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((2, 1, 9, 32)) for _ in range(3))
    mask = np.ones((2, 9), np.int32)
    mask[0] = 0
    got = nx.flash_attention_emulated(q, k, v, key_mask=mask, block_n=4)
    assert np.array_equal(got[0], np.zeros_like(got[0]))
    assert nx.max_abs_error(got[1:], nx.attention(q, k, v, key_mask=mask)[1:]) <= 2e-3


def test_max_abs_error_flags_poisoned_outputs() -> None:
    got = np.array([1.0, np.nan])
    assert nx.max_abs_error(got, np.array([1.0, 2.0])) == float("inf")
    assert nx.max_abs_error(np.array([1.0, 2.5]), np.array([1.0, 2.0])) == 0.5
