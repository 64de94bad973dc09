#include "common/fields.h"

#include <cstring>

namespace edgevl {

bool read_float(nvinfer1::PluginField const& f, float& out) noexcept {
  if (f.data == nullptr || f.length < 1) return false;
  if (f.type == nvinfer1::PluginFieldType::kFLOAT32) {
    std::memcpy(&out, f.data, sizeof(float));
    return true;
  }
  if (f.type == nvinfer1::PluginFieldType::kFLOAT64) {
    double d = 0;
    std::memcpy(&d, f.data, sizeof(double));
    out = static_cast<float>(d);
    return true;
  }
  return false;
}

bool read_int(nvinfer1::PluginField const& f, std::int32_t& out) noexcept {
  if (f.data == nullptr || f.length < 1) return false;
  switch (f.type) {
    case nvinfer1::PluginFieldType::kINT32: std::memcpy(&out, f.data, sizeof(std::int32_t)); return true;
#if EDGEVL_TRT_INT64_FIELDS
    case nvinfer1::PluginFieldType::kINT64: {
      std::int64_t v = 0;
      std::memcpy(&v, f.data, sizeof(v));
      if (v < INT32_MIN || v > INT32_MAX) return false;
      out = static_cast<std::int32_t>(v);
      return true;
    }
#endif
    case nvinfer1::PluginFieldType::kINT8: out = *static_cast<std::int8_t const*>(f.data); return true;
    default: return false;
  }
}

bool find_int(nvinfer1::PluginFieldCollection const* fc, char const* name, std::int32_t& out) noexcept {
  for (std::int32_t i = 0; fc != nullptr && fc->fields != nullptr && i < fc->nbFields; ++i) {
    nvinfer1::PluginField const& f = fc->fields[i];
    if (f.name != nullptr && std::strcmp(f.name, name) == 0) return read_int(f, out);
  }
  return false;
}

}  // namespace edgevl
