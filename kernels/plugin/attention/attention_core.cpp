#include "attention/attention_core.h"

#include <cmath>

namespace edgevl {

namespace {
nvinfer1::PluginField g_fields[2] = {
    nvinfer1::PluginField("scale", nullptr, nvinfer1::PluginFieldType::kFLOAT32, 1),
    nvinfer1::PluginField("causal", nullptr, nvinfer1::PluginFieldType::kINT32, 1),
};
nvinfer1::PluginFieldCollection g_collection{2, g_fields};
nvinfer1::PluginField g_int8_fields[5] = {
    nvinfer1::PluginField("scale", nullptr, nvinfer1::PluginFieldType::kFLOAT32, 1),
    nvinfer1::PluginField("causal", nullptr, nvinfer1::PluginFieldType::kINT32, 1),
    nvinfer1::PluginField("q_scale", nullptr, nvinfer1::PluginFieldType::kFLOAT32, 1),
    nvinfer1::PluginField("k_scale", nullptr, nvinfer1::PluginFieldType::kFLOAT32, 1),
    nvinfer1::PluginField("v_scale", nullptr, nvinfer1::PluginFieldType::kFLOAT32, 1),
};
nvinfer1::PluginFieldCollection g_int8_collection{5, g_int8_fields};
}  // namespace

bool parse_fields(nvinfer1::PluginFieldCollection const* fc, AttentionAttrs& out) noexcept {
  AttentionAttrs a{};
  if (fc != nullptr) {
    for (std::int32_t i = 0; i < fc->nbFields; ++i) {
      nvinfer1::PluginField const& f = fc->fields[i];
      if (f.name == nullptr) continue;
      if (std::strcmp(f.name, "scale") == 0) {
        if (!read_float(f, a.scale)) {
          log_error("EdgevlAttention(Int8): field 'scale' must be a float");
          return false;
        }
      } else if (std::strcmp(f.name, "causal") == 0) {
        if (!read_int(f, a.causal)) {
          log_error("EdgevlAttention(Int8): field 'causal' must be an integer");
          return false;
        }
      }
    }
  }
  if (!a.valid()) {
    log_error("EdgevlAttention(Int8): scale must be >= 0 and causal 0 or 1");
    return false;
  }
  out = a;
  return true;
}

bool parse_fields(nvinfer1::PluginFieldCollection const* fc, Int8AttentionAttrs& out) noexcept {
  Int8AttentionAttrs a{};
  if (!parse_fields(fc, a.base)) return false;
  if (fc != nullptr) {
    for (std::int32_t i = 0; i < fc->nbFields; ++i) {
      nvinfer1::PluginField const& f = fc->fields[i];
      if (f.name == nullptr) continue;
      float* dst = std::strcmp(f.name, "q_scale") == 0   ? &a.q_scale
                   : std::strcmp(f.name, "k_scale") == 0 ? &a.k_scale
                   : std::strcmp(f.name, "v_scale") == 0 ? &a.v_scale
                                                         : nullptr;
      if (dst != nullptr && !read_float(f, *dst)) {
        log_error("EdgevlAttentionInt8: fields 'q_scale', 'k_scale', 'v_scale' must be floats");
        return false;
      }
    }
  }
  if (!a.valid()) {
    log_error("EdgevlAttentionInt8 needs q_scale, k_scale and v_scale, each finite and > 0");
    return false;
  }
  out = a;
  return true;
}

nvinfer1::PluginFieldCollection const* attention_field_names() noexcept { return &g_collection; }
nvinfer1::PluginFieldCollection const* attention_int8_field_names() noexcept { return &g_int8_collection; }

bool attention_shape_ok(std::int32_t nbInputs) noexcept { return nbInputs >= kMinInputs && nbInputs <= kMaxInputs; }

nvinfer1::DimsExprs attention_output_dims(nvinfer1::DimsExprs const* inputs) noexcept { return inputs[0]; }

bool attention_supports(std::int32_t pos, nvinfer1::PluginTensorDesc const* inOut, std::int32_t nbInputs) noexcept {
  nvinfer1::PluginTensorDesc const& d = inOut[pos];
  if (d.format != nvinfer1::TensorFormat::kLINEAR || d.dims.nbDims != 4) return false;
  if (pos == 3 && nbInputs == 4) return d.type == nvinfer1::DataType::kFLOAT;  // bias
  return d.type == nvinfer1::DataType::kHALF;  // q, k, v, out
}

bool attention_int8_supports(std::int32_t pos, nvinfer1::PluginTensorDesc const* inOut,
                             std::int32_t nbInputs) noexcept {
  nvinfer1::PluginTensorDesc const& d = inOut[pos];
  if (d.format != nvinfer1::TensorFormat::kLINEAR || d.dims.nbDims != 4) return false;
  if (pos == 3 && nbInputs == 4) return d.type == nvinfer1::DataType::kFLOAT;  // bias
  if (pos == nbInputs) return d.type == nvinfer1::DataType::kHALF;             // out
  return d.type == nvinfer1::DataType::kINT8;                                  // q, k, v
}

namespace {
// evk_attention_params from the tensor descriptors (q/k/v/out dense [batch, heads, seq, head_dim]);
// false when the bias does not match seq_k
bool fill_params(AttentionAttrs const& attrs, nvinfer1::PluginTensorDesc const* inputDesc, std::int32_t nbInputs,
                 void const* const* inputs, void* const* outputs, evk_attention_params& p) noexcept {
  nvinfer1::Dims const& q = inputDesc[0].dims;
  nvinfer1::Dims const& k = inputDesc[1].dims;
  p.q = inputs[0];
  p.k = inputs[1];
  p.v = inputs[2];
  p.out = outputs[0];
  p.batch = static_cast<std::int32_t>(q.d[0]);
  p.heads = static_cast<std::int32_t>(q.d[1]);
  p.seq_q = static_cast<std::int32_t>(q.d[2]);
  p.seq_k = static_cast<std::int32_t>(k.d[2]);
  p.head_dim = static_cast<std::int32_t>(q.d[3]);
  auto strides = [](nvinfer1::Dims const& d, std::int64_t* s) {
    s[2] = d.d[3];
    s[1] = d.d[2] * d.d[3];
    s[0] = d.d[1] * s[1];
  };
  strides(q, p.q_stride);
  strides(k, p.k_stride);
  strides(inputDesc[2].dims, p.v_stride);
  strides(q, p.o_stride);
  p.scale = attrs.scale > 0.F ? attrs.scale : 1.F / std::sqrt(static_cast<float>(p.head_dim));
  p.causal = attrs.causal;
  if (nbInputs == 4) {
    nvinfer1::Dims const& b = inputDesc[3].dims;
    if (b.d[3] != p.seq_k) return false;
    p.bias = static_cast<float const*>(inputs[3]);
    p.bias_stride[2] = b.d[2] == 1 ? 0 : b.d[3];
    p.bias_stride[1] = b.d[1] == 1 ? 0 : b.d[2] * b.d[3];
    p.bias_stride[0] = b.d[0] == 1 ? 0 : b.d[1] * b.d[2] * b.d[3];
  }
  return true;
}
}  // namespace

std::int32_t attention_enqueue(AttentionAttrs const& attrs, nvinfer1::PluginTensorDesc const* inputDesc,
                               std::int32_t nbInputs, void const* const* inputs, void* const* outputs,
                               cudaStream_t stream) noexcept {
  evk_attention_params p{};
  if (!fill_params(attrs, inputDesc, nbInputs, inputs, outputs, p)) return EVK_ERR_SHAPE;
  const int st = evk_attention_fp16(&p, stream);
  if (st != EVK_OK) {
    log_error(kAttentionName, "enqueue", "kernel launch failed (unsupported head_dim / sequence length or CUDA error)");
  }
  return st;
}

std::int32_t attention_enqueue(Int8AttentionAttrs const& attrs, nvinfer1::PluginTensorDesc const* inputDesc,
                               std::int32_t nbInputs, void const* const* inputs, void* const* outputs,
                               cudaStream_t stream) noexcept {
  evk_attention_params p{};
  if (!fill_params(attrs.base, inputDesc, nbInputs, inputs, outputs, p)) return EVK_ERR_SHAPE;
  p.q_scale = attrs.q_scale;
  p.k_scale = attrs.k_scale;
  p.v_scale = attrs.v_scale;
  const int st = evk_attention_int8(&p, stream);
  if (st != EVK_OK) {
    log_error(kAttentionInt8Name, "enqueue",
              "kernel launch failed (unsupported head_dim / sequence length or CUDA error)");
  }
  return st;
}

}  // namespace edgevl
