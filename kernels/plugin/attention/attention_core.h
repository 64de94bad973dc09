// EdgevlAttention and EdgevlAttentionInt8: the one implementation behind both TensorRT plugin
// flavours (common/plugin_v2.h, common/plugin_v3.h): attributes, their parsing and serialisation,
// shape/type rules, and the enqueue onto the C ABI.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "NvInferRuntime.h"
#include "common/fields.h"
#include "common/logging.h"
#include "edgevl_kernels.h"

namespace edgevl {

constexpr char const* kAttentionName = "EdgevlAttention";
constexpr std::int32_t kMinInputs = 3;  // q, k, v: [batch, heads, seq, head_dim]
constexpr std::int32_t kMaxInputs = 4;  // + additive fp32 bias [1|batch, 1|heads, 1|seq_q, seq_k]

struct AttentionAttrs {
  float scale{0.F};     // 0 → 1/sqrt(head_dim)
  std::int32_t causal{0};

  static constexpr std::size_t kSerialSize = sizeof(std::uint32_t) + sizeof(float) + sizeof(std::int32_t);
  static constexpr std::uint32_t kMagic = 0x45564131U;  // "EVA1": format tag of the serialised attributes

  void serialize(void* buffer) const noexcept {
    auto* p = static_cast<char*>(buffer);
    std::memcpy(p, &kMagic, sizeof(kMagic));
    std::memcpy(p + sizeof(kMagic), &scale, sizeof(scale));
    std::memcpy(p + sizeof(kMagic) + sizeof(scale), &causal, sizeof(causal));
  }
  // false when the buffer is not a serialised AttentionAttrs
  bool deserialize(void const* data, std::size_t length) noexcept {
    if (data == nullptr || length != kSerialSize) return false;
    auto const* p = static_cast<char const*>(data);
    std::uint32_t magic = 0;
    std::memcpy(&magic, p, sizeof(magic));
    if (magic != kMagic) return false;
    std::memcpy(&scale, p + sizeof(magic), sizeof(scale));
    std::memcpy(&causal, p + sizeof(magic) + sizeof(scale), sizeof(causal));
    return valid();
  }
  bool valid() const noexcept { return scale >= 0.F && (causal == 0 || causal == 1); }
};

// EdgevlAttentionInt8: int8 q/k/v (symmetric, per-tensor Q/DQ scales q_scale/k_scale/v_scale, all
// > 0 and required), optional fp32 bias, fp16 out; evk_attention_int8 underneath.
constexpr char const* kAttentionInt8Name = "EdgevlAttentionInt8";

struct Int8AttentionAttrs {
  AttentionAttrs base{};
  float q_scale{0.F};  // 0 = not given (rejected by valid())
  float k_scale{0.F};
  float v_scale{0.F};

  static constexpr std::size_t kSerialSize = AttentionAttrs::kSerialSize + 3 * sizeof(float);
  static constexpr std::uint32_t kMagic = 0x45564931U;  // "EVI1"

  void serialize(void* buffer) const noexcept {
    auto* p = static_cast<char*>(buffer);
    std::memcpy(p, &kMagic, sizeof(kMagic));
    std::memcpy(p + 4, &base.scale, sizeof(float));
    std::memcpy(p + 8, &base.causal, sizeof(std::int32_t));
    std::memcpy(p + 12, &q_scale, sizeof(float));
    std::memcpy(p + 16, &k_scale, sizeof(float));
    std::memcpy(p + 20, &v_scale, sizeof(float));
  }
  bool deserialize(void const* data, std::size_t length) noexcept {
    if (data == nullptr || length != kSerialSize) return false;
    auto const* p = static_cast<char const*>(data);
    std::uint32_t magic = 0;
    std::memcpy(&magic, p, sizeof(magic));
    if (magic != kMagic) return false;
    std::memcpy(&base.scale, p + 4, sizeof(float));
    std::memcpy(&base.causal, p + 8, sizeof(std::int32_t));
    std::memcpy(&q_scale, p + 12, sizeof(float));
    std::memcpy(&k_scale, p + 16, sizeof(float));
    std::memcpy(&v_scale, p + 20, sizeof(float));
    return valid();
  }
  // the Q/DQ scales must be finite and > 0 (NaN fails every comparison)
  bool valid() const noexcept {
    auto ok = [](float s) { return s > 0.F && s < 3.0e38F; };
    return base.valid() && ok(q_scale) && ok(k_scale) && ok(v_scale);
  }
};

// Parse "scale" (float32 or float64) and "causal" (int32/int64/int8); other fields (the ONNX node's
// num_heads, plugin_version, ...) are ignored. false on a malformed known field.
bool parse_fields(nvinfer1::PluginFieldCollection const* fc, AttentionAttrs& out) noexcept;
// The same plus "q_scale", "k_scale", "v_scale" (float32/float64, each required, > 0).
bool parse_fields(nvinfer1::PluginFieldCollection const* fc, Int8AttentionAttrs& out) noexcept;

// The field list the creators advertise (scale: float32, causal: int32).
nvinfer1::PluginFieldCollection const* attention_field_names() noexcept;
// scale, causal, q_scale, k_scale, v_scale
nvinfer1::PluginFieldCollection const* attention_int8_field_names() noexcept;

// Output shape = q's shape; output type fp16.
bool attention_shape_ok(std::int32_t nbInputs) noexcept;
nvinfer1::DimsExprs attention_output_dims(nvinfer1::DimsExprs const* inputs) noexcept;

// Type/format rule for position `pos` of (inputs..., output): linear fp16 q/k/v/out of rank 4, the
// same type for q/k/v/out, fp32 rank-4 bias.
bool attention_supports(std::int32_t pos, nvinfer1::PluginTensorDesc const* inOut, std::int32_t nbInputs) noexcept;
// The int8 variant: linear int8 q/k/v of rank 4, fp32 rank-4 bias, fp16 rank-4 out.
bool attention_int8_supports(std::int32_t pos, nvinfer1::PluginTensorDesc const* inOut,
                             std::int32_t nbInputs) noexcept;

// Launch on the C ABI; returns 0 or the kernel's status.
std::int32_t attention_enqueue(AttentionAttrs const& attrs, nvinfer1::PluginTensorDesc const* inputDesc,
                               std::int32_t nbInputs, void const* const* inputs, void* const* outputs,
                               cudaStream_t stream) noexcept;
std::int32_t attention_enqueue(Int8AttentionAttrs const& attrs, nvinfer1::PluginTensorDesc const* inputDesc,
                               std::int32_t nbInputs, void const* const* inputs, void* const* outputs,
                               cudaStream_t stream) noexcept;

}  // namespace edgevl
