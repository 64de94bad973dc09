// Which TensorRT plugin API a build compiles, from the headers' version (NvInferVersion.h):
//   - EDGEVL_TRT_API: major * 100 + minor of the TensorRT headers (805 for 8.5, 1003 for 10.3).
//     compile_check.py sets it lower (-DEDGEVL_TRT_API=805) to compile, against the 10.3 headers, the
//     exact source set a TensorRT 8.5 / 8.6 build compiles; it can never be above the headers' version.
//   - EDGEVL_TRT_V3: the IPluginV3 flavour, IPluginCreatorInterface and getCreators (TensorRT >= 10).
//   - EDGEVL_TRT_LOGGER_FINDER: nvinfer1::ILoggerFinder and the setLoggerFinder entry point (>= 8.6).
//   - EDGEVL_TRT_INT64_FIELDS: PluginFieldType::kINT64 (>= 10).
// The flavours register distinct versions (TensorRT's own convention for plugins that have both,
// e.g. its ScatterElements and ROIAlign: the IPluginV2 flavour keeps "1", the IPluginV3 one is "2"),
// so one library registers both under TensorRT 10 and an engine or ONNX node names the one it means.
#pragma once

#include "NvInferVersion.h"

#define EDGEVL_TRT_HEADERS_API (NV_TENSORRT_MAJOR * 100 + NV_TENSORRT_MINOR)
#ifndef EDGEVL_TRT_API
#define EDGEVL_TRT_API EDGEVL_TRT_HEADERS_API
#endif
static_assert(EDGEVL_TRT_API <= EDGEVL_TRT_HEADERS_API, "EDGEVL_TRT_API is above the TensorRT headers' version");
static_assert(EDGEVL_TRT_API >= 805, "the plugins need TensorRT >= 8.5 (IPluginV2DynamicExt)");

#define EDGEVL_TRT_V3 (EDGEVL_TRT_API >= 1000)
#define EDGEVL_TRT_LOGGER_FINDER (EDGEVL_TRT_API >= 806)
#define EDGEVL_TRT_INT64_FIELDS (EDGEVL_TRT_API >= 1000)

namespace edgevl {

// the version each flavour's creators and plugins report; the ONNX export names kVersionV2
// (export/trt/rewrite.py PLUGIN_VERSION), which every TensorRT from 8.5 on has
constexpr char const* kVersionV2 = "1";  // IPluginV2DynamicExt + IPluginCreator
constexpr char const* kVersionV3 = "2";  // IPluginV3 (V3One core/build/runtime) + IPluginCreatorV3One
constexpr char const* kPluginNamespace = "";  // the IPluginV3 creators' namespace (V2 ones take TensorRT's)

}  // namespace edgevl
