/* edgevl CUDA kernels: C ABI (no CUDA, TensorRT or framework header needed to include this).
 *
 * Every function enqueues work on `stream` (a cudaStream_t passed as void*, NULL = legacy default
 * stream) and returns 0 on success, a negative EVK_ERR_* for invalid arguments (nothing enqueued), or
 * a positive cudaError_t when the launch failed. Numerics are documented in docs/kernels.md.
 */
#ifndef EDGEVL_KERNELS_H
#define EDGEVL_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EVK_OK 0
#define EVK_ERR_SHAPE (-1)      /* unsupported head_dim / sequence length / empty problem */
#define EVK_ERR_ALIGN (-2)      /* pointer or stride not aligned as the kernel needs */
#define EVK_ERR_NULL (-3)       /* a required pointer is NULL */

#define EVK_MAX_SEQ 1024

/* Scaled dot-product attention over [batch, heads, seq, head_dim] views given by element strides
 * (the last axis, head_dim, is contiguous). out = softmax(scale * Q K^T + bias, masked) V.
 * Masked logits: keys with key_mask[b * seq_k + j] == 0, keys j > i when causal (top-left aligned).
 * A row whose every logit is masked gives 0. bias is fp32 [.., .., seq_q, seq_k] with strides over
 * (batch, heads, query) — 0 broadcasts — and a contiguous key axis. */
typedef struct evk_attention_params {
    const void* q;
    const void* k;
    const void* v;
    void* out;
    int64_t q_stride[3]; /* batch, head, token */
    int64_t k_stride[3];
    int64_t v_stride[3];
    int64_t o_stride[3];
    int32_t batch;
    int32_t heads;
    int32_t seq_q;
    int32_t seq_k;
    int32_t head_dim; /* 32, 64, 80 or 128 */
    int32_t causal;
    float scale;
    const int32_t* key_mask; /* [batch, seq_k], nonzero = attend; NULL = none */
    const float* bias;       /* NULL = none */
    int64_t bias_stride[3];  /* batch, head, query */
    float q_scale;           /* int8 variant only: the Q/DQ scales of q, k, v */
    float k_scale;
    float v_scale;
} evk_attention_params;

/* fp16 q/k/v/out, fp32 accumulation and softmax. mma.sync tensor-core path on sm_80+, the SIMT path
 * below sm_80 (sm_72 Xavier, sm_75 Turing). */
int evk_attention_fp16(const evk_attention_params* p, void* stream);
/* the SIMT path on any architecture (what sm_72/75 run; exposed so a newer GPU can check it) */
int evk_attention_fp16_simt(const evk_attention_params* p, void* stream);
/* int8 q/k/v (symmetric, scales q_scale/k_scale/v_scale), fp16 out; QK^T exact in fp32 */
int evk_attention_int8(const evk_attention_params* p, void* stream);

/* Per-token (per-row) symmetric int8 quantisation of x [rows, cols] (row stride ld elements):
 * scale[r] = max|x[r,:]| / 127 (1 when the row is all zero), q = clamp(rne(x / scale), -127, 127),
 * IEEE fp32 division and round-to-nearest-even. */
int evk_quantize_rows_f32(const float* x, int64_t ld, int32_t rows, int32_t cols, int8_t* q, int64_t ldq,
                          float* scale, void* stream);
int evk_quantize_rows_f16(const void* x, int64_t ld, int32_t rows, int32_t cols, int8_t* q, int64_t ldq,
                          float* scale, void* stream);
/* y = LayerNorm(x) * gamma + beta in fp32 (two-pass mean/variance, 1/sqrt IEEE), then quantised per
 * row like evk_quantize_rows_*. gamma/beta are fp32 [cols]. */
int evk_layernorm_quantize_f16(const void* x, int64_t ld, int32_t rows, int32_t cols, const float* gamma,
                               const float* beta, float eps, int8_t* q, int64_t ldq, float* scale,
                               void* stream);
int evk_layernorm_quantize_f32(const float* x, int64_t ld, int32_t rows, int32_t cols, const float* gamma,
                               const float* beta, float eps, int8_t* q, int64_t ldq, float* scale,
                               void* stream);
/* out[r, c] = q[r, c] * scale[r] (one fp32 rounding; fp16 output rounds that to nearest even) */
int evk_dequantize_rows_f32(const int8_t* q, int64_t ldq, int32_t rows, int32_t cols, const float* scale,
                            float* out, int64_t ld, void* stream);
int evk_dequantize_rows_f16(const int8_t* q, int64_t ldq, int32_t rows, int32_t cols, const float* scale,
                            void* out, int64_t ld, void* stream);

/* "edgevl-kernels <version>" */
const char* evk_version(void);

#ifdef __cplusplus
}
#endif
#endif
