// Every class of both flavours of both attention plugins is explicitly instantiated here, so a
// missing override fails every build, and the creators are registered statically for a library
// loaded with ctypes.CDLL(..., RTLD_GLOBAL) or trtexec --staticPlugins (getPluginRegistry).
#include "attention/attention_plugin.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // IPluginV2DynamicExt / IPluginCreator in 10.x
#endif

namespace edgevl {

template class PluginV2<Fp16Kind>;
template class PluginV2<Int8Kind>;
template class CreatorV2<Fp16Kind>;
template class CreatorV2<Int8Kind>;
REGISTER_TENSORRT_PLUGIN(EdgevlAttentionCreatorV2);
REGISTER_TENSORRT_PLUGIN(EdgevlAttentionInt8CreatorV2);
#if EDGEVL_TRT_V3
template class PluginV3<Fp16Kind>;
template class PluginV3<Int8Kind>;
template class CreatorV3<Fp16Kind>;
template class CreatorV3<Int8Kind>;
REGISTER_TENSORRT_PLUGIN(EdgevlAttentionCreatorV3);
REGISTER_TENSORRT_PLUGIN(EdgevlAttentionInt8CreatorV3);
#endif

}  // namespace edgevl

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
