// The per-row int8 plugins as Kinds (common/kind.h) and their creators in both flavours:
//   EdgevlQuantizeRows       x [..., C] -> (q int8 [..., C], scale fp32 [..., 1])
//   EdgevlLayerNormQuantize  x, gamma [C], beta [C] -> (q, scale)
//   EdgevlDequantizeRows     q, scale -> out fp32 or fp16 (field out_fp16)
// IPluginV2DynamicExt ("1") everywhere, IPluginV3 ("2") where TensorRT >= 10 (common/trt_api.h).
#pragma once

#include <cstdint>

#include "common/plugin_v2.h"
#include "common/plugin_v3.h"
#include "rowops/row_ops_core.h"

namespace edgevl {

// x [..., cols] -> (q int8 [..., cols], scale fp32 [..., 1])
struct QuantizeKind {
  using Attrs = QuantizeAttrs;
  static constexpr char const* kName = kQuantizeName;
  static constexpr std::int32_t kMinIn = 1;
  static constexpr std::int32_t kMaxIn = 1;
  static constexpr std::int32_t kOutputs = 2;
  static nvinfer1::PluginFieldCollection const* fields() noexcept { return quantize_field_names(); }
  static bool supports(Attrs const& /*a*/, std::int32_t pos, nvinfer1::PluginTensorDesc const* inOut,
                       std::int32_t /*nbIn*/) noexcept {
    return quantize_supports(pos, inOut);
  }
  static std::int32_t serial_fields(Attrs& /*a*/, nvinfer1::PluginField* /*out*/) noexcept { return 0; }
  static bool output_dims(nvinfer1::DimsExprs const* in, std::int32_t /*nbIn*/, nvinfer1::DimsExprs* out,
                          nvinfer1::IExprBuilder& b) noexcept {
    return row_quantize_output_dims(in[0], out, b);
  }
  static nvinfer1::DataType output_type(Attrs const& /*a*/, std::int32_t index,
                                        nvinfer1::DataType const* /*in*/) noexcept {
    return index == 0 ? nvinfer1::DataType::kINT8 : nvinfer1::DataType::kFLOAT;
  }
  static std::int32_t enqueue(Attrs const& /*a*/, nvinfer1::PluginTensorDesc const* in, std::int32_t /*nbIn*/,
                              void const* const* inputs, void* const* outputs, cudaStream_t stream) noexcept {
    return quantize_enqueue(in, inputs, outputs, stream);
  }
};

// x [..., cols], gamma [cols], beta [cols] -> (q int8 [..., cols], scale fp32 [..., 1])
struct LayerNormQuantizeKind {
  using Attrs = LayerNormQuantizeAttrs;
  static constexpr char const* kName = kLayerNormQuantizeName;
  static constexpr std::int32_t kMinIn = 3;
  static constexpr std::int32_t kMaxIn = 3;
  static constexpr std::int32_t kOutputs = 2;
  static nvinfer1::PluginFieldCollection const* fields() noexcept { return layernorm_quantize_field_names(); }
  static bool supports(Attrs const& /*a*/, std::int32_t pos, nvinfer1::PluginTensorDesc const* inOut,
                       std::int32_t /*nbIn*/) noexcept {
    return layernorm_quantize_supports(pos, inOut);
  }
  static std::int32_t serial_fields(Attrs& a, nvinfer1::PluginField* out) noexcept {
    out[0] = nvinfer1::PluginField("eps", &a.eps, nvinfer1::PluginFieldType::kFLOAT32, 1);
    return 1;
  }
  static bool output_dims(nvinfer1::DimsExprs const* in, std::int32_t /*nbIn*/, nvinfer1::DimsExprs* out,
                          nvinfer1::IExprBuilder& b) noexcept {
    return row_quantize_output_dims(in[0], out, b);
  }
  static nvinfer1::DataType output_type(Attrs const& /*a*/, std::int32_t index,
                                        nvinfer1::DataType const* /*in*/) noexcept {
    return index == 0 ? nvinfer1::DataType::kINT8 : nvinfer1::DataType::kFLOAT;
  }
  static std::int32_t enqueue(Attrs const& a, nvinfer1::PluginTensorDesc const* in, std::int32_t /*nbIn*/,
                              void const* const* inputs, void* const* outputs, cudaStream_t stream) noexcept {
    return layernorm_quantize_enqueue(a, in, inputs, outputs, stream);
  }
};

// q int8 [..., cols], scale fp32 [..., 1] -> out fp32 or fp16 (field out_fp16) [..., cols]
struct DequantizeKind {
  using Attrs = DequantizeAttrs;
  static constexpr char const* kName = kDequantizeName;
  static constexpr std::int32_t kMinIn = 2;
  static constexpr std::int32_t kMaxIn = 2;
  static constexpr std::int32_t kOutputs = 1;
  static nvinfer1::PluginFieldCollection const* fields() noexcept { return dequantize_field_names(); }
  static bool supports(Attrs const& a, std::int32_t pos, nvinfer1::PluginTensorDesc const* inOut,
                       std::int32_t /*nbIn*/) noexcept {
    return dequantize_supports(a, pos, inOut);
  }
  static std::int32_t serial_fields(Attrs& a, nvinfer1::PluginField* out) noexcept {
    out[0] = nvinfer1::PluginField("out_fp16", &a.out_fp16, nvinfer1::PluginFieldType::kINT32, 1);
    return 1;
  }
  static bool output_dims(nvinfer1::DimsExprs const* in, std::int32_t /*nbIn*/, nvinfer1::DimsExprs* out,
                          nvinfer1::IExprBuilder& /*b*/) noexcept {
    if (in[0].nbDims < 2) return false;
    out[0] = in[0];
    return true;
  }
  static nvinfer1::DataType output_type(Attrs const& a, std::int32_t /*index*/,
                                        nvinfer1::DataType const* /*in*/) noexcept {
    return a.out_fp16 != 0 ? nvinfer1::DataType::kHALF : nvinfer1::DataType::kFLOAT;
  }
  static std::int32_t enqueue(Attrs const& a, nvinfer1::PluginTensorDesc const* in, std::int32_t /*nbIn*/,
                              void const* const* inputs, void* const* outputs, cudaStream_t stream) noexcept {
    return dequantize_enqueue(a, in, inputs, outputs, stream);
  }
};

using EdgevlQuantizeRowsCreatorV2 = CreatorV2<QuantizeKind>;
using EdgevlLayerNormQuantizeCreatorV2 = CreatorV2<LayerNormQuantizeKind>;
using EdgevlDequantizeRowsCreatorV2 = CreatorV2<DequantizeKind>;
extern template class PluginV2<QuantizeKind>;
extern template class PluginV2<LayerNormQuantizeKind>;
extern template class PluginV2<DequantizeKind>;
extern template class CreatorV2<QuantizeKind>;
extern template class CreatorV2<LayerNormQuantizeKind>;
extern template class CreatorV2<DequantizeKind>;
#if EDGEVL_TRT_V3
using EdgevlQuantizeRowsCreatorV3 = CreatorV3<QuantizeKind>;
using EdgevlLayerNormQuantizeCreatorV3 = CreatorV3<LayerNormQuantizeKind>;
using EdgevlDequantizeRowsCreatorV3 = CreatorV3<DequantizeKind>;
extern template class PluginV3<QuantizeKind>;
extern template class PluginV3<LayerNormQuantizeKind>;
extern template class PluginV3<DequantizeKind>;
extern template class CreatorV3<QuantizeKind>;
extern template class CreatorV3<LayerNormQuantizeKind>;
extern template class CreatorV3<DequantizeKind>;
#endif

}  // namespace edgevl
