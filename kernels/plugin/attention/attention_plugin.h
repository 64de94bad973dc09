// The attention plugins as Kinds (common/kind.h) and their creators in both flavours:
//   EdgevlAttention      fp16 q/k/v [+ fp32 bias] -> fp16
//   EdgevlAttentionInt8  int8 q/k/v (Q/DQ scales as fields) [+ fp32 bias] -> fp16
// IPluginV2DynamicExt ("1") everywhere, IPluginV3 ("2") where TensorRT >= 10 (common/trt_api.h).
#pragma once

#include <cstdint>

#include "attention/attention_core.h"
#include "common/plugin_v2.h"
#include "common/plugin_v3.h"

namespace edgevl {

struct AttentionKindBase {
  static constexpr std::int32_t kMinIn = kMinInputs;
  static constexpr std::int32_t kMaxIn = kMaxInputs;
  static constexpr std::int32_t kOutputs = 1;
  static bool output_dims(nvinfer1::DimsExprs const* in, std::int32_t /*nbIn*/, nvinfer1::DimsExprs* out,
                          nvinfer1::IExprBuilder& /*b*/) noexcept {
    if (in[0].nbDims != 4) return false;
    out[0] = attention_output_dims(in);
    return true;
  }
  template <class A>
  static nvinfer1::DataType output_type(A const& /*attrs*/, std::int32_t /*index*/,
                                        nvinfer1::DataType const* /*in*/) noexcept {
    return nvinfer1::DataType::kHALF;
  }
  template <class A>
  static std::int32_t enqueue(A const& attrs, nvinfer1::PluginTensorDesc const* in, std::int32_t nbIn,
                              void const* const* inputs, void* const* outputs, cudaStream_t stream) noexcept {
    return attention_enqueue(attrs, in, nbIn, inputs, outputs, stream);
  }
};

struct Fp16Kind : AttentionKindBase {
  using Attrs = AttentionAttrs;
  static constexpr char const* kName = kAttentionName;
  static nvinfer1::PluginFieldCollection const* fields() noexcept { return attention_field_names(); }
  static bool supports(Attrs const& /*a*/, std::int32_t pos, nvinfer1::PluginTensorDesc const* inOut,
                       std::int32_t nbInputs) noexcept {
    return attention_supports(pos, inOut, nbInputs);
  }
  // the serialised V3 fields (the creator parses them back with parse_fields)
  static std::int32_t serial_fields(Attrs& a, nvinfer1::PluginField* out) noexcept {
    out[0] = nvinfer1::PluginField("scale", &a.scale, nvinfer1::PluginFieldType::kFLOAT32, 1);
    out[1] = nvinfer1::PluginField("causal", &a.causal, nvinfer1::PluginFieldType::kINT32, 1);
    return 2;
  }
};

struct Int8Kind : AttentionKindBase {
  using Attrs = Int8AttentionAttrs;
  static constexpr char const* kName = kAttentionInt8Name;
  static nvinfer1::PluginFieldCollection const* fields() noexcept { return attention_int8_field_names(); }
  static bool supports(Attrs const& /*a*/, std::int32_t pos, nvinfer1::PluginTensorDesc const* inOut,
                       std::int32_t nbInputs) noexcept {
    return attention_int8_supports(pos, inOut, nbInputs);
  }
  static std::int32_t serial_fields(Attrs& a, nvinfer1::PluginField* out) noexcept {
    std::int32_t n = Fp16Kind::serial_fields(a.base, out);
    out[n++] = nvinfer1::PluginField("q_scale", &a.q_scale, nvinfer1::PluginFieldType::kFLOAT32, 1);
    out[n++] = nvinfer1::PluginField("k_scale", &a.k_scale, nvinfer1::PluginFieldType::kFLOAT32, 1);
    out[n++] = nvinfer1::PluginField("v_scale", &a.v_scale, nvinfer1::PluginFieldType::kFLOAT32, 1);
    return n;
  }
};

// the creator types (named: REGISTER_TENSORRT_PLUGIN pastes the name into an identifier)
using EdgevlAttentionCreatorV2 = CreatorV2<Fp16Kind>;
using EdgevlAttentionInt8CreatorV2 = CreatorV2<Int8Kind>;
extern template class PluginV2<Fp16Kind>;
extern template class PluginV2<Int8Kind>;
extern template class CreatorV2<Fp16Kind>;
extern template class CreatorV2<Int8Kind>;
#if EDGEVL_TRT_V3
using EdgevlAttentionCreatorV3 = CreatorV3<Fp16Kind>;
using EdgevlAttentionInt8CreatorV3 = CreatorV3<Int8Kind>;
extern template class PluginV3<Fp16Kind>;
extern template class PluginV3<Int8Kind>;
extern template class CreatorV3<Fp16Kind>;
extern template class CreatorV3<Int8Kind>;
#endif

}  // namespace edgevl
