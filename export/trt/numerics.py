"""Host references for the CUDA kernels in ``kernels/`` (numpy; float64 unless a rule says float32).

These are the documented numerics of docs/kernels.md as pure functions. The CPU tests check the
rules and the tiled online-softmax algorithm here; ``kernels/check_gpu.py`` loads this file by path
(it needs only numpy) and compares every kernel's output against it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

F32 = np.float32
QMAX = 127  # symmetric int8: [-127, 127]; -128 is never produced
Array = np.ndarray[Any, Any]


# ---------------------------------------------------------------- int8 rounding rules (bit-exact)

def row_scale(amax: Array) -> Array:
    """scale = amax / 127 in IEEE fp32 (round to nearest), 1 for an all-zero row."""
    a = np.asarray(amax, F32)
    return np.where(a > 0, a / F32(QMAX), F32(1)).astype(F32)


def quantize_with_scale(x: Array, scale: Array) -> Array:
    """q = clamp(rne(fp32(x) / scale), -127, 127): IEEE fp32 division, ties to even, saturating."""
    r = np.rint(np.asarray(x, F32) / np.asarray(scale, F32)[..., None])
    return np.clip(r, -QMAX, QMAX).astype(np.int8)


def quantize_rows(x: Array) -> tuple[Array, Array]:
    """Per-token (per-row) symmetric int8 quantisation; bit-exact twin of evk_quantize_rows_*."""
    x32 = np.asarray(x).astype(F32)
    scale = row_scale(np.max(np.abs(x32), axis=-1))
    return quantize_with_scale(x32, scale), scale


def dequantize_rows(q: Array, scale: Array) -> Array:
    """out = q * scale, one fp32 rounding (bit-exact twin of evk_dequantize_rows_f32)."""
    return (np.asarray(q).astype(F32) * np.asarray(scale, F32)[..., None]).astype(F32)


def layernorm(x: Array, gamma: Array, beta: Array, eps: float) -> Array:
    """LayerNorm over the last axis in float64 (biased variance, like torch / ONNX)."""
    x64 = np.asarray(x, np.float64)
    mu = x64.mean(axis=-1, keepdims=True)
    var = ((x64 - mu) ** 2).mean(axis=-1, keepdims=True)
    g, b = np.asarray(gamma, np.float64), np.asarray(beta, np.float64)
    out: Array = (x64 - mu) / np.sqrt(var + eps) * g + b
    return out


def layernorm_quantize(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, Array]:
    """The float64 LayerNorm, then the quantisation rule. The kernel's fp32 LayerNorm may land on the
    other side of a rounding boundary: it matches this within 1 code and the scale within 1e-5."""
    return quantize_rows(layernorm(x, gamma, beta, eps))


# ---------------------------------------------------------------- attention

def attention(q: Array, k: Array, v: Array, *, scale: float | None = None, causal: bool = False,
              key_mask: Array | None = None, bias: Array | None = None) -> Array:
    """softmax(scale * q k^T + bias, masked) v in float64 over [batch, heads, seq, dim].

    Masked logits (key_mask == 0, or key > query when causal) are -inf; a row with every logit
    masked gives 0 (the kernels' rule). bias broadcasts to [batch, heads, seq_q, seq_k].
    """
    q64, k64, v64 = (np.asarray(t, np.float64) for t in (q, k, v))
    d = q64.shape[-1]
    s = np.einsum("bhqd,bhkd->bhqk", q64, k64) * (1.0 / np.sqrt(d) if scale is None else float(scale))
    if bias is not None:
        s = s + np.asarray(bias, np.float64)
    s = np.where(_keep(s.shape, causal, key_mask), s, -np.inf)
    m = np.max(s, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    p = np.exp(s - m)
    den = p.sum(axis=-1, keepdims=True)
    out: Array = np.einsum("bhqk,bhkd->bhqd", p, v64) / np.where(den > 0, den, 1.0)
    return out


def _keep(shape: tuple[int, ...], causal: bool, key_mask: Array | None) -> Array:
    b, _, sq, sk = shape
    keep = np.ones((b, 1, sq, sk), bool)
    if key_mask is not None:
        keep &= (np.asarray(key_mask) != 0)[:, None, None, :]
    if causal:
        keep &= np.arange(sk)[None, :] <= np.arange(sq)[:, None]
    return keep


def attention_int8(q: Array, k: Array, v: Array, q_scale: float, k_scale: float, v_scale: float,
                   **kw: Any) -> Array:
    """The int8 variant: dequantise q/k/v with their per-tensor Q/DQ scales, then ``attention``."""
    return attention(np.asarray(q, np.float64) * q_scale, np.asarray(k, np.float64) * k_scale,
                     np.asarray(v, np.float64) * v_scale, **kw)


def flash_attention_emulated(q: Array, k: Array, v: Array, *, scale: float | None = None,
                             causal: bool = False, key_mask: Array | None = None, bias: Array | None = None,
                             block_n: int = 64, block_m: int = 64, p_fp16: bool = True) -> Array:
    """The fp16 kernel's algorithm on the host: key tiles of ``block_n``, online softmax in fp32
    (running max m, running sum l, rescale factor alpha), P rounded to fp16 before P.V (as the
    mma.sync path does), the causal loop ending at the query block's last row, fp16 output.

    Used by the CPU tests to check the tiling, masking and rescaling logic against ``attention``.
    """
    q32, k32, v32 = (np.asarray(t).astype(np.float16).astype(F32) for t in (q, k, v))
    b, h, sq, d = q32.shape
    sk = k32.shape[2]
    sc = F32(1.0 / np.sqrt(d) if scale is None else scale)
    keep = _keep((b, h, sq, sk), causal, key_mask)
    full_bias = None if bias is None else np.broadcast_to(np.asarray(bias, F32), (b, h, sq, sk))
    out = np.zeros((b, h, sq, d), F32)
    for m0 in range(0, sq, block_m):
        rows = slice(m0, min(sq, m0 + block_m))
        n_end = min(sk, m0 + block_m) if causal else sk
        m = np.full((b, h, rows.stop - m0, 1), -np.inf, F32)
        l_ = np.zeros_like(m)
        acc = np.zeros((b, h, rows.stop - m0, d), F32)
        for n0 in range(0, n_end, block_n):
            cols = slice(n0, min(sk, n0 + block_n))
            s = np.einsum("bhqd,bhkd->bhqk", q32[:, :, rows], k32[:, :, cols]).astype(F32) * sc
            if full_bias is not None:
                s = s + full_bias[:, :, rows, cols]
            s = np.where(keep[:, :, rows, cols], s, F32(-np.inf))
            m_new = np.maximum(m, s.max(axis=-1, keepdims=True))
            mu = np.where(np.isfinite(m_new), m_new, F32(0))
            alpha = np.exp(m - mu)
            p = np.exp(s - mu).astype(F32)
            l_ = l_ * alpha + p.sum(axis=-1, keepdims=True)
            pv = p.astype(np.float16).astype(F32) if p_fp16 else p
            acc = acc * alpha + np.einsum("bhqk,bhkd->bhqd", pv, v32[:, :, cols]).astype(F32)
            m = m_new
        inv = np.where(l_ > 0, 1.0 / np.where(l_ > 0, l_, 1), 0).astype(F32)
        out[:, :, rows] = acc * inv
    result: Array = out.astype(np.float16)
    return result


def max_abs_error(got: Array, ref: Array) -> float:
    """max |got - ref| in float64; NaN anywhere in ``got`` (an unwritten, poisoned output) is +inf."""
    g = np.asarray(got, np.float64)
    if not np.all(np.isfinite(g)):
        return float("inf")
    return float(np.max(np.abs(g - np.asarray(ref, np.float64)))) if g.size else 0.0
