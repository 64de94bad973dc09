// Host launchers: the C ABI of include/edgevl_kernels.h over the device code in evk_device.cuh.
#include <cuda_runtime.h>

#include <cstdint>

#include "edgevl_kernels.h"
#include "evk_device.cuh"

namespace {

bool aligned(const void* p, std::size_t bytes) { return (reinterpret_cast<std::uintptr_t>(p) % bytes) == 0; }

int launch_status() {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? EVK_OK : static_cast<int>(e);
}

int check_common(const evk_attention_params* p) {
  if (p == nullptr || p->q == nullptr || p->k == nullptr || p->v == nullptr || p->out == nullptr) return EVK_ERR_NULL;
  if (p->batch < 1 || p->heads < 1 || p->seq_q < 1 || p->seq_k < 1) return EVK_ERR_SHAPE;
  if (p->seq_q > EVK_MAX_SEQ || p->seq_k > EVK_MAX_SEQ) return EVK_ERR_SHAPE;
  const int d = p->head_dim;
  if (d != 32 && d != 64 && d != 80 && d != 128) return EVK_ERR_SHAPE;
  return EVK_OK;
}

evk::AttnArgs to_args(const evk_attention_params* p, float qk_scale, float v_scale) {
  evk::AttnArgs a{};
  a.q = p->q;
  a.k = p->k;
  a.v = p->v;
  a.out = p->out;
  for (int i = 0; i < 3; ++i) {
    a.qs[i] = p->q_stride[i];
    a.ks[i] = p->k_stride[i];
    a.vs[i] = p->v_stride[i];
    a.os[i] = p->o_stride[i];
    a.bs[i] = p->bias_stride[i];
  }
  a.heads = p->heads;
  a.seq_q = p->seq_q;
  a.seq_k = p->seq_k;
  a.causal = p->causal != 0;
  a.scale = qk_scale;
  a.v_scale = v_scale;
  a.key_mask = p->key_mask;
  a.bias = p->bias;
  return a;
}

int device_cc() {
  int dev = 0;
  int major = 0;
  int minor = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return 0;
  if (cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) return 0;
  return major * 10 + minor;
}

template <typename T>
int launch_simt(const evk_attention_params* p, float qk_scale, float v_scale, cudaStream_t s) {
  const evk::AttnArgs a = to_args(p, qk_scale, v_scale);
  const dim3 grid((p->seq_q + 15) / 16, static_cast<unsigned>(p->batch * p->heads));
  switch (p->head_dim) {
    case 32: evk::attn_simt<T, 32><<<grid, 128, 0, s>>>(a); break;
    case 64: evk::attn_simt<T, 64><<<grid, 128, 0, s>>>(a); break;
    case 80: evk::attn_simt<T, 80><<<grid, 128, 0, s>>>(a); break;
    default: evk::attn_simt<T, 128><<<grid, 128, 0, s>>>(a); break;
  }
  return launch_status();
}

int launch_mma(const evk_attention_params* p, cudaStream_t s) {
  // 16-byte tile loads and 4-byte fragment loads/stores
  const void* ptrs[4] = {p->q, p->k, p->v, p->out};
  for (const void* q : ptrs)
    if (!aligned(q, 16)) return EVK_ERR_ALIGN;
  const std::int64_t strides[4] = {p->q_stride[2], p->k_stride[2], p->v_stride[2], p->o_stride[2]};
  for (std::int64_t st : strides)
    if (st % 8 != 0) return EVK_ERR_ALIGN;
  for (int i = 0; i < 2; ++i)
    if (p->q_stride[i] % 8 || p->k_stride[i] % 8 || p->v_stride[i] % 8 || p->o_stride[i] % 8) return EVK_ERR_ALIGN;
  const evk::AttnArgs a = to_args(p, p->scale, 1.f);
  const dim3 grid((p->seq_q + 63) / 64, static_cast<unsigned>(p->batch * p->heads));
  switch (p->head_dim) {
    case 32: evk::attn_fp16_mma<32><<<grid, 128, 0, s>>>(a); break;
    case 64: evk::attn_fp16_mma<64><<<grid, 128, 0, s>>>(a); break;
    case 80: evk::attn_fp16_mma<80><<<grid, 128, 0, s>>>(a); break;
    default: evk::attn_fp16_mma<128><<<grid, 128, 0, s>>>(a); break;
  }
  return launch_status();
}

int check_rows(const void* in, const void* out, const void* scale, std::int32_t rows, std::int32_t cols) {
  if (in == nullptr || out == nullptr || scale == nullptr) return EVK_ERR_NULL;
  if (rows < 1 || cols < 1 || rows > 2147483647) return EVK_ERR_SHAPE;
  return EVK_OK;
}

}  // namespace

extern "C" {

int evk_attention_fp16(const evk_attention_params* p, void* stream) {
  const int st = check_common(p);
  if (st != EVK_OK) return st;
  if (device_cc() >= 80) return launch_mma(p, static_cast<cudaStream_t>(stream));
  return launch_simt<evk::half_bits>(p, p->scale, 1.f, static_cast<cudaStream_t>(stream));
}

int evk_attention_fp16_simt(const evk_attention_params* p, void* stream) {
  const int st = check_common(p);
  if (st != EVK_OK) return st;
  return launch_simt<evk::half_bits>(p, p->scale, 1.f, static_cast<cudaStream_t>(stream));
}

int evk_attention_int8(const evk_attention_params* p, void* stream) {
  const int st = check_common(p);
  if (st != EVK_OK) return st;
  return launch_simt<signed char>(p, p->scale * p->q_scale * p->k_scale, p->v_scale,
                                  static_cast<cudaStream_t>(stream));
}

int evk_quantize_rows_f32(const float* x, std::int64_t ld, std::int32_t rows, std::int32_t cols, std::int8_t* q,
                          std::int64_t ldq, float* scale, void* stream) {
  const int st = check_rows(x, q, scale, rows, cols);
  if (st != EVK_OK) return st;
  evk::quantize_rows<float><<<rows, EVK_ROW_THREADS, 0, static_cast<cudaStream_t>(stream)>>>(
      x, ld, cols, reinterpret_cast<signed char*>(q), ldq, scale);
  return launch_status();
}

int evk_quantize_rows_f16(const void* x, std::int64_t ld, std::int32_t rows, std::int32_t cols, std::int8_t* q,
                          std::int64_t ldq, float* scale, void* stream) {
  const int st = check_rows(x, q, scale, rows, cols);
  if (st != EVK_OK) return st;
  evk::quantize_rows<evk::half_bits><<<rows, EVK_ROW_THREADS, 0, static_cast<cudaStream_t>(stream)>>>(
      static_cast<const evk::half_bits*>(x), ld, cols, reinterpret_cast<signed char*>(q), ldq, scale);
  return launch_status();
}

int evk_layernorm_quantize_f16(const void* x, std::int64_t ld, std::int32_t rows, std::int32_t cols,
                               const float* gamma, const float* beta, float eps, std::int8_t* q, std::int64_t ldq,
                               float* scale, void* stream) {
  int st = check_rows(x, q, scale, rows, cols);
  if (st == EVK_OK && (gamma == nullptr || beta == nullptr)) st = EVK_ERR_NULL;
  if (st != EVK_OK) return st;
  evk::layernorm_quantize<evk::half_bits><<<rows, EVK_ROW_THREADS, 0, static_cast<cudaStream_t>(stream)>>>(
      static_cast<const evk::half_bits*>(x), ld, cols, gamma, beta, eps, reinterpret_cast<signed char*>(q), ldq,
      scale);
  return launch_status();
}

int evk_layernorm_quantize_f32(const float* x, std::int64_t ld, std::int32_t rows, std::int32_t cols,
                               const float* gamma, const float* beta, float eps, std::int8_t* q, std::int64_t ldq,
                               float* scale, void* stream) {
  int st = check_rows(x, q, scale, rows, cols);
  if (st == EVK_OK && (gamma == nullptr || beta == nullptr)) st = EVK_ERR_NULL;
  if (st != EVK_OK) return st;
  evk::layernorm_quantize<float><<<rows, EVK_ROW_THREADS, 0, static_cast<cudaStream_t>(stream)>>>(
      x, ld, cols, gamma, beta, eps, reinterpret_cast<signed char*>(q), ldq, scale);
  return launch_status();
}

int evk_dequantize_rows_f32(const std::int8_t* q, std::int64_t ldq, std::int32_t rows, std::int32_t cols,
                            const float* scale, float* out, std::int64_t ld, void* stream) {
  const int st = check_rows(q, out, scale, rows, cols);
  if (st != EVK_OK) return st;
  evk::dequantize_rows<float><<<rows, EVK_ROW_THREADS, 0, static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const signed char*>(q), ldq, cols, scale, out, ld);
  return launch_status();
}

int evk_dequantize_rows_f16(const std::int8_t* q, std::int64_t ldq, std::int32_t rows, std::int32_t cols,
                            const float* scale, void* out, std::int64_t ld, void* stream) {
  const int st = check_rows(q, out, scale, rows, cols);
  if (st != EVK_OK) return st;
  evk::dequantize_rows<evk::half_bits><<<rows, EVK_ROW_THREADS, 0, static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const signed char*>(q), ldq, cols, scale, static_cast<evk::half_bits*>(out), ld);
  return launch_status();
}

const char* evk_version(void) { return "edgevl-kernels 0.1.0"; }

}  // extern "C"
