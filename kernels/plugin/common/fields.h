// Reading TensorRT plugin fields (PluginField) without trusting their types: the ONNX parser hands
// ONNX float attributes as float32 (or float64), integers as int32 (int64 or int8 from other
// producers), and a field of another type is refused rather than reinterpreted.
#pragma once

#include <cstdint>

#include "NvInferRuntime.h"
#include "common/trt_api.h"

namespace edgevl {

// A float field (float32 or float64); false otherwise (no data, length < 1, another type).
bool read_float(nvinfer1::PluginField const& f, float& out) noexcept;
// An integer field (int32, int8, and int64 where TensorRT has it); false otherwise.
bool read_int(nvinfer1::PluginField const& f, std::int32_t& out) noexcept;
// The integer field `name` of fc; false when fc has none or it is not an integer.
bool find_int(nvinfer1::PluginFieldCollection const* fc, char const* name, std::int32_t& out) noexcept;

}  // namespace edgevl
