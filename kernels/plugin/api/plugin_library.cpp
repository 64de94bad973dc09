// The entry points of libedgevl_trt_plugin.so, one library for every TensorRT from 8.5 on:
//   getCreators        (TensorRT >= 10: IPluginRegistry::loadLibrary, trtexec --dynamicPlugins) lists
//                      every creator of both flavours: IPluginV2DynamicExt "1" and IPluginV3 "2";
//   getPluginCreators  (the IPluginCreator loaders of 8.x) lists the IPluginV2DynamicExt ones;
//   setLoggerFinder    (TensorRT >= 8.6) hands the library TensorRT's logger (common/logging.h).
// The families (attention/, rowops/) register their creators statically as well, for a library
// loaded with ctypes.CDLL(..., RTLD_GLOBAL) or trtexec --staticPlugins.
#include "attention/attention_plugin.h"
#include "common/logging.h"
#include "common/trt_api.h"
#include "rowops/row_ops_plugin.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // IPluginCreator is deprecated in 10.x
#endif

#define EVK_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

constexpr int32_t kNbPlugins = 5;

edgevl::EdgevlAttentionCreatorV2 g_attention_v2;
edgevl::EdgevlAttentionInt8CreatorV2 g_attention_int8_v2;
edgevl::EdgevlQuantizeRowsCreatorV2 g_quantize_v2;
edgevl::EdgevlLayerNormQuantizeCreatorV2 g_layernorm_quantize_v2;
edgevl::EdgevlDequantizeRowsCreatorV2 g_dequantize_v2;
nvinfer1::IPluginCreator* g_v2_creators[kNbPlugins] = {&g_attention_v2, &g_attention_int8_v2, &g_quantize_v2,
                                                       &g_layernorm_quantize_v2, &g_dequantize_v2};

#if EDGEVL_TRT_V3
edgevl::EdgevlAttentionCreatorV3 g_attention_v3;
edgevl::EdgevlAttentionInt8CreatorV3 g_attention_int8_v3;
edgevl::EdgevlQuantizeRowsCreatorV3 g_quantize_v3;
edgevl::EdgevlLayerNormQuantizeCreatorV3 g_layernorm_quantize_v3;
edgevl::EdgevlDequantizeRowsCreatorV3 g_dequantize_v3;
// both flavours of each plugin, side by side: the registry keys them by (name, version, namespace)
nvinfer1::IPluginCreatorInterface* g_all_creators[2 * kNbPlugins] = {
    &g_attention_v2,          &g_attention_v3,          &g_attention_int8_v2, &g_attention_int8_v3,
    &g_quantize_v2,           &g_quantize_v3,           &g_layernorm_quantize_v2,
    &g_layernorm_quantize_v3, &g_dequantize_v2,         &g_dequantize_v3};
#endif

}  // namespace

#if EDGEVL_TRT_LOGGER_FINDER
EVK_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder) { edgevl::set_logger_finder(finder); }
#endif

#if EDGEVL_TRT_V3
EVK_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
  nbCreators = 2 * kNbPlugins;
  return g_all_creators;
}
#endif

EVK_EXPORT nvinfer1::IPluginCreator* const* getPluginCreators(int32_t& nbCreators) {
  nbCreators = kNbPlugins;
  return g_v2_creators;
}

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
