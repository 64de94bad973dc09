#include "rowops/row_ops_core.h"

namespace edgevl {

namespace {
nvinfer1::PluginFieldCollection g_no_fields{0, nullptr};
nvinfer1::PluginField g_eps_field[1] = {nvinfer1::PluginField("eps", nullptr, nvinfer1::PluginFieldType::kFLOAT32, 1)};
nvinfer1::PluginFieldCollection g_eps_collection{1, g_eps_field};
nvinfer1::PluginField g_out_field[1] = {
    nvinfer1::PluginField("out_fp16", nullptr, nvinfer1::PluginFieldType::kINT32, 1)};
nvinfer1::PluginFieldCollection g_out_collection{1, g_out_field};

bool tag_ok(void const* data, std::size_t length, std::size_t want, std::uint32_t magic) noexcept {
  if (data == nullptr || length != want) return false;
  std::uint32_t m = 0;
  std::memcpy(&m, data, sizeof(m));
  return m == magic;
}

bool linear(nvinfer1::PluginTensorDesc const& d) noexcept { return d.format == nvinfer1::TensorFormat::kLINEAR; }
}  // namespace

bool QuantizeAttrs::deserialize(void const* data, std::size_t length) noexcept {
  return tag_ok(data, length, kSerialSize, kMagic);
}

void LayerNormQuantizeAttrs::serialize(void* buffer) const noexcept {
  auto* p = static_cast<char*>(buffer);
  std::memcpy(p, &kMagic, sizeof(kMagic));
  std::memcpy(p + 4, &eps, sizeof(eps));
}
bool LayerNormQuantizeAttrs::deserialize(void const* data, std::size_t length) noexcept {
  if (!tag_ok(data, length, kSerialSize, kMagic)) return false;
  std::memcpy(&eps, static_cast<char const*>(data) + 4, sizeof(eps));
  return valid();
}

void DequantizeAttrs::serialize(void* buffer) const noexcept {
  auto* p = static_cast<char*>(buffer);
  std::memcpy(p, &kMagic, sizeof(kMagic));
  std::memcpy(p + 4, &out_fp16, sizeof(out_fp16));
}
bool DequantizeAttrs::deserialize(void const* data, std::size_t length) noexcept {
  if (!tag_ok(data, length, kSerialSize, kMagic)) return false;
  std::memcpy(&out_fp16, static_cast<char const*>(data) + 4, sizeof(out_fp16));
  return valid();
}

bool parse_fields(nvinfer1::PluginFieldCollection const* /*fc*/, QuantizeAttrs& out) noexcept {
  out = QuantizeAttrs{};
  return true;
}

bool parse_fields(nvinfer1::PluginFieldCollection const* fc, LayerNormQuantizeAttrs& out) noexcept {
  LayerNormQuantizeAttrs a{};
  for (std::int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i) {
    nvinfer1::PluginField const& f = fc->fields[i];
    if (f.name != nullptr && std::strcmp(f.name, "eps") == 0 && !read_float(f, a.eps)) {
      log_error("EdgevlLayerNormQuantize: field 'eps' must be a float");
      return false;
    }
  }
  if (!a.valid()) {
    log_error("EdgevlLayerNormQuantize: eps must be finite and > 0");
    return false;
  }
  out = a;
  return true;
}

bool parse_fields(nvinfer1::PluginFieldCollection const* fc, DequantizeAttrs& out) noexcept {
  DequantizeAttrs a{};
  for (std::int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i) {
    nvinfer1::PluginField const& f = fc->fields[i];
    if (f.name != nullptr && std::strcmp(f.name, "out_fp16") == 0 && !read_int(f, a.out_fp16)) {
      log_error("EdgevlDequantizeRows: field 'out_fp16' must be an integer");
      return false;
    }
  }
  if (!a.valid()) {
    log_error("EdgevlDequantizeRows: out_fp16 must be 0 or 1");
    return false;
  }
  out = a;
  return true;
}

nvinfer1::PluginFieldCollection const* quantize_field_names() noexcept { return &g_no_fields; }
nvinfer1::PluginFieldCollection const* layernorm_quantize_field_names() noexcept { return &g_eps_collection; }
nvinfer1::PluginFieldCollection const* dequantize_field_names() noexcept { return &g_out_collection; }

namespace {
// x (pos 0) fp16|fp32 rank>=2; q (int8, x's rank) and scale (fp32, x's rank) at q_pos, q_pos + 1
bool quantized_outputs(std::int32_t pos, std::int32_t q_pos, nvinfer1::PluginTensorDesc const* inOut) noexcept {
  nvinfer1::PluginTensorDesc const& d = inOut[pos];
  if (!linear(d)) return false;
  if (pos == 0) {
    return d.dims.nbDims >= 2 && (d.type == nvinfer1::DataType::kHALF || d.type == nvinfer1::DataType::kFLOAT);
  }
  if (pos == q_pos) return d.type == nvinfer1::DataType::kINT8 && d.dims.nbDims == inOut[0].dims.nbDims;
  if (pos == q_pos + 1) return d.type == nvinfer1::DataType::kFLOAT && d.dims.nbDims == inOut[0].dims.nbDims;
  return false;
}
}  // namespace

bool quantize_supports(std::int32_t pos, nvinfer1::PluginTensorDesc const* inOut) noexcept {
  return pos >= 0 && pos <= 2 && quantized_outputs(pos, 1, inOut);
}

bool layernorm_quantize_supports(std::int32_t pos, nvinfer1::PluginTensorDesc const* inOut) noexcept {
  if (pos == 1 || pos == 2) {  // gamma, beta
    nvinfer1::PluginTensorDesc const& d = inOut[pos];
    return linear(d) && d.type == nvinfer1::DataType::kFLOAT && d.dims.nbDims == 1;
  }
  return pos >= 0 && pos <= 4 && quantized_outputs(pos, 3, inOut);
}

bool dequantize_supports(DequantizeAttrs const& attrs, std::int32_t pos, nvinfer1::PluginTensorDesc const* inOut) noexcept {
  if (pos < 0 || pos > 2 || !linear(inOut[pos])) return false;
  nvinfer1::PluginTensorDesc const& d = inOut[pos];
  switch (pos) {
    case 0: return d.type == nvinfer1::DataType::kINT8 && d.dims.nbDims >= 2;
    case 1: return d.type == nvinfer1::DataType::kFLOAT && d.dims.nbDims == inOut[0].dims.nbDims;
    default:
      return d.type == (attrs.out_fp16 != 0 ? nvinfer1::DataType::kHALF : nvinfer1::DataType::kFLOAT) &&
             d.dims.nbDims == inOut[0].dims.nbDims;
  }
}

bool row_quantize_output_dims(nvinfer1::DimsExprs const& x, nvinfer1::DimsExprs* outputs,
                              nvinfer1::IExprBuilder& exprBuilder) noexcept {
  if (x.nbDims < 2) return false;
  outputs[0] = x;
  outputs[1] = x;
  outputs[1].d[x.nbDims - 1] = exprBuilder.constant(1);
  return true;
}

bool rows_cols(nvinfer1::Dims const& d, std::int32_t& rows, std::int32_t& cols) noexcept {
  if (d.nbDims < 2) return false;
  std::int64_t r = 1;
  for (std::int32_t i = 0; i + 1 < d.nbDims; ++i) r *= d.d[i];
  if (r > INT32_MAX || d.d[d.nbDims - 1] > INT32_MAX) return false;
  rows = static_cast<std::int32_t>(r);
  cols = static_cast<std::int32_t>(d.d[d.nbDims - 1]);
  return true;
}

std::int32_t quantize_enqueue(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs,
                              void* const* outputs, cudaStream_t stream) noexcept {
  std::int32_t rows = 0, cols = 0;
  if (!rows_cols(inputDesc[0].dims, rows, cols)) return EVK_ERR_SHAPE;
  auto* q = static_cast<std::int8_t*>(outputs[0]);
  auto* scale = static_cast<float*>(outputs[1]);
  const int st = inputDesc[0].type == nvinfer1::DataType::kHALF
                     ? evk_quantize_rows_f16(inputs[0], cols, rows, cols, q, cols, scale, stream)
                     : evk_quantize_rows_f32(static_cast<float const*>(inputs[0]), cols, rows, cols, q, cols, scale,
                                             stream);
  if (st != EVK_OK) log_error(kQuantizeName, "enqueue", "kernel launch failed");
  return st;
}

std::int32_t layernorm_quantize_enqueue(LayerNormQuantizeAttrs const& attrs, nvinfer1::PluginTensorDesc const* inputDesc,
                                        void const* const* inputs, void* const* outputs, cudaStream_t stream) noexcept {
  std::int32_t rows = 0, cols = 0;
  if (!rows_cols(inputDesc[0].dims, rows, cols) || inputDesc[1].dims.d[0] != cols || inputDesc[2].dims.d[0] != cols) {
    return EVK_ERR_SHAPE;
  }
  auto const* gamma = static_cast<float const*>(inputs[1]);
  auto const* beta = static_cast<float const*>(inputs[2]);
  auto* q = static_cast<std::int8_t*>(outputs[0]);
  auto* scale = static_cast<float*>(outputs[1]);
  const int st = inputDesc[0].type == nvinfer1::DataType::kHALF
                     ? evk_layernorm_quantize_f16(inputs[0], cols, rows, cols, gamma, beta, attrs.eps, q, cols, scale,
                                                  stream)
                     : evk_layernorm_quantize_f32(static_cast<float const*>(inputs[0]), cols, rows, cols, gamma, beta,
                                                  attrs.eps, q, cols, scale, stream);
  if (st != EVK_OK) log_error(kLayerNormQuantizeName, "enqueue", "kernel launch failed");
  return st;
}

std::int32_t dequantize_enqueue(DequantizeAttrs const& attrs, nvinfer1::PluginTensorDesc const* inputDesc,
                                void const* const* inputs, void* const* outputs, cudaStream_t stream) noexcept {
  std::int32_t rows = 0, cols = 0;
  if (!rows_cols(inputDesc[0].dims, rows, cols)) return EVK_ERR_SHAPE;
  auto const* q = static_cast<std::int8_t const*>(inputs[0]);
  auto const* scale = static_cast<float const*>(inputs[1]);
  const int st = attrs.out_fp16 != 0
                     ? evk_dequantize_rows_f16(q, cols, rows, cols, scale, outputs[0], cols, stream)
                     : evk_dequantize_rows_f32(q, cols, rows, cols, scale, static_cast<float*>(outputs[0]), cols, stream);
  if (st != EVK_OK) log_error(kDequantizeName, "enqueue", "kernel launch failed");
  return st;
}

}  // namespace edgevl
