// Host-only self-test of the TensorRT plugin library's logic (no GPU, no libnvinfer): creator lists,
// field parsing, serialisation round trips, type/format rules and the parameters handed to the C ABI.
// compile_check.py builds it against the TensorRT headers twice (IPluginV3 build and
// EDGEVL_TRT_LEGACY_PLUGIN build) and runs it; it exits 1 and names every failed check.
//
// The plugin sources are included here so the static REGISTER_TENSORRT_PLUGIN registrars (which
// need libnvinfer's getPluginRegistry) can be turned off, and the kernels are replaced by stubs that
// record what the plugin passed them.
#include "NvInferRuntime.h"
#undef REGISTER_TENSORRT_PLUGIN
#define REGISTER_TENSORRT_PLUGIN(name) static_assert(sizeof(name) > 0, "creator type")

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../plugin/attention_core.cpp"
#include "../plugin/row_ops_core.cpp"
#include "../plugin/attention_plugin.cpp"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // the V2 flavour is tested too

namespace {
int g_failures = 0;
evk_attention_params g_last{};
std::string g_last_kernel;

void expect(bool ok, char const* what) {
  if (!ok) {
    std::printf("FAIL %s\n", what);
    ++g_failures;
  }
}

struct Fields {
  std::vector<nvinfer1::PluginField> f;
  nvinfer1::PluginFieldCollection fc() { return {static_cast<int32_t>(f.size()), f.data()}; }
};

nvinfer1::PluginTensorDesc desc(nvinfer1::DataType t, int64_t b, int64_t h, int64_t s, int64_t d) {
  nvinfer1::PluginTensorDesc x{};
  x.dims.nbDims = 4;
  x.dims.d[0] = b;
  x.dims.d[1] = h;
  x.dims.d[2] = s;
  x.dims.d[3] = d;
  x.type = t;
  x.format = nvinfer1::TensorFormat::kLINEAR;
  x.scale = 1.F;
  return x;
}

float field_float(nvinfer1::PluginFieldCollection const* fc, char const* name) {
  for (int32_t i = 0; i < fc->nbFields; ++i) {
    if (std::strcmp(fc->fields[i].name, name) == 0) return *static_cast<float const*>(fc->fields[i].data);
  }
  return std::numeric_limits<float>::quiet_NaN();
}
}  // namespace

extern "C" int evk_attention_fp16(const evk_attention_params* p, void*) {
  g_last = *p;
  g_last_kernel = "fp16";
  return 0;
}
struct RowCall {
  std::string kernel;
  int32_t rows{0}, cols{0};
  float eps{0.F};
};
RowCall g_row;
extern "C" int evk_quantize_rows_f32(const float*, int64_t, int32_t rows, int32_t cols, int8_t*, int64_t, float*,
                                     void*) {
  g_row = {"quantize_f32", rows, cols, 0.F};
  return 0;
}
extern "C" int evk_quantize_rows_f16(const void*, int64_t, int32_t rows, int32_t cols, int8_t*, int64_t, float*,
                                     void*) {
  g_row = {"quantize_f16", rows, cols, 0.F};
  return 0;
}
extern "C" int evk_layernorm_quantize_f16(const void*, int64_t, int32_t rows, int32_t cols, const float*,
                                          const float*, float eps, int8_t*, int64_t, float*, void*) {
  g_row = {"lnq_f16", rows, cols, eps};
  return 0;
}
extern "C" int evk_layernorm_quantize_f32(const float*, int64_t, int32_t rows, int32_t cols, const float*,
                                          const float*, float eps, int8_t*, int64_t, float*, void*) {
  g_row = {"lnq_f32", rows, cols, eps};
  return 0;
}
extern "C" int evk_dequantize_rows_f32(const int8_t*, int64_t, int32_t rows, int32_t cols, const float*, float*,
                                       int64_t, void*) {
  g_row = {"dequantize_f32", rows, cols, 0.F};
  return 0;
}
extern "C" int evk_dequantize_rows_f16(const int8_t*, int64_t, int32_t rows, int32_t cols, const float*, void*,
                                       int64_t, void*) {
  g_row = {"dequantize_f16", rows, cols, 0.F};
  return 0;
}
extern "C" int evk_attention_int8(const evk_attention_params* p, void*) {
  g_last = *p;
  g_last_kernel = "int8";
  return 0;
}

int main() {
  using namespace nvinfer1;
  using edgevl::Fp16Kind;
  using edgevl::Int8Kind;

  // the library's creator lists: both plugins, in the flavour this build registers
  int32_t n3 = -1, n2 = -1;
  IPluginCreatorInterface* const* v3 = getCreators(n3);
  IPluginCreator* const* v2 = getPluginCreators(n2);
#if defined(EDGEVL_TRT_LEGACY_PLUGIN) && EDGEVL_TRT_LEGACY_PLUGIN
  (void)v3;
  expect(n3 == 0 && n2 == 5, "legacy build lists 0 V3 and 5 V2 creators");
  for (int32_t i = 0; i < n2; ++i) std::printf("creator %s v%s\n", v2[i]->getPluginName(), v2[i]->getPluginVersion());
  expect(n2 == 5, "V2 creator count");
#else
  (void)v2;
  expect(n3 == 5 && n2 == 0, "V3 build lists 5 V3 and 0 V2 creators");
  for (int32_t i = 0; i < n3; ++i) {
    auto const* c = static_cast<IPluginCreatorV3One const*>(v3[i]);
    std::printf("creator %s v%s\n", c->getPluginName(), c->getPluginVersion());
  }
  expect(n3 == 5, "V3 creator count");
#endif

  // field parsing: float64/float32 scales, int64 causal; the Q/DQ scales are required, finite, > 0
  double q64 = 0.5;
  float k32 = 0.25F, v32 = 2.F, bad = -1.F, nan = std::numeric_limits<float>::quiet_NaN();
  int64_t causal64 = 1;
  int32_t three = 3;
  Fields ok{{PluginField("q_scale", &q64, PluginFieldType::kFLOAT64, 1),
             PluginField("k_scale", &k32, PluginFieldType::kFLOAT32, 1),
             PluginField("v_scale", &v32, PluginFieldType::kFLOAT32, 1),
             PluginField("causal", &causal64, PluginFieldType::kINT64, 1),
             PluginField("num_heads", &three, PluginFieldType::kINT32, 1),
             PluginField("num_inputs", &three, PluginFieldType::kINT32, 1)}};
  auto fc = ok.fc();
  edgevl::Int8AttentionAttrs a{};
  expect(edgevl::parse_fields(&fc, a) && a.q_scale == 0.5F && a.k_scale == 0.25F && a.v_scale == 2.F &&
             a.base.causal == 1 && a.base.scale == 0.F,
         "int8 fields parse");
  Fields missing{{ok.f[0], ok.f[1]}};
  auto fcm = missing.fc();
  expect(!edgevl::parse_fields(&fcm, a), "missing v_scale is rejected");
  Fields negative{{ok.f[0], ok.f[1], PluginField("v_scale", &bad, PluginFieldType::kFLOAT32, 1)}};
  auto fcn = negative.fc();
  expect(!edgevl::parse_fields(&fcn, a), "negative v_scale is rejected");
  Fields nans{{PluginField("q_scale", &nan, PluginFieldType::kFLOAT32, 1), ok.f[1], ok.f[2]}};
  auto fcnan = nans.fc();
  expect(!edgevl::parse_fields(&fcnan, a), "NaN q_scale is rejected");
  Fields wrong_type{{PluginField("q_scale", &three, PluginFieldType::kINT32, 1), ok.f[1], ok.f[2]}};
  auto fcw = wrong_type.fc();
  expect(!edgevl::parse_fields(&fcw, a), "integer q_scale is rejected");
  edgevl::AttentionAttrs fa{};
  expect(edgevl::parse_fields(nullptr, fa) && fa.scale == 0.F && fa.causal == 0, "fp16 defaults without fields");

  // IPluginV3: create -> getFieldsToSerialize -> create gives the same attributes and input count
  edgevl::AttentionV3Creator<Int8Kind> c3;
  IPluginV3* p3 = c3.createPlugin("x", &fc, TensorRTPhase::kBUILD);
  expect(p3 != nullptr, "V3 int8 createPlugin");
  expect(c3.createPlugin("x", &fcm, TensorRTPhase::kBUILD) == nullptr, "V3 int8 createPlugin refuses missing scale");
  if (p3 != nullptr) {
    auto* core = static_cast<IPluginV3OneCore*>(p3->getCapabilityInterface(PluginCapabilityType::kCORE));
    expect(std::strcmp(core->getPluginName(), "EdgevlAttentionInt8") == 0 &&
               std::strcmp(core->getPluginVersion(), "1") == 0,
           "V3 int8 name/version");
    auto* rt = static_cast<IPluginV3OneRuntime*>(p3->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    PluginFieldCollection const* ser = rt->getFieldsToSerialize();
    expect(ser->nbFields == 6 && field_float(ser, "q_scale") == 0.5F && field_float(ser, "k_scale") == 0.25F &&
               field_float(ser, "v_scale") == 2.F,
           "V3 int8 serialised fields");
    IPluginV3* back = c3.createPlugin("x", ser, TensorRTPhase::kRUNTIME);
    expect(back != nullptr, "V3 int8 recreated from its serialised fields");
    if (back != nullptr) {
      auto* rt2 = static_cast<IPluginV3OneRuntime*>(back->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
      PluginFieldCollection const* ser2 = rt2->getFieldsToSerialize();
      bool same = ser2->nbFields == ser->nbFields;
      for (int32_t i = 0; same && i < ser->nbFields; ++i) {
        same = std::strcmp(ser->fields[i].name, ser2->fields[i].name) == 0 &&
               std::memcmp(ser->fields[i].data, ser2->fields[i].data, 4) == 0;
      }
      expect(same, "V3 int8 serialise -> create -> serialise is the identity");

      // type/format rules: int8 q/k/v, fp32 bias, fp16 out
      auto* build = static_cast<IPluginV3OneBuild*>(back->getCapabilityInterface(PluginCapabilityType::kBUILD));
      DynamicPluginTensorDesc io[5]{};
      for (int i = 0; i < 3; ++i) io[i].desc = desc(DataType::kINT8, 2, 4, 77, 64);
      io[3].desc = desc(DataType::kHALF, 2, 4, 77, 64);
      expect(build->supportsFormatCombination(0, io, 3, 1) && build->supportsFormatCombination(2, io, 3, 1) &&
                 build->supportsFormatCombination(3, io, 3, 1),
             "V3 int8 accepts int8 q/k/v and fp16 out");
      io[1].desc.type = DataType::kHALF;
      expect(!build->supportsFormatCombination(1, io, 3, 1), "V3 int8 refuses fp16 k");
      io[3].desc.type = DataType::kINT8;
      expect(!build->supportsFormatCombination(3, io, 3, 1), "V3 int8 refuses int8 out");
      io[1].desc.type = DataType::kINT8;
      io[3].desc = desc(DataType::kFLOAT, 1, 1, 1, 77);
      io[4].desc = desc(DataType::kHALF, 2, 4, 77, 64);
      expect(build->supportsFormatCombination(3, io, 4, 1) && build->supportsFormatCombination(4, io, 4, 1),
             "V3 int8 accepts fp32 bias and fp16 out with 4 inputs");
      DataType out_t = DataType::kINT8;
      DataType in_t[3] = {DataType::kINT8, DataType::kINT8, DataType::kINT8};
      expect(build->getOutputDataTypes(&out_t, 1, in_t, 3) == 0 && out_t == DataType::kHALF, "V3 int8 output fp16");
      DynamicPluginTensorDesc none[1]{};
      expect(build->getWorkspaceSize(none, 3, none, 1) == 0, "V3 int8 workspace 0");

      // enqueue hands the Q/DQ scales and the shape to evk_attention_int8
      PluginTensorDesc in[3] = {desc(DataType::kINT8, 2, 4, 77, 64), desc(DataType::kINT8, 2, 4, 50, 64),
                                desc(DataType::kINT8, 2, 4, 50, 64)};
      PluginTensorDesc out = desc(DataType::kHALF, 2, 4, 77, 64);
      int8_t buf = 0;
      void const* ins[3] = {&buf, &buf, &buf};
      void* outs[1] = {&buf};
      expect(rt2->enqueue(in, &out, ins, outs, nullptr, nullptr) == 0 && g_last_kernel == "int8" &&
                 g_last.q_scale == 0.5F && g_last.k_scale == 0.25F && g_last.v_scale == 2.F && g_last.seq_q == 77 &&
                 g_last.seq_k == 50 && g_last.head_dim == 64 && g_last.causal == 1 && g_last.bias == nullptr &&
                 g_last.k_stride[0] == 4 * 50 * 64 && std::fabs(g_last.scale - 0.125F) < 1e-7F,
             "V3 int8 enqueue passes scales, shape and default 1/sqrt(64) to evk_attention_int8");
      delete back;
    }
    delete p3;
  }

  // IPluginV2DynamicExt: serialize -> deserializePlugin -> serialize is the identity; foreign bytes refused
  edgevl::AttentionV2Creator<Int8Kind> c2;
  edgevl::AttentionV2Creator<Fp16Kind> c2f;
  IPluginV2* q2 = c2.createPlugin("x", &fc);
  expect(q2 != nullptr && std::strcmp(q2->getPluginType(), "EdgevlAttentionInt8") == 0, "V2 int8 createPlugin");
  if (q2 != nullptr) {
    auto* d2 = static_cast<IPluginV2DynamicExt*>(q2);
    std::vector<char> bytes(d2->getSerializationSize());
    expect(bytes.size() == 24, "V2 int8 serialises 24 bytes");
    d2->serialize(bytes.data());
    IPluginV2* r2 = c2.deserializePlugin("x", bytes.data(), bytes.size());
    expect(r2 != nullptr, "V2 int8 deserialises its own bytes");
    if (r2 != nullptr) {
      auto* rd = static_cast<IPluginV2DynamicExt*>(r2);
      std::vector<char> again(rd->getSerializationSize());
      rd->serialize(again.data());
      expect(again == bytes, "V2 int8 serialise -> deserialise -> serialise is the identity");
      PluginTensorDesc io[4] = {desc(DataType::kINT8, 1, 2, 3, 32), desc(DataType::kINT8, 1, 2, 3, 32),
                                desc(DataType::kINT8, 1, 2, 3, 32), desc(DataType::kHALF, 1, 2, 3, 32)};
      expect(rd->supportsFormatCombination(0, io, 3, 1) && rd->supportsFormatCombination(3, io, 3, 1),
             "V2 int8 accepts int8 q and fp16 out");
      io[0].type = DataType::kFLOAT;
      expect(!rd->supportsFormatCombination(0, io, 3, 1), "V2 int8 refuses fp32 q");
      DataType in_t[3] = {DataType::kINT8, DataType::kINT8, DataType::kINT8};
      expect(rd->getOutputDataType(0, in_t, 3) == DataType::kHALF, "V2 int8 output fp16");
      r2->destroy();
    }
    expect(c2.deserializePlugin("x", bytes.data(), bytes.size() - 4) == nullptr, "V2 int8 refuses truncated bytes");
    expect(c2f.deserializePlugin("x", bytes.data(), bytes.size()) == nullptr, "V2 fp16 refuses int8 bytes");
    q2->destroy();
  }
  IPluginV2* f2 = c2f.createPlugin("x", nullptr);
  expect(f2 != nullptr, "V2 fp16 createPlugin with no fields");
  if (f2 != nullptr) {
    auto* d2 = static_cast<IPluginV2DynamicExt*>(f2);
    std::vector<char> bytes(d2->getSerializationSize());
    d2->serialize(bytes.data());
    expect(c2.deserializePlugin("x", bytes.data(), bytes.size()) == nullptr, "V2 int8 refuses fp16 bytes");
    PluginTensorDesc io[4] = {desc(DataType::kHALF, 1, 2, 3, 32), desc(DataType::kHALF, 1, 2, 3, 32),
                              desc(DataType::kHALF, 1, 2, 3, 32), desc(DataType::kHALF, 1, 2, 3, 32)};
    int8_t buf = 0;
    void const* ins[3] = {&buf, &buf, &buf};
    void* outs[1] = {&buf};
    d2->configurePlugin(nullptr, 3, nullptr, 1);
    expect(d2->enqueue(io, io + 3, ins, outs, nullptr, nullptr) == 0 && g_last_kernel == "fp16",
           "V2 fp16 enqueue calls evk_attention_fp16");
    f2->destroy();
  }

  // ---- the per-row int8 plugins
  using edgevl::DequantizeKind;
  using edgevl::LayerNormQuantizeKind;
  using edgevl::QuantizeKind;
  double eps64 = 1e-6;
  float eps_bad = 0.F;
  Fields lnf{{PluginField("eps", &eps64, PluginFieldType::kFLOAT64, 1)}};
  auto lnfc = lnf.fc();
  Fields lnbad{{PluginField("eps", &eps_bad, PluginFieldType::kFLOAT32, 1)}};
  auto lnbadfc = lnbad.fc();
  edgevl::AttentionV3Creator<LayerNormQuantizeKind> ln3;
  edgevl::AttentionV2Creator<LayerNormQuantizeKind> ln2;
  expect(ln3.createPlugin("x", &lnbadfc, TensorRTPhase::kBUILD) == nullptr, "LN+quantise refuses eps 0");
  IPluginV3* l3 = ln3.createPlugin("x", &lnfc, TensorRTPhase::kBUILD);
  expect(l3 != nullptr, "V3 LN+quantise createPlugin");
  if (l3 != nullptr) {
    auto* rt = static_cast<IPluginV3OneRuntime*>(l3->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    auto* build = static_cast<IPluginV3OneBuild*>(l3->getCapabilityInterface(PluginCapabilityType::kBUILD));
    PluginFieldCollection const* ser = rt->getFieldsToSerialize();
    expect(field_float(ser, "eps") == 1e-6F, "V3 LN+quantise serialises eps");
    expect(build->getNbOutputs() == 2, "LN+quantise has 2 outputs");
    DataType in_t[3] = {DataType::kHALF, DataType::kFLOAT, DataType::kFLOAT};
    DataType out_t[2] = {DataType::kHALF, DataType::kHALF};
    expect(build->getOutputDataTypes(out_t, 2, in_t, 3) == 0 && out_t[0] == DataType::kINT8 &&
               out_t[1] == DataType::kFLOAT,
           "LN+quantise outputs int8 q and fp32 scale");
    DynamicPluginTensorDesc io[5]{};
    io[0].desc = desc(DataType::kHALF, 2, 77, 1, 512);
    io[0].desc.dims.nbDims = 3;
    io[0].desc.dims.d[2] = 512;
    io[1].desc = desc(DataType::kFLOAT, 512, 0, 0, 0);
    io[1].desc.dims.nbDims = 1;
    io[2].desc = io[1].desc;
    io[3].desc = io[0].desc;
    io[3].desc.type = DataType::kINT8;
    io[4].desc = io[0].desc;
    io[4].desc.type = DataType::kFLOAT;
    io[4].desc.dims.d[2] = 1;
    bool all = true;
    for (int32_t pos = 0; pos < 5; ++pos) all = all && build->supportsFormatCombination(pos, io, 3, 2);
    expect(all, "LN+quantise accepts fp16 x, fp32 gamma/beta, int8 q, fp32 scale");
    io[1].desc.type = DataType::kHALF;
    expect(!build->supportsFormatCombination(1, io, 3, 2), "LN+quantise refuses fp16 gamma");
    io[3].desc.type = DataType::kHALF;
    expect(!build->supportsFormatCombination(3, io, 3, 2), "LN+quantise refuses fp16 q");
    io[0].desc.type = DataType::kINT8;
    expect(!build->supportsFormatCombination(0, io, 3, 2), "LN+quantise refuses int8 x");
    PluginTensorDesc in[3] = {desc(DataType::kFLOAT, 2, 77, 1, 512), desc(DataType::kFLOAT, 512, 0, 0, 0),
                              desc(DataType::kFLOAT, 512, 0, 0, 0)};
    in[0].dims.nbDims = 3;
    in[0].dims.d[2] = 512;
    in[1].dims.nbDims = 1;
    in[2].dims.nbDims = 1;
    int8_t buf = 0;
    void const* ins[3] = {&buf, &buf, &buf};
    void* outs[2] = {&buf, &buf};
    expect(rt->enqueue(in, in, ins, outs, nullptr, nullptr) == 0 && g_row.kernel == "lnq_f32" && g_row.rows == 154 &&
               g_row.cols == 512 && g_row.eps == 1e-6F,
           "LN+quantise enqueue: fp32 kernel, rows = 2*77, cols 512, eps");
    in[1].dims.d[0] = 256;
    expect(rt->enqueue(in, in, ins, outs, nullptr, nullptr) != 0, "LN+quantise refuses gamma of the wrong length");
    delete l3;
  }
  IPluginV2* l2 = ln2.createPlugin("x", &lnfc);
  expect(l2 != nullptr, "V2 LN+quantise createPlugin");
  if (l2 != nullptr) {
    auto* d = static_cast<IPluginV2DynamicExt*>(l2);
    std::vector<char> bytes(d->getSerializationSize());
    d->serialize(bytes.data());
    IPluginV2* r = ln2.deserializePlugin("x", bytes.data(), bytes.size());
    expect(r != nullptr && bytes.size() == 8, "V2 LN+quantise deserialises its 8 bytes");
    if (r != nullptr) {
      std::vector<char> again(static_cast<IPluginV2DynamicExt*>(r)->getSerializationSize());
      static_cast<IPluginV2DynamicExt*>(r)->serialize(again.data());
      expect(again == bytes, "V2 LN+quantise serialise -> deserialise -> serialise is the identity");
      r->destroy();
    }
    l2->destroy();
  }

  edgevl::AttentionV2Creator<QuantizeKind> q2c;
  IPluginV2* qp = q2c.createPlugin("x", nullptr);
  expect(qp != nullptr && qp->getNbOutputs() == 2, "V2 quantise createPlugin, 2 outputs");
  if (qp != nullptr) {
    auto* d = static_cast<IPluginV2DynamicExt*>(qp);
    PluginTensorDesc io[3] = {desc(DataType::kHALF, 3, 4, 5, 6), desc(DataType::kINT8, 3, 4, 5, 6),
                              desc(DataType::kFLOAT, 3, 4, 5, 1)};
    expect(d->supportsFormatCombination(0, io, 1, 2) && d->supportsFormatCombination(1, io, 1, 2) &&
               d->supportsFormatCombination(2, io, 1, 2),
           "quantise accepts fp16 x, int8 q, fp32 scale");
    io[2].type = DataType::kHALF;
    expect(!d->supportsFormatCombination(2, io, 1, 2), "quantise refuses fp16 scale");
    DataType in_t[1] = {DataType::kHALF};
    expect(d->getOutputDataType(0, in_t, 1) == DataType::kINT8 && d->getOutputDataType(1, in_t, 1) == DataType::kFLOAT,
           "quantise output types");
    int8_t buf = 0;
    void const* ins[1] = {&buf};
    void* outs[2] = {&buf, &buf};
    d->configurePlugin(nullptr, 1, nullptr, 2);
    expect(d->enqueue(io, io + 1, ins, outs, nullptr, nullptr) == 0 && g_row.kernel == "quantize_f16" &&
               g_row.rows == 60 && g_row.cols == 6,
           "quantise enqueue: fp16 kernel, rows 3*4*5, cols 6");
    std::vector<char> bytes(d->getSerializationSize());
    d->serialize(bytes.data());
    expect(bytes.size() == 4 && q2c.deserializePlugin("x", bytes.data(), 4) != nullptr, "V2 quantise round trip");
    expect(ln2.deserializePlugin("x", bytes.data(), bytes.size()) == nullptr, "LN+quantise refuses quantise bytes");
    qp->destroy();
  }

  int32_t one = 1, two = 2;
  Fields dqf{{PluginField("out_fp16", &one, PluginFieldType::kINT32, 1)}};
  auto dqfc = dqf.fc();
  Fields dqbad{{PluginField("out_fp16", &two, PluginFieldType::kINT32, 1)}};
  auto dqbadfc = dqbad.fc();
  edgevl::AttentionV3Creator<DequantizeKind> dq3;
  expect(dq3.createPlugin("x", &dqbadfc, TensorRTPhase::kBUILD) == nullptr, "dequantise refuses out_fp16 2");
  IPluginV3* dq = dq3.createPlugin("x", &dqfc, TensorRTPhase::kBUILD);
  expect(dq != nullptr, "V3 dequantise createPlugin");
  if (dq != nullptr) {
    auto* build = static_cast<IPluginV3OneBuild*>(dq->getCapabilityInterface(PluginCapabilityType::kBUILD));
    auto* rt = static_cast<IPluginV3OneRuntime*>(dq->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    DataType in_t[2] = {DataType::kINT8, DataType::kFLOAT};
    DataType out_t = DataType::kFLOAT;
    expect(build->getOutputDataTypes(&out_t, 1, in_t, 2) == 0 && out_t == DataType::kHALF, "dequantise out_fp16 -> fp16");
    DynamicPluginTensorDesc io[3]{};
    io[0].desc = desc(DataType::kINT8, 1, 2, 3, 8);
    io[1].desc = desc(DataType::kFLOAT, 1, 2, 3, 1);
    io[2].desc = desc(DataType::kHALF, 1, 2, 3, 8);
    expect(build->supportsFormatCombination(0, io, 2, 1) && build->supportsFormatCombination(1, io, 2, 1) &&
               build->supportsFormatCombination(2, io, 2, 1),
           "dequantise accepts int8 q, fp32 scale, fp16 out");
    io[2].desc.type = DataType::kFLOAT;
    expect(!build->supportsFormatCombination(2, io, 2, 1), "dequantise (out_fp16) refuses fp32 out");
    PluginTensorDesc in[2] = {io[0].desc, io[1].desc};
    int8_t buf = 0;
    void const* ins[2] = {&buf, &buf};
    void* outs[1] = {&buf};
    expect(rt->enqueue(in, in, ins, outs, nullptr, nullptr) == 0 && g_row.kernel == "dequantize_f16" &&
               g_row.rows == 6 && g_row.cols == 8,
           "dequantise enqueue: fp16 kernel, rows 6, cols 8");
    PluginFieldCollection const* ser = rt->getFieldsToSerialize();
    IPluginV3* back = dq3.createPlugin("x", ser, TensorRTPhase::kRUNTIME);
    expect(back != nullptr, "V3 dequantise recreated from its serialised fields");
    if (back != nullptr) {
      auto* b2 = static_cast<IPluginV3OneBuild*>(back->getCapabilityInterface(PluginCapabilityType::kBUILD));
      out_t = DataType::kFLOAT;
      expect(b2->getOutputDataTypes(&out_t, 1, in_t, 2) == 0 && out_t == DataType::kHALF,
             "V3 dequantise keeps out_fp16 through serialisation");
      delete back;
    }
    delete dq;
  }

  std::printf("plugin self-test: %s (%d failed)\n", g_failures == 0 ? "passed" : "FAILED", g_failures);
  return g_failures == 0 ? 0 : 1;
}
