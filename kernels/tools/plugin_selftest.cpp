// Host-only self-test of the TensorRT plugin library's logic (no GPU, no libnvinfer): the creator
// lists of both flavours and their versions, field parsing, serialisation round trips, type/format
// rules, the parameters handed to the C ABI, the error guards of the noexcept entry points and the
// routing of errors to TensorRT's logger. compile_check.py builds it against the TensorRT 10.3
// headers for each TensorRT API the library supports (10.x; 8.6 and 8.5 with -DEDGEVL_TRT_API) and
// runs it; it exits 1 and names every failed check ("FAIL <what>").
//
// The plugin sources are included here so the static REGISTER_TENSORRT_PLUGIN registrars (which
// need libnvinfer's getPluginRegistry) can be turned off, and the kernels are replaced by stubs that
// record what the plugin passed them. Global operator new is replaced so a check can make the n-th
// allocation from now throw std::bad_alloc: that is how the throwing paths inside noexcept entry
// points (namespace strings, clone, createPlugin) are exercised. An exception that escapes a
// noexcept method reaches std::terminate, whose handler here prints "FAIL <section>: ...".
#include "NvInferRuntime.h"
#undef REGISTER_TENSORRT_PLUGIN
#define REGISTER_TENSORRT_PLUGIN(name) static_assert(sizeof(name) > 0, "creator type")

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <new>
#include <string>
#include <vector>

// ------------------------------------------------------------------------ allocation failures

// free() of what the replaced operator new malloc'ed: GCC's -Wmismatched-new-delete cannot see the pairing
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
int g_fail_alloc_in = 0;  // 0: off; n > 0: the n-th allocation from now throws std::bad_alloc
}  // namespace

void* operator new(std::size_t n) {
  if (g_fail_alloc_in > 0 && --g_fail_alloc_in == 0) throw std::bad_alloc();
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, std::nothrow_t const&) noexcept {
  try {
    return ::operator new(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, std::nothrow_t const&) noexcept { return ::operator new(n, std::nothrow); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

#include "../plugin/common/fields.cpp"
#include "../plugin/common/logging.cpp"
#include "../plugin/attention/attention_core.cpp"
#include "../plugin/attention/attention_plugin.cpp"
#include "../plugin/rowops/row_ops_core.cpp"
#include "../plugin/rowops/row_ops_plugin.cpp"
#include "../plugin/api/plugin_library.cpp"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // the V2 flavour is tested too

namespace {
int g_failures = 0;
char const* g_section = "start";
evk_attention_params g_last{};
std::string g_last_kernel;

void expect(bool ok, char const* what) {
  if (!ok) {
    std::printf("FAIL %s\n", what);
    ++g_failures;
  }
}

void section(char const* name) { g_section = name; }

[[noreturn]] void on_terminate() {
  std::printf("FAIL %s: an exception escaped a noexcept entry point (std::terminate)\n", g_section);
  std::fflush(stdout);
  std::_Exit(1);
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

[[maybe_unused]] float field_float(nvinfer1::PluginFieldCollection const* fc, char const* name) {
  for (int32_t i = 0; i < fc->nbFields; ++i) {
    if (std::strcmp(fc->fields[i].name, name) == 0) return *static_cast<float const*>(fc->fields[i].data);
  }
  return std::numeric_limits<float>::quiet_NaN();
}

// A logger that keeps what it is given in fixed buffers (no allocation: it runs inside the
// allocation-failure checks), and a finder that hands it out.
class TestLogger final : public nvinfer1::ILogger {
 public:
  void log(Severity severity, nvinfer1::AsciiChar const* msg) noexcept override {
    if (count_ < kMax) {
      severity_[count_] = severity;
      std::snprintf(msg_[count_], sizeof(msg_[count_]), "%s", msg == nullptr ? "" : msg);
    }
    ++count_;
  }
  int count() const { return count_; }
  void clear() { count_ = 0; }
  // an error logged since entry `from` whose text contains every one of the parts
  bool has_error(int from, char const* part1, char const* part2 = "") const {
    for (int i = from; i < count_ && i < kMax; ++i) {
      if (severity_[i] == Severity::kERROR && std::strstr(msg_[i], part1) != nullptr &&
          std::strstr(msg_[i], part2) != nullptr) {
        return true;
      }
    }
    return false;
  }
  char const* last() const { return count_ == 0 || count_ > kMax ? "" : msg_[count_ - 1]; }

 private:
  static constexpr int kMax = 256;
  Severity severity_[kMax]{};
  char msg_[kMax][1024]{};
  int count_ = 0;
};

#if EDGEVL_TRT_LOGGER_FINDER
class TestFinder final : public nvinfer1::ILoggerFinder {
 public:
  explicit TestFinder(nvinfer1::ILogger* logger) : logger_(logger) {}
  nvinfer1::ILogger* findLogger() override { return logger_; }

 private:
  nvinfer1::ILogger* logger_;
};
#endif

// what the library writes to stderr while the capture is open
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    tmp_ = std::tmpfile();
    saved_ = dup(2);
    if (tmp_ != nullptr) dup2(fileno(tmp_), 2);
  }
  std::string finish() {
    std::fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    std::string out;
    if (tmp_ == nullptr) return out;
    std::rewind(tmp_);
    char buf[512];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof(buf), tmp_)) > 0) out.append(buf, n);
    std::fclose(tmp_);
    return out;
  }

 private:
  FILE* tmp_ = nullptr;
  int saved_ = -1;
};
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

namespace {

// ---------------------------------------------------------------- attention: fields, V3, V2

void check_attention() {
  using namespace nvinfer1;
  using edgevl::Fp16Kind;
  using edgevl::Int8Kind;
  section("attention fields");
  // field parsing: float64/float32 scales, int64 causal; the Q/DQ scales are required, finite, > 0
  double q64 = 0.5;
  float k32 = 0.25F, v32 = 2.F, bad = -1.F, nan = std::numeric_limits<float>::quiet_NaN();
#if EDGEVL_TRT_INT64_FIELDS
  int64_t causal64 = 1;
  PluginFieldType const causal_type = PluginFieldType::kINT64;
#else
  int32_t causal64 = 1;
  PluginFieldType const causal_type = PluginFieldType::kINT32;
#endif
  int32_t three = 3;
  Fields ok{{PluginField("q_scale", &q64, PluginFieldType::kFLOAT64, 1),
             PluginField("k_scale", &k32, PluginFieldType::kFLOAT32, 1),
             PluginField("v_scale", &v32, PluginFieldType::kFLOAT32, 1),
             PluginField("causal", &causal64, causal_type, 1),
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


#if EDGEVL_TRT_V3
  section("attention IPluginV3");
  // IPluginV3: create -> getFieldsToSerialize -> create gives the same attributes and input count
  edgevl::CreatorV3<Int8Kind> c3;
  IPluginV3* p3 = c3.createPlugin("x", &fc, TensorRTPhase::kBUILD);
  expect(p3 != nullptr, "V3 int8 createPlugin");
  expect(c3.createPlugin("x", &fcm, TensorRTPhase::kBUILD) == nullptr, "V3 int8 createPlugin refuses missing scale");
  if (p3 != nullptr) {
    auto* core = static_cast<IPluginV3OneCore*>(p3->getCapabilityInterface(PluginCapabilityType::kCORE));
    expect(std::strcmp(core->getPluginName(), "EdgevlAttentionInt8") == 0 &&
               std::strcmp(core->getPluginVersion(), "2") == 0,
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

#endif

  section("attention IPluginV2DynamicExt");
  // IPluginV2DynamicExt: serialize -> deserializePlugin -> serialize is the identity; foreign bytes refused
  edgevl::CreatorV2<Int8Kind> c2;
  edgevl::CreatorV2<Fp16Kind> c2f;
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
}

// ---------------------------------------------------------------- the per-row int8 plugins

void check_row_ops() {
  using namespace nvinfer1;
  using edgevl::DequantizeKind;
  using edgevl::LayerNormQuantizeKind;
  using edgevl::QuantizeKind;
  section("row plugins");
  double eps64 = 1e-6;
  float eps_bad = 0.F;
  Fields lnf{{PluginField("eps", &eps64, PluginFieldType::kFLOAT64, 1)}};
  auto lnfc = lnf.fc();
  Fields lnbad{{PluginField("eps", &eps_bad, PluginFieldType::kFLOAT32, 1)}};
  auto lnbadfc = lnbad.fc();
#if EDGEVL_TRT_V3
  edgevl::CreatorV3<LayerNormQuantizeKind> ln3;
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
#endif
  edgevl::CreatorV2<LayerNormQuantizeKind> ln2;
  expect(ln2.createPlugin("x", &lnbadfc) == nullptr, "V2 LN+quantise refuses eps 0");
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

  edgevl::CreatorV2<QuantizeKind> q2c;
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

  int32_t fp16_out = 1;
  Fields dq2f{{PluginField("out_fp16", &fp16_out, PluginFieldType::kINT32, 1)}};
  auto dq2fc = dq2f.fc();
  edgevl::CreatorV2<DequantizeKind> dq2c;
  IPluginV2* dq2 = dq2c.createPlugin("x", &dq2fc);
  expect(dq2 != nullptr, "V2 dequantise createPlugin");
  if (dq2 != nullptr) {
    auto* d = static_cast<IPluginV2DynamicExt*>(dq2);
    DataType in_t[2] = {DataType::kINT8, DataType::kFLOAT};
    expect(d->getOutputDataType(0, in_t, 2) == DataType::kHALF, "V2 dequantise out_fp16 -> fp16");
    PluginTensorDesc io[3] = {desc(DataType::kINT8, 1, 2, 3, 8), desc(DataType::kFLOAT, 1, 2, 3, 1),
                              desc(DataType::kHALF, 1, 2, 3, 8)};
    int8_t buf = 0;
    void const* ins[2] = {&buf, &buf};
    void* outs[1] = {&buf};
    d->configurePlugin(nullptr, 2, nullptr, 1);
    expect(d->enqueue(io, io + 2, ins, outs, nullptr, nullptr) == 0 && g_row.kernel == "dequantize_f16" &&
               g_row.rows == 6 && g_row.cols == 8,
           "V2 dequantise enqueue: fp16 kernel, rows 6, cols 8");
    dq2->destroy();
  }

#if EDGEVL_TRT_V3
  int32_t one = 1, two = 2;
  Fields dqf{{PluginField("out_fp16", &one, PluginFieldType::kINT32, 1)}};
  auto dqfc = dqf.fc();
  Fields dqbad{{PluginField("out_fp16", &two, PluginFieldType::kINT32, 1)}};
  auto dqbadfc = dqbad.fc();
  edgevl::CreatorV3<DequantizeKind> dq3;
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
#endif
}

}  // namespace

namespace {

TestLogger g_logger;
#if EDGEVL_TRT_LOGGER_FINDER
TestFinder g_finder(&g_logger);
TestFinder g_finder_without_logger(nullptr);
#endif

constexpr char const* kPlugins[5] = {"EdgevlAttention", "EdgevlAttentionInt8", "EdgevlQuantizeRows",
                                     "EdgevlLayerNormQuantize", "EdgevlDequantizeRows"};
// longer than std::string's in-object buffer, so copying it allocates
constexpr char kLongNamespace[] = "a_plugin_namespace_longer_than_the_small_string_buffer";

// Fields every plugin accepts (each ignores the others' fields).
struct AllFields {
  float one = 1.F, eps = 1e-5F;
  int32_t zero = 0;
  Fields f{{nvinfer1::PluginField("q_scale", &one, nvinfer1::PluginFieldType::kFLOAT32, 1),
            nvinfer1::PluginField("k_scale", &one, nvinfer1::PluginFieldType::kFLOAT32, 1),
            nvinfer1::PluginField("v_scale", &one, nvinfer1::PluginFieldType::kFLOAT32, 1),
            nvinfer1::PluginField("eps", &eps, nvinfer1::PluginFieldType::kFLOAT32, 1),
            nvinfer1::PluginField("out_fp16", &zero, nvinfer1::PluginFieldType::kINT32, 1)}};
};

// op() logged an error containing both parts: through TensorRT's logger where the build has a
// logger finder (the test finder is installed by then), else on stderr
template <class Op>
bool logs_error(Op&& op, char const* part1, char const* part2 = "") {
#if EDGEVL_TRT_LOGGER_FINDER
  int from = g_logger.count();
  op();
  return g_logger.has_error(from, part1, part2);
#else
  StderrCapture cap;
  op();
  std::string err = cap.finish();
  return err.find(part1) != std::string::npos && err.find(part2) != std::string::npos;
#endif
}

// ------------------------------------------------------------------------------ registration

struct Listed {
  std::string name, version, ns, flavour;
  void const* creator;
};

void check_registration() {
  using namespace nvinfer1;
  section("registration");
  int32_t n2 = -1;
  IPluginCreator* const* v2 = getPluginCreators(n2);
  expect(v2 != nullptr && n2 == 5, "getPluginCreators lists the 5 IPluginV2DynamicExt creators");
  std::vector<Listed> v2_listed;
  for (int32_t i = 0; v2 != nullptr && i < n2; ++i) {
    std::printf("getPluginCreators: %s %s\n", v2[i]->getPluginName(), v2[i]->getPluginVersion());
    v2_listed.push_back({v2[i]->getPluginName(), v2[i]->getPluginVersion(), v2[i]->getPluginNamespace(), "V2", v2[i]});
    expect(std::strcmp(v2[i]->getPluginVersion(), "1") == 0,
           "every IPluginV2DynamicExt creator is version 1 (the version the ONNX export names)");
  }
  for (char const* name : kPlugins) {
    int found = 0;
    for (Listed const& l : v2_listed) found += l.name == name;
    expect(found == 1, (std::string("getPluginCreators lists ") + name + " once").c_str());
  }

#if EDGEVL_TRT_V3
  int32_t n = -1;
  IPluginCreatorInterface* const* all = getCreators(n);
  expect(all != nullptr && n == 10, "getCreators lists both flavours of the 5 plugins (10 creators)");
  std::vector<Listed> listed;
  for (int32_t i = 0; all != nullptr && i < n; ++i) {
    InterfaceInfo const info = all[i]->getInterfaceInfo();
    if (std::strcmp(info.kind, "PLUGIN CREATOR_V1") == 0) {
      auto const* c = static_cast<IPluginCreator const*>(all[i]);
      listed.push_back({c->getPluginName(), c->getPluginVersion(), c->getPluginNamespace(), "V2", all[i]});
    } else if (std::strcmp(info.kind, "PLUGIN CREATOR_V3ONE") == 0) {
      auto const* c = static_cast<IPluginCreatorV3One const*>(all[i]);
      listed.push_back({c->getPluginName(), c->getPluginVersion(), c->getPluginNamespace(), "V3", all[i]});
    } else {
      expect(false, "getCreators lists only IPluginCreator and IPluginCreatorV3One creators");
      continue;
    }
    std::printf("getCreators: %s %s %s\n", listed.back().name.c_str(), listed.back().version.c_str(),
                listed.back().flavour.c_str());
  }
  for (char const* name : kPlugins) {
    Listed const* flavour[2] = {nullptr, nullptr};
    int count = 0;
    for (Listed const& l : listed) {
      if (l.name != name) continue;
      ++count;
      flavour[l.flavour == "V3"] = &l;
    }
    std::string const who(name);
    expect(count == 2 && flavour[0] != nullptr && flavour[1] != nullptr,
           (who + " registers one IPluginV2DynamicExt and one IPluginV3 creator").c_str());
    if (flavour[0] == nullptr || flavour[1] == nullptr) continue;
    expect(flavour[0]->version != flavour[1]->version,
           "each plugin's V2 and V3 flavours register distinct versions");
    expect(flavour[0]->version == "1" && flavour[1]->version == "2",
           "versions follow TensorRT's convention (IPluginV2DynamicExt 1, IPluginV3 2)");
  }
  bool distinct = true;
  for (size_t i = 0; i < listed.size(); ++i) {
    for (size_t j = i + 1; j < listed.size(); ++j) {
      distinct = distinct && !(listed[i].name == listed[j].name && listed[i].version == listed[j].version &&
                               listed[i].ns == listed[j].ns);
    }
  }
  expect(distinct, "no two creators share a registry key (name, version, namespace)");
  bool same_v2 = v2_listed.size() == 5;
  for (Listed const& l : v2_listed) {
    bool in_all = false;
    for (Listed const& m : listed) in_all = in_all || (m.flavour == "V2" && m.creator == l.creator);
    same_v2 = same_v2 && in_all;
  }
  expect(same_v2, "getPluginCreators' creators are the IPluginV2DynamicExt ones of getCreators");

  // TensorRT finds the creator of a serialised plugin by the plugin's own name and version
  AllFields fields;
  auto fc = fields.f.fc();
  for (int32_t i = 0; all != nullptr && i < n; ++i) {
    if (std::strcmp(all[i]->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") != 0) continue;
    auto* c = static_cast<IPluginCreatorV3One*>(all[i]);
    IPluginV3* p = c->createPlugin("x", &fc, TensorRTPhase::kBUILD);
    auto* core = p == nullptr ? nullptr
                              : static_cast<IPluginV3OneCore*>(p->getCapabilityInterface(PluginCapabilityType::kCORE));
    expect(core != nullptr && std::strcmp(core->getPluginName(), c->getPluginName()) == 0 &&
               std::strcmp(core->getPluginVersion(), c->getPluginVersion()) == 0 &&
               std::strcmp(core->getPluginNamespace(), c->getPluginNamespace()) == 0,
           "every IPluginV3 plugin reports its creator's name, version and namespace");
    delete p;
  }
#endif
  AllFields v2_fields;
  auto v2_fc = v2_fields.f.fc();
  for (int32_t i = 0; v2 != nullptr && i < n2; ++i) {
    IPluginV2* p = v2[i]->createPlugin("x", &v2_fc);
    expect(p != nullptr && std::strcmp(p->getPluginType(), v2[i]->getPluginName()) == 0 &&
               std::strcmp(p->getPluginVersion(), v2[i]->getPluginVersion()) == 0,
           "every IPluginV2DynamicExt plugin reports its creator's name and version");
    if (p != nullptr) p->destroy();
  }
}

// ---------------------------------------------------------------------------------- logging

void check_logging() {
  using namespace nvinfer1;
  section("logging");
  float negative = -1.F;
  Fields bad{{PluginField("scale", &negative, PluginFieldType::kFLOAT32, 1)}};
  auto badfc = bad.fc();
  edgevl::CreatorV2<edgevl::Fp16Kind> c;
  auto refused_to_stderr = [&] {
    StderrCapture cap;
    IPluginV2* p = c.createPlugin("x", &badfc);
    std::string err = cap.finish();
    return p == nullptr && err.find("[edgevl_trt_plugin]") != std::string::npos &&
           err.find("scale must be >= 0") != std::string::npos;
  };
#if EDGEVL_TRT_LOGGER_FINDER
  setLoggerFinder(nullptr);
#endif
  expect(refused_to_stderr(), "without a logger finder errors go to stderr");
#if EDGEVL_TRT_LOGGER_FINDER
  setLoggerFinder(&g_finder_without_logger);
  expect(refused_to_stderr(), "a logger finder that finds no logger leaves errors on stderr");
  setLoggerFinder(&g_finder);
  int from = g_logger.count();
  StderrCapture cap;
  IPluginV2* p = c.createPlugin("x", &badfc);
  std::string err = cap.finish();
  expect(p == nullptr && g_logger.has_error(from, "[edgevl_trt_plugin]", "scale must be >= 0"),
         "errors reach TensorRT's logger through the logger finder");
  expect(err.empty(), "with TensorRT's logger found, nothing is written to stderr");
  char junk[3] = {1, 2, 3};
  expect(logs_error([&] { expect(c.deserializePlugin("x", junk, 3) == nullptr, "V2 refuses 3 junk bytes"); },
                    "EdgevlAttention.deserializePlugin", "not this plugin's"),
         "a refused deserialisation names the plugin and the method in TensorRT's log");
#endif
}

// ------------------------------------------------------------------- guards (noexcept + throw)

// Run op with the k-th allocation failing, for k = 1, 2, ... until op makes fewer than k
// allocations: every failed run must return nullptr and log "<Plugin>.<method>: std::bad_alloc",
// and the last run must succeed. release(result) frees what op returned.
template <class Op, class Release>
void sweep_allocations(std::string const& what, std::string const& logged, Op op, Release release) {
  int failed_runs = 0;
  bool all_null = true, all_logged = true, succeeded = false;
  for (int k = 1; k <= 32; ++k) {
    decltype(op()) r = nullptr;
    bool hit = false;
    bool const log_ok = logs_error(
        [&] {
          g_fail_alloc_in = k;
          r = op();
          hit = g_fail_alloc_in == 0;
          g_fail_alloc_in = 0;
        },
        logged.c_str(), "bad_alloc");
    if (!hit) {
      succeeded = r != nullptr;
      if (r != nullptr) release(r);
      break;
    }
    ++failed_runs;
    all_null = all_null && r == nullptr;
    all_logged = all_logged && log_ok;
    if (r != nullptr) release(r);
  }
  expect(failed_runs > 0, (what + " allocates (the sweep failed at least one allocation)").c_str());
  expect(all_null, (what + " returns nullptr when an allocation fails").c_str());
  expect(all_logged, (what + " logs a failed allocation as " + logged + ": std::bad_alloc").c_str());
  expect(succeeded, (what + " succeeds once its allocations do").c_str());
}

template <class Kind>
void check_guards_of() {
  using namespace nvinfer1;
  std::string const name(Kind::kName);
  AllFields fields;
  auto fc = fields.f.fc();

  section("guards: IPluginV2DynamicExt");
  edgevl::CreatorV2<Kind> c2;
  c2.setPluginNamespace(kLongNamespace);
  sweep_allocations(
      name + " V2 createPlugin", name + ".createPlugin", [&] { return c2.createPlugin("x", &fc); },
      [](IPluginV2* p) { p->destroy(); });
  IPluginV2* p = c2.createPlugin("x", &fc);
  expect(p != nullptr && std::strcmp(p->getPluginNamespace(), kLongNamespace) == 0,
         "V2 createPlugin hands the creator's namespace to the plugin");
  if (p == nullptr) return;
  auto* d = static_cast<IPluginV2DynamicExt*>(p);
  std::vector<char> bytes(d->getSerializationSize());
  d->serialize(bytes.data());
  sweep_allocations(
      name + " V2 deserializePlugin", name + ".deserializePlugin",
      [&] { return c2.deserializePlugin("x", bytes.data(), bytes.size()); }, [](IPluginV2* q) { q->destroy(); });
  sweep_allocations(
      name + " V2 clone", name + ".clone", [&] { return d->clone(); }, [](IPluginV2DynamicExt* q) { q->destroy(); });

  p->destroy();

  // setPluginNamespace of a plugin and of a creator whose namespace is short (no heap buffer yet):
  // copying the long one allocates, and that allocation throws
  edgevl::CreatorV2<Kind> fresh;
  fresh.setPluginNamespace("short");
  IPluginV2* q = fresh.createPlugin("x", &fc);
  expect(q != nullptr, "V2 createPlugin with every plugin's fields");
  if (q == nullptr) return;
  bool const plugin_logged = logs_error(
      [&] {
        g_fail_alloc_in = 1;
        q->setPluginNamespace(kLongNamespace);
        g_fail_alloc_in = 0;
      },
      (name + ".setPluginNamespace").c_str(), "bad_alloc");
  expect(plugin_logged, (name + " V2 plugin setPluginNamespace catches and logs a failed allocation").c_str());
  expect(std::strcmp(q->getPluginNamespace(), "short") == 0,
         "V2 setPluginNamespace keeps the old namespace when the copy fails");
  bool const creator_logged = logs_error(
      [&] {
        g_fail_alloc_in = 1;
        fresh.setPluginNamespace(kLongNamespace);
        g_fail_alloc_in = 0;
      },
      (name + ".setPluginNamespace").c_str(), "bad_alloc");
  expect(creator_logged, (name + " V2 creator setPluginNamespace catches and logs a failed allocation").c_str());
  expect(std::strcmp(fresh.getPluginNamespace(), "short") == 0,
         "V2 creator setPluginNamespace keeps the old namespace when the copy fails");
  q->setPluginNamespace(kLongNamespace);
  expect(std::strcmp(q->getPluginNamespace(), kLongNamespace) == 0, "V2 setPluginNamespace sets the namespace");
  q->destroy();

#if EDGEVL_TRT_V3
  section("guards: IPluginV3");
  edgevl::CreatorV3<Kind> c3;
  sweep_allocations(
      name + " V3 createPlugin", name + ".createPlugin",
      [&] { return c3.createPlugin("x", &fc, TensorRTPhase::kBUILD); }, [](IPluginV3* q) { delete q; });
  IPluginV3* p3 = c3.createPlugin("x", &fc, TensorRTPhase::kBUILD);
  expect(p3 != nullptr, "V3 createPlugin with every plugin's fields");
  if (p3 == nullptr) return;
  auto* rt = static_cast<IPluginV3OneRuntime*>(p3->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
  sweep_allocations(
      name + " V3 clone", name + ".clone", [&] { return p3->clone(); }, [](IPluginV3* q) { delete q; });
  sweep_allocations(
      name + " V3 attachToContext", name + ".clone", [&] { return rt->attachToContext(nullptr); },
      [](IPluginV3* q) { delete q; });
  delete p3;
#endif
}

void check_guards() {
  check_guards_of<edgevl::Fp16Kind>();
  check_guards_of<edgevl::Int8Kind>();
  check_guards_of<edgevl::QuantizeKind>();
  check_guards_of<edgevl::LayerNormQuantizeKind>();
  check_guards_of<edgevl::DequantizeKind>();
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IONBF, 0);  // every line is out before a crash
  std::set_terminate(on_terminate);
  std::printf("TensorRT API %d (headers %d): IPluginV3 %s, logger finder %s\n", EDGEVL_TRT_API, EDGEVL_TRT_HEADERS_API,
              EDGEVL_TRT_V3 ? "yes" : "no", EDGEVL_TRT_LOGGER_FINDER ? "yes" : "no");
  check_registration();
  check_logging();  // leaves the test logger finder installed where the build has one
  check_guards();
  check_attention();
  check_row_ops();
#if EDGEVL_TRT_LOGGER_FINDER
  setLoggerFinder(nullptr);
#endif
  std::printf("plugin self-test: %s (%d failed)\n", g_failures == 0 ? "passed" : "FAILED", g_failures);
  return g_failures == 0 ? 0 : 1;
}
