// EdgevlAttention (fp16) and EdgevlAttentionInt8 (int8 q/k/v fed by Q/DQ scales, fp16 out) as
// TensorRT plugins, in both flavours over attention_core:
//   - IPluginV3 (IPluginV3OneCore/Build/Runtime) with IPluginCreatorV3One, for TensorRT >= 10;
//   - IPluginV2DynamicExt with IPluginCreator, for TensorRT 8.5/8.6 (JetPack 5.1 / 6.0).
// The classes are templates over a Kind (name, attributes, field list, type rule), so both plugins
// share one implementation. A build registers one creator per plugin, version "1": the V3 ones, or
// the V2 ones when built with EDGEVL_TRT_LEGACY_PLUGIN (CMake turns it on for TensorRT < 10). Both
// flavours are always compiled (explicitly instantiated), so a missing override fails every build.
// Entry points: getCreators (TensorRT 10 --dynamicPlugins / registry loadLibrary), getPluginCreators
// (V2 loaders), setLoggerFinder, and static registration through REGISTER_TENSORRT_PLUGIN for a
// ctypes.CDLL(..., RTLD_GLOBAL) load.
#include <cstdint>
#include <string>

#include "attention_core.h"
#include "row_ops_core.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // IPluginV2DynamicExt is deprecated in 10.x
#endif

#define EVK_EXPORT extern "C" __attribute__((visibility("default")))

using namespace nvinfer1;

namespace edgevl {

// The per-plugin pieces; everything else is shared. A Kind gives: Attrs (parse_fields, serialize,
// deserialize, kSerialSize), kName, kMinIn/kMaxIn/kOutputs, fields(), serial_fields(), supports(),
// output_dims(), output_type(), enqueue().
struct AttentionKindBase {
  static constexpr int32_t kMinIn = kMinInputs;
  static constexpr int32_t kMaxIn = kMaxInputs;
  static constexpr int32_t kOutputs = 1;
  static bool output_dims(DimsExprs const* in, int32_t /*nbIn*/, DimsExprs* out, IExprBuilder& /*b*/) noexcept {
    if (in[0].nbDims != 4) return false;
    out[0] = attention_output_dims(in);
    return true;
  }
  template <class A>
  static DataType output_type(A const& /*attrs*/, int32_t /*index*/, DataType const* /*in*/) noexcept {
    return DataType::kHALF;
  }
  template <class A>
  static int32_t enqueue(A const& attrs, PluginTensorDesc const* in, int32_t nbIn, void const* const* inputs,
                         void* const* outputs, cudaStream_t stream) noexcept {
    return attention_enqueue(attrs, in, nbIn, inputs, outputs, stream);
  }
};

struct Fp16Kind : AttentionKindBase {
  using Attrs = AttentionAttrs;
  static constexpr char const* kName = kAttentionName;
  static PluginFieldCollection const* fields() noexcept { return attention_field_names(); }
  static bool supports(Attrs const& /*a*/, int32_t pos, PluginTensorDesc const* inOut, int32_t nbInputs) noexcept {
    return attention_supports(pos, inOut, nbInputs);
  }
  // the serialised V3 fields (the creator parses them back with parse_fields)
  static int32_t serial_fields(Attrs& a, PluginField* out) noexcept {
    out[0] = PluginField("scale", &a.scale, PluginFieldType::kFLOAT32, 1);
    out[1] = PluginField("causal", &a.causal, PluginFieldType::kINT32, 1);
    return 2;
  }
};

struct Int8Kind : AttentionKindBase {
  using Attrs = Int8AttentionAttrs;
  static constexpr char const* kName = kAttentionInt8Name;
  static PluginFieldCollection const* fields() noexcept { return attention_int8_field_names(); }
  static bool supports(Attrs const& /*a*/, int32_t pos, PluginTensorDesc const* inOut, int32_t nbInputs) noexcept {
    return attention_int8_supports(pos, inOut, nbInputs);
  }
  static int32_t serial_fields(Attrs& a, PluginField* out) noexcept {
    int32_t n = Fp16Kind::serial_fields(a.base, out);
    out[n++] = PluginField("q_scale", &a.q_scale, PluginFieldType::kFLOAT32, 1);
    out[n++] = PluginField("k_scale", &a.k_scale, PluginFieldType::kFLOAT32, 1);
    out[n++] = PluginField("v_scale", &a.v_scale, PluginFieldType::kFLOAT32, 1);
    return n;
  }
};

// x [..., cols] -> (q int8 [..., cols], scale fp32 [..., 1])
struct QuantizeKind {
  using Attrs = QuantizeAttrs;
  static constexpr char const* kName = kQuantizeName;
  static constexpr int32_t kMinIn = 1;
  static constexpr int32_t kMaxIn = 1;
  static constexpr int32_t kOutputs = 2;
  static PluginFieldCollection const* fields() noexcept { return quantize_field_names(); }
  static bool supports(Attrs const& /*a*/, int32_t pos, PluginTensorDesc const* inOut, int32_t /*nbIn*/) noexcept {
    return quantize_supports(pos, inOut);
  }
  static int32_t serial_fields(Attrs& /*a*/, PluginField* /*out*/) noexcept { return 0; }
  static bool output_dims(DimsExprs const* in, int32_t /*nbIn*/, DimsExprs* out, IExprBuilder& b) noexcept {
    return row_quantize_output_dims(in[0], out, b);
  }
  static DataType output_type(Attrs const& /*a*/, int32_t index, DataType const* /*in*/) noexcept {
    return index == 0 ? DataType::kINT8 : DataType::kFLOAT;
  }
  static int32_t enqueue(Attrs const& /*a*/, PluginTensorDesc const* in, int32_t /*nbIn*/, void const* const* inputs,
                         void* const* outputs, cudaStream_t stream) noexcept {
    return quantize_enqueue(in, inputs, outputs, stream);
  }
};

// x [..., cols], gamma [cols], beta [cols] -> (q int8 [..., cols], scale fp32 [..., 1])
struct LayerNormQuantizeKind {
  using Attrs = LayerNormQuantizeAttrs;
  static constexpr char const* kName = kLayerNormQuantizeName;
  static constexpr int32_t kMinIn = 3;
  static constexpr int32_t kMaxIn = 3;
  static constexpr int32_t kOutputs = 2;
  static PluginFieldCollection const* fields() noexcept { return layernorm_quantize_field_names(); }
  static bool supports(Attrs const& /*a*/, int32_t pos, PluginTensorDesc const* inOut, int32_t /*nbIn*/) noexcept {
    return layernorm_quantize_supports(pos, inOut);
  }
  static int32_t serial_fields(Attrs& a, PluginField* out) noexcept {
    out[0] = PluginField("eps", &a.eps, PluginFieldType::kFLOAT32, 1);
    return 1;
  }
  static bool output_dims(DimsExprs const* in, int32_t /*nbIn*/, DimsExprs* out, IExprBuilder& b) noexcept {
    return row_quantize_output_dims(in[0], out, b);
  }
  static DataType output_type(Attrs const& /*a*/, int32_t index, DataType const* /*in*/) noexcept {
    return index == 0 ? DataType::kINT8 : DataType::kFLOAT;
  }
  static int32_t enqueue(Attrs const& a, PluginTensorDesc const* in, int32_t /*nbIn*/, void const* const* inputs,
                         void* const* outputs, cudaStream_t stream) noexcept {
    return layernorm_quantize_enqueue(a, in, inputs, outputs, stream);
  }
};

// q int8 [..., cols], scale fp32 [..., 1] -> out fp32 or fp16 (field out_fp16) [..., cols]
struct DequantizeKind {
  using Attrs = DequantizeAttrs;
  static constexpr char const* kName = kDequantizeName;
  static constexpr int32_t kMinIn = 2;
  static constexpr int32_t kMaxIn = 2;
  static constexpr int32_t kOutputs = 1;
  static PluginFieldCollection const* fields() noexcept { return dequantize_field_names(); }
  static bool supports(Attrs const& a, int32_t pos, PluginTensorDesc const* inOut, int32_t /*nbIn*/) noexcept {
    return dequantize_supports(a, pos, inOut);
  }
  static int32_t serial_fields(Attrs& a, PluginField* out) noexcept {
    out[0] = PluginField("out_fp16", &a.out_fp16, PluginFieldType::kINT32, 1);
    return 1;
  }
  static bool output_dims(DimsExprs const* in, int32_t /*nbIn*/, DimsExprs* out, IExprBuilder& /*b*/) noexcept {
    if (in[0].nbDims < 2) return false;
    out[0] = in[0];
    return true;
  }
  static DataType output_type(Attrs const& a, int32_t /*index*/, DataType const* /*in*/) noexcept {
    return a.out_fp16 != 0 ? DataType::kHALF : DataType::kFLOAT;
  }
  static int32_t enqueue(Attrs const& a, PluginTensorDesc const* in, int32_t /*nbIn*/, void const* const* inputs,
                         void* const* outputs, cudaStream_t stream) noexcept {
    return dequantize_enqueue(a, in, inputs, outputs, stream);
  }
};

constexpr int32_t kMaxSerialFields = 6;  // Int8Kind's 5 + num_inputs
constexpr int32_t kMaxIO = 8;            // inputs + outputs of any Kind

template <class Kind>
bool io_ok(int32_t nbInputs, int32_t nbOutputs) noexcept {
  return nbInputs >= Kind::kMinIn && nbInputs <= Kind::kMaxIn && nbOutputs == Kind::kOutputs;
}

// ------------------------------------------------------------------------------------- IPluginV3

template <class Kind>
class AttentionV3 final : public IPluginV3, public IPluginV3OneCore, public IPluginV3OneBuild, public IPluginV3OneRuntime {
 public:
  using Attrs = typename Kind::Attrs;
  explicit AttentionV3(Attrs attrs) : attrs_(attrs) { refresh_fields(); }
  AttentionV3(AttentionV3 const& o) : attrs_(o.attrs_), ns_(o.ns_) { refresh_fields(); }
  AttentionV3& operator=(AttentionV3 const&) = delete;
  ~AttentionV3() override = default;

  // IPluginV3
  IPluginCapability* getCapabilityInterface(PluginCapabilityType type) noexcept override {
    switch (type) {
      case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
      case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
      case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
    }
    return nullptr;
  }
  IPluginV3* clone() noexcept override { return new (std::nothrow) AttentionV3(*this); }

  // core
  AsciiChar const* getPluginName() const noexcept override { return Kind::kName; }
  AsciiChar const* getPluginVersion() const noexcept override { return kAttentionVersion; }
  AsciiChar const* getPluginNamespace() const noexcept override { return ns_.c_str(); }
  void setPluginNamespace(char const* ns) noexcept { ns_ = ns == nullptr ? "" : ns; }

  // build
  int32_t getNbOutputs() const noexcept override { return Kind::kOutputs; }
  int32_t configurePlugin(DynamicPluginTensorDesc const* /*in*/, int32_t nbInputs, DynamicPluginTensorDesc const* /*out*/,
                          int32_t nbOutputs) noexcept override {
    if (!io_ok<Kind>(nbInputs, nbOutputs)) return -1;
    nb_inputs_ = nbInputs;
    return 0;
  }
  int32_t getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                             int32_t nbInputs) const noexcept override {
    if (!io_ok<Kind>(nbInputs, nbOutputs)) return -1;
    for (int32_t i = 0; i < nbOutputs; ++i) outputTypes[i] = Kind::output_type(attrs_, i, inputTypes);
    return 0;
  }
  int32_t getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
                          int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
                          IExprBuilder& exprBuilder) noexcept override {
    if (!io_ok<Kind>(nbInputs, nbOutputs)) return -1;
    return Kind::output_dims(inputs, nbInputs, outputs, exprBuilder) ? 0 : -1;
  }
  bool supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                 int32_t nbOutputs) noexcept override {
    if (!io_ok<Kind>(nbInputs, nbOutputs) || pos < 0 || pos >= nbInputs + nbOutputs) return false;
    PluginTensorDesc descs[kMaxIO];
    for (int32_t i = 0; i <= pos; ++i) descs[i] = inOut[i].desc;
    return Kind::supports(attrs_, pos, descs, nbInputs);
  }
  size_t getWorkspaceSize(DynamicPluginTensorDesc const* /*inputs*/, int32_t /*nbInputs*/,
                          DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept override {
    return 0;  // the kernel keeps its tiles in shared memory and registers
  }

  // runtime
  int32_t onShapeChange(PluginTensorDesc const* /*in*/, int32_t nbInputs, PluginTensorDesc const* /*out*/,
                        int32_t nbOutputs) noexcept override {
    if (!io_ok<Kind>(nbInputs, nbOutputs)) return -1;
    nb_inputs_ = nbInputs;
    return 0;
  }
  int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/, void const* const* inputs,
                  void* const* outputs, void* /*workspace*/, cudaStream_t stream) noexcept override {
    return Kind::enqueue(attrs_, inputDesc, nb_inputs_, inputs, outputs, stream);
  }
  IPluginV3* attachToContext(IPluginResourceContext* /*context*/) noexcept override { return clone(); }
  PluginFieldCollection const* getFieldsToSerialize() noexcept override {
    refresh_fields();
    return &fc_;
  }

  void set_nb_inputs(int32_t n) noexcept { nb_inputs_ = n; }

 private:
  void refresh_fields() noexcept {
    int32_t n = Kind::serial_fields(attrs_, fields_);
    fields_[n++] = PluginField("num_inputs", &nb_inputs_, PluginFieldType::kINT32, 1);
    fc_.nbFields = n;
    fc_.fields = fields_;
  }

  Attrs attrs_;
  std::string ns_;
  int32_t nb_inputs_{Kind::kMaxIn};
  PluginField fields_[kMaxSerialFields];
  PluginFieldCollection fc_{};
};

template <class Kind>
class AttentionV3Creator final : public IPluginCreatorV3One {
 public:
  IPluginV3* createPlugin(AsciiChar const* /*name*/, PluginFieldCollection const* fc, TensorRTPhase /*phase*/) noexcept override {
    typename Kind::Attrs attrs{};
    if (!parse_fields(fc, attrs)) return nullptr;
    auto* p = new (std::nothrow) AttentionV3<Kind>(attrs);
    if (p == nullptr) return nullptr;
    p->setPluginNamespace(ns_.c_str());
    int32_t n = 0;
    bool has_n = false;
    for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i) {
      if (fc->fields[i].name != nullptr && std::strcmp(fc->fields[i].name, "num_inputs") == 0 &&
          fc->fields[i].type == PluginFieldType::kINT32 && fc->fields[i].data != nullptr) {
        std::memcpy(&n, fc->fields[i].data, sizeof(n));
        has_n = true;
      }
    }
    if (has_n) p->set_nb_inputs(n);
    return p;
  }
  PluginFieldCollection const* getFieldNames() noexcept override { return Kind::fields(); }
  AsciiChar const* getPluginName() const noexcept override { return Kind::kName; }
  AsciiChar const* getPluginVersion() const noexcept override { return kAttentionVersion; }
  AsciiChar const* getPluginNamespace() const noexcept override { return ns_.c_str(); }

 private:
  std::string ns_;
};

// -------------------------------------------------------------------------- IPluginV2DynamicExt

template <class Kind>
class AttentionV2 final : public IPluginV2DynamicExt {
 public:
  using Attrs = typename Kind::Attrs;
  explicit AttentionV2(Attrs attrs) : attrs_(attrs) {}

  AsciiChar const* getPluginType() const noexcept override { return Kind::kName; }
  AsciiChar const* getPluginVersion() const noexcept override { return kAttentionVersion; }
  int32_t getNbOutputs() const noexcept override { return Kind::kOutputs; }
  int32_t initialize() noexcept override { return 0; }
  void terminate() noexcept override {}
  size_t getSerializationSize() const noexcept override { return Attrs::kSerialSize; }
  void serialize(void* buffer) const noexcept override { attrs_.serialize(buffer); }
  void destroy() noexcept override { delete this; }
  void setPluginNamespace(AsciiChar const* ns) noexcept override { ns_ = ns == nullptr ? "" : ns; }
  AsciiChar const* getPluginNamespace() const noexcept override { return ns_.c_str(); }
  DataType getOutputDataType(int32_t index, DataType const* inputTypes, int32_t /*nbInputs*/) const noexcept override {
    return Kind::output_type(attrs_, index, inputTypes);
  }
  IPluginV2DynamicExt* clone() const noexcept override {
    auto* p = new (std::nothrow) AttentionV2<Kind>(attrs_);
    if (p != nullptr) p->setPluginNamespace(ns_.c_str());
    return p;
  }
  DimsExprs getOutputDimensions(int32_t outputIndex, DimsExprs const* inputs, int32_t nbInputs,
                                IExprBuilder& exprBuilder) noexcept override {
    DimsExprs out[Kind::kOutputs]{};
    if (outputIndex < 0 || outputIndex >= Kind::kOutputs || !Kind::output_dims(inputs, nbInputs, out, exprBuilder)) {
      return DimsExprs{};  // nbDims 0: TensorRT reports the failure
    }
    return out[outputIndex];
  }
  bool supportsFormatCombination(int32_t pos, PluginTensorDesc const* inOut, int32_t nbInputs,
                                 int32_t nbOutputs) noexcept override {
    if (!io_ok<Kind>(nbInputs, nbOutputs) || pos < 0 || pos >= nbInputs + nbOutputs) return false;
    return Kind::supports(attrs_, pos, inOut, nbInputs);
  }
  void configurePlugin(DynamicPluginTensorDesc const* /*in*/, int32_t nbInputs, DynamicPluginTensorDesc const* /*out*/,
                       int32_t /*nbOutputs*/) noexcept override {
    nb_inputs_ = nbInputs;
  }
  size_t getWorkspaceSize(PluginTensorDesc const* /*inputs*/, int32_t /*nbInputs*/, PluginTensorDesc const* /*outputs*/,
                          int32_t /*nbOutputs*/) const noexcept override {
    return 0;
  }
  int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/, void const* const* inputs,
                  void* const* outputs, void* /*workspace*/, cudaStream_t stream) noexcept override {
    return Kind::enqueue(attrs_, inputDesc, nb_inputs_, inputs, outputs, stream);
  }

 private:
  Attrs attrs_;
  std::string ns_;
  int32_t nb_inputs_{Kind::kMinIn};
};

template <class Kind>
class AttentionV2Creator final : public IPluginCreator {
 public:
  AsciiChar const* getPluginName() const noexcept override { return Kind::kName; }
  AsciiChar const* getPluginVersion() const noexcept override { return kAttentionVersion; }
  PluginFieldCollection const* getFieldNames() noexcept override { return Kind::fields(); }
  IPluginV2* createPlugin(AsciiChar const* /*name*/, PluginFieldCollection const* fc) noexcept override {
    typename Kind::Attrs attrs{};
    if (!parse_fields(fc, attrs)) return nullptr;
    auto* p = new (std::nothrow) AttentionV2<Kind>(attrs);
    if (p != nullptr) p->setPluginNamespace(ns_.c_str());
    return p;
  }
  IPluginV2* deserializePlugin(AsciiChar const* /*name*/, void const* serialData, size_t serialLength) noexcept override {
    typename Kind::Attrs attrs{};
    if (!attrs.deserialize(serialData, serialLength)) {
      log_error("serialised plugin data is not this plugin's version 1 attributes");
      return nullptr;
    }
    auto* p = new (std::nothrow) AttentionV2<Kind>(attrs);
    if (p != nullptr) p->setPluginNamespace(ns_.c_str());
    return p;
  }
  void setPluginNamespace(AsciiChar const* ns) noexcept override { ns_ = ns == nullptr ? "" : ns; }
  AsciiChar const* getPluginNamespace() const noexcept override { return ns_.c_str(); }

 private:
  std::string ns_;
};

// every class of both flavours for both kinds, so a missing override fails to compile in any build
template class AttentionV3<Fp16Kind>;
template class AttentionV3<Int8Kind>;
template class AttentionV3Creator<Fp16Kind>;
template class AttentionV3Creator<Int8Kind>;
template class AttentionV2<Fp16Kind>;
template class AttentionV2<Int8Kind>;
template class AttentionV2Creator<Fp16Kind>;
template class AttentionV2Creator<Int8Kind>;
#define EVK_INSTANTIATE(K) \
  template class AttentionV3<K>; \
  template class AttentionV3Creator<K>; \
  template class AttentionV2<K>; \
  template class AttentionV2Creator<K>;
EVK_INSTANTIATE(QuantizeKind)
EVK_INSTANTIATE(LayerNormQuantizeKind)
EVK_INSTANTIATE(DequantizeKind)
#undef EVK_INSTANTIATE

}  // namespace edgevl

namespace {
nvinfer1::ILoggerFinder* g_logger_finder = nullptr;
edgevl::AttentionV3Creator<edgevl::Fp16Kind> g_v3_creator;
edgevl::AttentionV3Creator<edgevl::Int8Kind> g_v3_int8_creator;
edgevl::AttentionV2Creator<edgevl::Fp16Kind> g_v2_creator;
edgevl::AttentionV2Creator<edgevl::Int8Kind> g_v2_int8_creator;
edgevl::AttentionV3Creator<edgevl::QuantizeKind> g_v3_q_creator;
edgevl::AttentionV2Creator<edgevl::QuantizeKind> g_v2_q_creator;
edgevl::AttentionV3Creator<edgevl::LayerNormQuantizeKind> g_v3_lnq_creator;
edgevl::AttentionV2Creator<edgevl::LayerNormQuantizeKind> g_v2_lnq_creator;
edgevl::AttentionV3Creator<edgevl::DequantizeKind> g_v3_dq_creator;
edgevl::AttentionV2Creator<edgevl::DequantizeKind> g_v2_dq_creator;
nvinfer1::IPluginCreatorInterface* g_v3_list[] = {&g_v3_creator, &g_v3_int8_creator, &g_v3_q_creator,
                                                  &g_v3_lnq_creator, &g_v3_dq_creator};
nvinfer1::IPluginCreator* g_v2_list[] = {&g_v2_creator, &g_v2_int8_creator, &g_v2_q_creator, &g_v2_lnq_creator,
                                         &g_v2_dq_creator};
constexpr int32_t kNbCreators = 5;
}  // namespace

// static registration when the library is dlopen'ed (ctypes.CDLL(path, RTLD_GLOBAL), trtexec --staticPlugins)
#if defined(EDGEVL_TRT_LEGACY_PLUGIN) && EDGEVL_TRT_LEGACY_PLUGIN
using EdgevlAttentionCreator = edgevl::AttentionV2Creator<edgevl::Fp16Kind>;
using EdgevlAttentionInt8Creator = edgevl::AttentionV2Creator<edgevl::Int8Kind>;
using EdgevlQuantizeRowsCreator = edgevl::AttentionV2Creator<edgevl::QuantizeKind>;
using EdgevlLayerNormQuantizeCreator = edgevl::AttentionV2Creator<edgevl::LayerNormQuantizeKind>;
using EdgevlDequantizeRowsCreator = edgevl::AttentionV2Creator<edgevl::DequantizeKind>;
#else
using EdgevlAttentionCreator = edgevl::AttentionV3Creator<edgevl::Fp16Kind>;
using EdgevlAttentionInt8Creator = edgevl::AttentionV3Creator<edgevl::Int8Kind>;
using EdgevlQuantizeRowsCreator = edgevl::AttentionV3Creator<edgevl::QuantizeKind>;
using EdgevlLayerNormQuantizeCreator = edgevl::AttentionV3Creator<edgevl::LayerNormQuantizeKind>;
using EdgevlDequantizeRowsCreator = edgevl::AttentionV3Creator<edgevl::DequantizeKind>;
#endif
REGISTER_TENSORRT_PLUGIN(EdgevlAttentionCreator);
REGISTER_TENSORRT_PLUGIN(EdgevlAttentionInt8Creator);
REGISTER_TENSORRT_PLUGIN(EdgevlQuantizeRowsCreator);
REGISTER_TENSORRT_PLUGIN(EdgevlLayerNormQuantizeCreator);
REGISTER_TENSORRT_PLUGIN(EdgevlDequantizeRowsCreator);

EVK_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder) { g_logger_finder = finder; }

EVK_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
#if defined(EDGEVL_TRT_LEGACY_PLUGIN) && EDGEVL_TRT_LEGACY_PLUGIN
  nbCreators = 0;
  return g_v3_list;
#else
  nbCreators = kNbCreators;
  return g_v3_list;
#endif
}

EVK_EXPORT nvinfer1::IPluginCreator* const* getPluginCreators(int32_t& nbCreators) {
#if defined(EDGEVL_TRT_LEGACY_PLUGIN) && EDGEVL_TRT_LEGACY_PLUGIN
  nbCreators = kNbCreators;
  return g_v2_list;
#else
  nbCreators = 0;
  return g_v2_list;
#endif
}

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
