// A plugin "Kind": the per-plugin pieces that the two flavour templates (common/plugin_v2.h,
// common/plugin_v3.h) are instantiated over, so every plugin has one implementation in both flavours.
// A Kind gives:
//   Attrs                         the attributes (parse_fields, serialize, deserialize, kSerialSize)
//   kName                         the plugin (op type) name
//   kMinIn, kMaxIn, kOutputs      the input / output counts
//   fields()                      the field list the creators advertise
//   serial_fields(attrs, out)     the IPluginV3 serialised fields (parsed back by parse_fields)
//   supports(attrs, pos, inOut, nbInputs), output_dims(in, nbIn, out, exprBuilder),
//   output_type(attrs, index, inTypes), enqueue(attrs, inDesc, nbIn, inputs, outputs, stream)
// all noexcept. The Kinds live with their plugin family (attention/, rowops/).
#pragma once

#include <cstdint>

namespace edgevl {

constexpr std::int32_t kMaxSerialFields = 6;  // the widest Kind's fields (EdgevlAttentionInt8: 5) + num_inputs
constexpr std::int32_t kMaxIO = 8;            // inputs + outputs of any Kind

template <class Kind>
bool io_ok(std::int32_t nbInputs, std::int32_t nbOutputs) noexcept {
  return nbInputs >= Kind::kMinIn && nbInputs <= Kind::kMaxIn && nbOutputs == Kind::kOutputs;
}

}  // namespace edgevl
