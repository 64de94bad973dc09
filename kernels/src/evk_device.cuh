// edgevl device code: header-free (no CUDA headers), so the same source compiles with nvcc and
// with NVRTC (which ships no cuda_fp16.h / mma.h). fp16 values travel as raw 16-bit words and are
// converted with PTX cvt; tensor cores are used through PTX mma.sync (sm_80+).
#pragma once

namespace evk {

typedef unsigned short half_bits;
typedef long long i64;

#define EVK_LOG2E 1.4426950408889634f
#define EVK_NEG_INF (-__int_as_float(0x7f800000))

__device__ __forceinline__ float h2f(half_bits h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}
__device__ __forceinline__ half_bits f2h(float f) {  // round to nearest even
  half_bits h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}
__device__ __forceinline__ unsigned pack_h2(float lo, float hi) {
  return (unsigned)f2h(lo) | ((unsigned)f2h(hi) << 16);
}
__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(half_bits x) { return h2f(x); }
__device__ __forceinline__ float to_f(signed char x) { return (float)x; }
__device__ __forceinline__ void store_f(float* p, float x) { *p = x; }
__device__ __forceinline__ void store_f(half_bits* p, float x) { *p = f2h(x); }

// Attention problem as the kernels see it (filled by the host launcher from evk_attention_params).
struct AttnArgs {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  i64 qs[3], ks[3], vs[3], os[3];  // batch, head, token strides (elements)
  int heads, seq_q, seq_k, causal;
  float scale;       // applied to q.k (includes q_scale * k_scale for int8)
  float v_scale;     // applied to the output (int8), 1 otherwise
  const int* key_mask;
  const float* bias;
  i64 bs[3];
};

// Logit of (row, key) before the softmax, or -inf when masked / out of range.
__device__ __forceinline__ float masked_logit(const AttnArgs& a, int b, int h, int row, int key, float dot) {
  if (key >= a.seq_k) return EVK_NEG_INF;
  if (a.key_mask != 0 && a.key_mask[(i64)b * a.seq_k + key] == 0) return EVK_NEG_INF;
  if (a.causal && key > row) return EVK_NEG_INF;
  float v = dot * a.scale;
  if (a.bias != 0 && row < a.seq_q) v += a.bias[b * a.bs[0] + h * a.bs[1] + row * a.bs[2] + key];
  return v;
}

// One online-softmax step: new max (natural units), factor for the old state.
__device__ __forceinline__ float safe_max(float m) { return m == EVK_NEG_INF ? 0.f : m; }

// ------------------------------------------------------------------------------------------------
// Tensor-core flash attention (sm_80+): 4 warps x 16 query rows; K/V tiles of BN keys in shared
// memory; S and O accumulators in registers (mma.m16n8k16 fragment layout, PTX ISA 9.7.13.4.8).

__device__ __forceinline__ void mma_16816(float c[4], const unsigned a[4], unsigned b0, unsigned b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  (void)c; (void)a; (void)b0; (void)b1;
  __trap();  // the host never launches this kernel below sm_80
#endif
}

template <int D>
struct MmaTile {
  static constexpr int BM = 64;                 // query rows per block (16 per warp)
  static constexpr int BN = D >= 128 ? 32 : 64;  // keys per tile
  static constexpr int LD = D + 8;               // shared row stride (halfs): 16-byte rows, fewer conflicts
};

template <int D>
__global__ void __launch_bounds__(128) attn_fp16_mma(AttnArgs a) {
  constexpr int BM = MmaTile<D>::BM, BN = MmaTile<D>::BN, LD = MmaTile<D>::LD;
  constexpr int KT = D / 16, NT = BN / 8, DT = D / 8;
  __shared__ __align__(16) half_bits ks[BN * LD];
  __shared__ __align__(16) half_bits vs[BN * LD];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int b = blockIdx.y / a.heads, h = blockIdx.y % a.heads;
  const int q0 = blockIdx.x * BM + warp * 16;
  const half_bits* Q = (const half_bits*)a.q + b * a.qs[0] + h * a.qs[1];
  const half_bits* K = (const half_bits*)a.k + b * a.ks[0] + h * a.ks[1];
  const half_bits* V = (const half_bits*)a.v + b * a.vs[0] + h * a.vs[1];

  unsigned qa[KT][4];
#pragma unroll
  for (int kt = 0; kt < KT; ++kt) {
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int row = q0 + g + (r & 1) * 8, col = kt * 16 + t * 2 + (r >> 1) * 8;
      qa[kt][r] = row < a.seq_q ? *(const unsigned*)(Q + row * a.qs[2] + col) : 0u;
    }
  }
  float o[DT][4];
#pragma unroll
  for (int dt = 0; dt < DT; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.f;
  float m[2] = {EVK_NEG_INF, EVK_NEG_INF}, l[2] = {0.f, 0.f};

  int n_end = a.seq_k;
  if (a.causal) n_end = min(n_end, (int)(blockIdx.x + 1) * BM);
  for (int n0 = 0; n0 < n_end; n0 += BN) {
    // K and V tiles, 16-byte chunks, zero rows past seq_k
    for (int c = threadIdx.x; c < BN * (D / 8); c += 128) {
      const int row = c / (D / 8), col = (c % (D / 8)) * 8, key = n0 + row;
      uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
      if (key < a.seq_k) {
        kv = *(const uint4*)(K + key * a.ks[2] + col);
        vv = *(const uint4*)(V + key * a.vs[2] + col);
      }
      *(uint4*)(ks + row * LD + col) = kv;
      *(uint4*)(vs + row * LD + col) = vv;
    }
    __syncthreads();

    float s[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
    for (int kt = 0; kt < KT; ++kt) {
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const half_bits* kr = ks + (nt * 8 + g) * LD + kt * 16 + t * 2;
        mma_16816(s[nt], qa[kt], *(const unsigned*)kr, *(const unsigned*)(kr + 8));
      }
    }
    float mx[2] = {EVK_NEG_INF, EVK_NEG_INF};
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int row = q0 + g + (i >> 1) * 8, key = n0 + nt * 8 + t * 2 + (i & 1);
        s[nt][i] = masked_logit(a, b, h, row, key, s[nt][i]);
        mx[i >> 1] = fmaxf(mx[i >> 1], s[nt][i]);
      }
    }
    float alpha[2], mu[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float mn = fmaxf(m[r], mx[r]);
      mu[r] = safe_max(mn);
      alpha[r] = exp2f((m[r] - mu[r]) * EVK_LOG2E);
      m[r] = mn;
      l[r] *= alpha[r];
    }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        s[nt][i] = exp2f((s[nt][i] - mu[i >> 1]) * EVK_LOG2E);
        l[i >> 1] += s[nt][i];
      }
    }
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
      o[dt][0] *= alpha[0]; o[dt][1] *= alpha[0];
      o[dt][2] *= alpha[1]; o[dt][3] *= alpha[1];
    }
    // P (C layout of two n-tiles) is the A fragment of P.V for one 16-key step
#pragma unroll
    for (int k2 = 0; k2 < BN / 16; ++k2) {
      unsigned pa[4];
      pa[0] = pack_h2(s[2 * k2][0], s[2 * k2][1]);
      pa[1] = pack_h2(s[2 * k2][2], s[2 * k2][3]);
      pa[2] = pack_h2(s[2 * k2 + 1][0], s[2 * k2 + 1][1]);
      pa[3] = pack_h2(s[2 * k2 + 1][2], s[2 * k2 + 1][3]);
      const half_bits* v0 = vs + (k2 * 16 + t * 2) * LD + g;
#pragma unroll
      for (int dt = 0; dt < DT; ++dt) {
        const half_bits* vp = v0 + dt * 8;
        const unsigned b0 = (unsigned)vp[0] | ((unsigned)vp[LD] << 16);
        const unsigned b1 = (unsigned)vp[8 * LD] | ((unsigned)vp[9 * LD] << 16);
        mma_16816(o[dt], pa, b0, b1);
      }
    }
    __syncthreads();
  }
  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    inv[r] = l[r] > 0.f ? 1.f / l[r] : 0.f;
  }
  half_bits* O = (half_bits*)a.out + b * a.os[0] + h * a.os[1];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = q0 + g + r * 8;
    if (row < a.seq_q) {
#pragma unroll
      for (int dt = 0; dt < DT; ++dt) {
        *(unsigned*)(O + row * a.os[2] + dt * 8 + t * 2) =
            pack_h2(o[dt][2 * r] * inv[r], o[dt][2 * r + 1] * inv[r]);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------
// SIMT attention (any architecture; the sm_72/75 path and the int8 variant): 4 warps x 4 query
// rows; 32-key tiles in shared memory as fp32; lane j scores key j, lanes own head dims for P.V.

template <int D>
struct SimtTile {
  static constexpr int ROWS = 4;         // query rows per warp
  static constexpr int BM = 4 * ROWS;    // per block
  static constexpr int BN = 32;          // keys per tile (one per lane)
  static constexpr int LD = D + 1;       // fp32 row stride: lane j reads row j without conflicts
  static constexpr int DC = (D + 31) / 32;
};

template <typename T, int D>
__global__ void __launch_bounds__(128) attn_simt(AttnArgs a) {
  typedef SimtTile<D> S;
  __shared__ float ks[S::BN * S::LD];
  __shared__ float vs[S::BN * D];
  __shared__ float qs[S::BM * D];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int b = blockIdx.y / a.heads, h = blockIdx.y % a.heads;
  const int r0 = blockIdx.x * S::BM;
  const T* Q = (const T*)a.q + b * a.qs[0] + h * a.qs[1];
  const T* K = (const T*)a.k + b * a.ks[0] + h * a.ks[1];
  const T* V = (const T*)a.v + b * a.vs[0] + h * a.vs[1];
  for (int c = threadIdx.x; c < S::BM * D; c += 128) {
    const int row = r0 + c / D;
    qs[c] = row < a.seq_q ? to_f(Q[row * a.qs[2] + c % D]) : 0.f;
  }
  float m[S::ROWS], l[S::ROWS], o[S::ROWS][S::DC];
#pragma unroll
  for (int r = 0; r < S::ROWS; ++r) {
    m[r] = EVK_NEG_INF;
    l[r] = 0.f;
#pragma unroll
    for (int c = 0; c < S::DC; ++c) o[r][c] = 0.f;
  }
  int n_end = a.seq_k;
  if (a.causal) n_end = min(n_end, r0 + S::BM);
  for (int n0 = 0; n0 < n_end; n0 += S::BN) {
    __syncthreads();  // previous tile consumed (and qs written, first time)
    for (int c = threadIdx.x; c < S::BN * D; c += 128) {
      const int row = c / D, col = c % D, key = n0 + row;
      const bool in = key < a.seq_k;
      ks[row * S::LD + col] = in ? to_f(K[key * a.ks[2] + col]) : 0.f;
      vs[c] = in ? to_f(V[key * a.vs[2] + col]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < S::ROWS; ++r) {
      const int rl = warp * S::ROWS + r, row = r0 + rl;
      float dot = 0.f;  // int8: every partial sum is an integer below 2^24, so exact
#pragma unroll 8
      for (int d = 0; d < D; ++d) dot = fmaf(qs[rl * D + d], ks[lane * S::LD + d], dot);
      const float s = masked_logit(a, b, h, row, n0 + lane, dot);
      float mx = s;
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float mn = fmaxf(m[r], mx), mu = safe_max(mn);
      const float alpha = exp2f((m[r] - mu) * EVK_LOG2E);
      const float p = exp2f((s - mu) * EVK_LOG2E);
      float ps = p;
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) ps += __shfl_xor_sync(0xffffffffu, ps, off);
      m[r] = mn;
      l[r] = l[r] * alpha + ps;
#pragma unroll
      for (int c = 0; c < S::DC; ++c) o[r][c] *= alpha;
      for (int j = 0; j < S::BN; ++j) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
        for (int c = 0; c < S::DC; ++c) {
          const int d = lane + 32 * c;
          if (d < D) o[r][c] = fmaf(pj, vs[j * D + d], o[r][c]);
        }
      }
    }
  }
  typedef half_bits OutT;
  OutT* O = (OutT*)a.out + b * a.os[0] + h * a.os[1];
#pragma unroll
  for (int r = 0; r < S::ROWS; ++r) {
    const int row = r0 + warp * S::ROWS + r;
    if (row >= a.seq_q) continue;
    const float inv = l[r] > 0.f ? a.v_scale / l[r] : 0.f;
#pragma unroll
    for (int c = 0; c < S::DC; ++c) {
      const int d = lane + 32 * c;
      if (d < D) store_f(O + row * a.os[2] + d, o[r][c] * inv);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// int8: per-row quantisation, LayerNorm + quantise, dequantise. One 256-thread block per row.

#define EVK_ROW_THREADS 256

__device__ __forceinline__ float block_reduce(float v, bool is_max, float* red) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float o = __shfl_xor_sync(0xffffffffu, v, off);
    v = is_max ? fmaxf(v, o) : v + o;
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = red[0];
  for (int w = 1; w < EVK_ROW_THREADS / 32; ++w) v = is_max ? fmaxf(v, red[w]) : v + red[w];
  return v;  // the same value, in the same order, on every thread
}

// The documented rounding rule (docs/kernels.md; the numpy twin is edgevl_export.trt.numerics).
__device__ __forceinline__ float row_scale(float amax) {
  return amax > 0.f ? __fdiv_rn(amax, 127.f) : 1.f;
}
__device__ __forceinline__ signed char quantize_one(float x, float scale) {
  const int q = __float2int_rn(__fdiv_rn(x, scale));  // round to nearest, ties to even
  return (signed char)max(-127, min(127, q));
}

template <typename T>
__global__ void __launch_bounds__(EVK_ROW_THREADS) quantize_rows(const T* x, i64 ld, int cols, signed char* q,
                                                                 i64 ldq, float* scale) {
  __shared__ float red[EVK_ROW_THREADS / 32];
  const T* xr = x + blockIdx.x * ld;
  float amax = 0.f;
  for (int c = threadIdx.x; c < cols; c += EVK_ROW_THREADS) amax = fmaxf(amax, fabsf(to_f(xr[c])));
  const float s = row_scale(block_reduce(amax, true, red));
  for (int c = threadIdx.x; c < cols; c += EVK_ROW_THREADS) q[blockIdx.x * ldq + c] = quantize_one(to_f(xr[c]), s);
  if (threadIdx.x == 0) scale[blockIdx.x] = s;
}

template <typename T>
__global__ void __launch_bounds__(EVK_ROW_THREADS) layernorm_quantize(const T* x, i64 ld, int cols, const float* gamma,
                                                                      const float* beta, float eps, signed char* q,
                                                                      i64 ldq, float* scale) {
  __shared__ float red[EVK_ROW_THREADS / 32];
  const T* xr = x + blockIdx.x * ld;
  float sum = 0.f;
  for (int c = threadIdx.x; c < cols; c += EVK_ROW_THREADS) sum += to_f(xr[c]);
  const float mean = __fdiv_rn(block_reduce(sum, false, red), (float)cols);
  float sq = 0.f;
  for (int c = threadIdx.x; c < cols; c += EVK_ROW_THREADS) {
    const float d = to_f(xr[c]) - mean;
    sq = fmaf(d, d, sq);
  }
  const float var = __fdiv_rn(block_reduce(sq, false, red), (float)cols);
  const float rstd = __fdiv_rn(1.f, __fsqrt_rn(var + eps));
  float amax = 0.f;
  for (int c = threadIdx.x; c < cols; c += EVK_ROW_THREADS)
    amax = fmaxf(amax, fabsf(fmaf((to_f(xr[c]) - mean) * rstd, gamma[c], beta[c])));
  const float s = row_scale(block_reduce(amax, true, red));
  for (int c = threadIdx.x; c < cols; c += EVK_ROW_THREADS)
    q[blockIdx.x * ldq + c] = quantize_one(fmaf((to_f(xr[c]) - mean) * rstd, gamma[c], beta[c]), s);
  if (threadIdx.x == 0) scale[blockIdx.x] = s;
}

template <typename T>
__global__ void __launch_bounds__(EVK_ROW_THREADS) dequantize_rows(const signed char* q, i64 ldq, int cols,
                                                                   const float* scale, T* out, i64 ld) {
  const float s = scale[blockIdx.x];
  for (int c = threadIdx.x; c < cols; c += EVK_ROW_THREADS)
    store_f(out + blockIdx.x * ld + c, __fmul_rn((float)q[blockIdx.x * ldq + c], s));
}

}  // namespace evk
