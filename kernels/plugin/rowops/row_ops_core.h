// The per-row int8 plugins over the C ABI: EdgevlQuantizeRows, EdgevlLayerNormQuantize,
// EdgevlDequantizeRows. A "row" is the last axis of a rank >= 2 tensor [..., cols]; rows = the
// product of the leading axes. The scale tensor is fp32 [..., 1] (one scale per row).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "NvInferRuntime.h"
#include "common/fields.h"
#include "common/logging.h"
#include "edgevl_kernels.h"

namespace edgevl {

constexpr char const* kQuantizeName = "EdgevlQuantizeRows";          // x -> (q int8, scale fp32)
constexpr char const* kLayerNormQuantizeName = "EdgevlLayerNormQuantize";  // x, gamma, beta -> (q, scale)
constexpr char const* kDequantizeName = "EdgevlDequantizeRows";      // q, scale -> out fp32 | fp16

// Serialised as a 4-byte tag plus the POD fields; deserialize() refuses other tags and lengths.
struct QuantizeAttrs {
  static constexpr std::size_t kSerialSize = sizeof(std::uint32_t);
  static constexpr std::uint32_t kMagic = 0x45565131U;  // "EVQ1"
  void serialize(void* buffer) const noexcept { std::memcpy(buffer, &kMagic, sizeof(kMagic)); }
  bool deserialize(void const* data, std::size_t length) noexcept;
  bool valid() const noexcept { return true; }
};

struct LayerNormQuantizeAttrs {
  float eps{1e-5F};  // finite, > 0
  static constexpr std::size_t kSerialSize = sizeof(std::uint32_t) + sizeof(float);
  static constexpr std::uint32_t kMagic = 0x45564C31U;  // "EVL1"
  void serialize(void* buffer) const noexcept;
  bool deserialize(void const* data, std::size_t length) noexcept;
  bool valid() const noexcept { return eps > 0.F && eps < 3.0e38F; }
};

struct DequantizeAttrs {
  std::int32_t out_fp16{0};  // 0: fp32 output, 1: fp16 output
  static constexpr std::size_t kSerialSize = sizeof(std::uint32_t) + sizeof(std::int32_t);
  static constexpr std::uint32_t kMagic = 0x45564431U;  // "EVD1"
  void serialize(void* buffer) const noexcept;
  bool deserialize(void const* data, std::size_t length) noexcept;
  bool valid() const noexcept { return out_fp16 == 0 || out_fp16 == 1; }
};

// Field parsing: EdgevlQuantizeRows has none; "eps" (float32/float64); "out_fp16" (int32/int64/int8).
// Unknown fields are ignored; false on a malformed or invalid known field.
bool parse_fields(nvinfer1::PluginFieldCollection const* fc, QuantizeAttrs& out) noexcept;
bool parse_fields(nvinfer1::PluginFieldCollection const* fc, LayerNormQuantizeAttrs& out) noexcept;
bool parse_fields(nvinfer1::PluginFieldCollection const* fc, DequantizeAttrs& out) noexcept;
nvinfer1::PluginFieldCollection const* quantize_field_names() noexcept;
nvinfer1::PluginFieldCollection const* layernorm_quantize_field_names() noexcept;
nvinfer1::PluginFieldCollection const* dequantize_field_names() noexcept;

// Type/format rules for position `pos` of (inputs..., outputs...), all linear:
//   quantise:   x fp16|fp32 rank>=2 -> q int8 (x's shape), scale fp32 (same rank)
//   LN+quant:   x fp16|fp32 rank>=2, gamma fp32 rank 1, beta fp32 rank 1 -> q int8, scale fp32
//   dequantise: q int8 rank>=2, scale fp32 (same rank) -> out fp32 (out_fp16 = 0) or fp16
bool quantize_supports(std::int32_t pos, nvinfer1::PluginTensorDesc const* inOut) noexcept;
bool layernorm_quantize_supports(std::int32_t pos, nvinfer1::PluginTensorDesc const* inOut) noexcept;
bool dequantize_supports(DequantizeAttrs const& attrs, std::int32_t pos, nvinfer1::PluginTensorDesc const* inOut) noexcept;

// q = x's dims; scale = x's dims with the last axis 1. false below rank 2.
bool row_quantize_output_dims(nvinfer1::DimsExprs const& x, nvinfer1::DimsExprs* outputs,
                              nvinfer1::IExprBuilder& exprBuilder) noexcept;

// rows (product of the leading axes) and cols (last axis) of a rank >= 2 tensor; false otherwise
bool rows_cols(nvinfer1::Dims const& d, std::int32_t& rows, std::int32_t& cols) noexcept;

std::int32_t quantize_enqueue(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs,
                              void* const* outputs, cudaStream_t stream) noexcept;
std::int32_t layernorm_quantize_enqueue(LayerNormQuantizeAttrs const& attrs, nvinfer1::PluginTensorDesc const* inputDesc,
                                        void const* const* inputs, void* const* outputs, cudaStream_t stream) noexcept;
std::int32_t dequantize_enqueue(DequantizeAttrs const& attrs, nvinfer1::PluginTensorDesc const* inputDesc,
                                void const* const* inputs, void* const* outputs, cudaStream_t stream) noexcept;

}  // namespace edgevl
