// Both flavours of the per-row plugins, explicitly instantiated (a missing override fails every
// build) and registered statically (ctypes.CDLL(..., RTLD_GLOBAL), trtexec --staticPlugins).
#include "rowops/row_ops_plugin.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // IPluginV2DynamicExt / IPluginCreator in 10.x
#endif

namespace edgevl {

template class PluginV2<QuantizeKind>;
template class PluginV2<LayerNormQuantizeKind>;
template class PluginV2<DequantizeKind>;
template class CreatorV2<QuantizeKind>;
template class CreatorV2<LayerNormQuantizeKind>;
template class CreatorV2<DequantizeKind>;
REGISTER_TENSORRT_PLUGIN(EdgevlQuantizeRowsCreatorV2);
REGISTER_TENSORRT_PLUGIN(EdgevlLayerNormQuantizeCreatorV2);
REGISTER_TENSORRT_PLUGIN(EdgevlDequantizeRowsCreatorV2);
#if EDGEVL_TRT_V3
template class PluginV3<QuantizeKind>;
template class PluginV3<LayerNormQuantizeKind>;
template class PluginV3<DequantizeKind>;
template class CreatorV3<QuantizeKind>;
template class CreatorV3<LayerNormQuantizeKind>;
template class CreatorV3<DequantizeKind>;
REGISTER_TENSORRT_PLUGIN(EdgevlQuantizeRowsCreatorV3);
REGISTER_TENSORRT_PLUGIN(EdgevlLayerNormQuantizeCreatorV3);
REGISTER_TENSORRT_PLUGIN(EdgevlDequantizeRowsCreatorV3);
#endif

}  // namespace edgevl

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
