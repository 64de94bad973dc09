// The IPluginV2DynamicExt flavour of every plugin (TensorRT 8.5 / 8.6 on JetPack 5.1 / 6.0, still
// accepted by 10.x), version kVersionV2 = "1", over a Kind (common/kind.h). Its serialisation is the
// Kind's tagged bytes (Attrs::serialize / deserialize).
//
// Every entry point that does more than return a constant or a member runs inside guard()
// (common/guard.h): the namespace strings and the `new` of clone/createPlugin/deserializePlugin can
// throw std::bad_alloc, and nothing may leave a noexcept method.
#pragma once

#include <cstdint>
#include <string>

#include "NvInferRuntime.h"
#include "common/guard.h"
#include "common/kind.h"
#include "common/logging.h"
#include "common/trt_api.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // IPluginV2DynamicExt is deprecated in 10.x
#endif

namespace edgevl {

template <class Kind>
class PluginV2 final : public nvinfer1::IPluginV2DynamicExt {
 public:
  using Attrs = typename Kind::Attrs;
  // may throw (the namespace copy): callers construct inside guard()
  PluginV2(Attrs attrs, char const* ns) : attrs_(attrs), ns_(ns == nullptr ? "" : ns) {}
  PluginV2(PluginV2 const&) = default;
  PluginV2& operator=(PluginV2 const&) = delete;
  ~PluginV2() override = default;

  nvinfer1::AsciiChar const* getPluginType() const noexcept override { return Kind::kName; }
  nvinfer1::AsciiChar const* getPluginVersion() const noexcept override { return kVersionV2; }
  int32_t getNbOutputs() const noexcept override { return Kind::kOutputs; }
  int32_t initialize() noexcept override { return 0; }
  void terminate() noexcept override {}
  size_t getSerializationSize() const noexcept override { return Attrs::kSerialSize; }
  void serialize(void* buffer) const noexcept override {
    guard(Kind::kName, "serialize", [&] {
      if (buffer != nullptr) attrs_.serialize(buffer);
    });
  }
  void destroy() noexcept override { delete this; }
  void setPluginNamespace(nvinfer1::AsciiChar const* ns) noexcept override {
    guard(Kind::kName, "setPluginNamespace", [&] { ns_ = ns == nullptr ? "" : ns; });
  }
  nvinfer1::AsciiChar const* getPluginNamespace() const noexcept override { return ns_.c_str(); }

  nvinfer1::DataType getOutputDataType(int32_t index, nvinfer1::DataType const* inputTypes,
                                       int32_t /*nbInputs*/) const noexcept override {
    return guard(Kind::kName, "getOutputDataType", nvinfer1::DataType::kFLOAT,
                 [&] { return Kind::output_type(attrs_, index, inputTypes); });
  }
  nvinfer1::IPluginV2DynamicExt* clone() const noexcept override {
    return guard(Kind::kName, "clone", static_cast<nvinfer1::IPluginV2DynamicExt*>(nullptr),
                 [&] { return new PluginV2(*this); });
  }
  nvinfer1::DimsExprs getOutputDimensions(int32_t outputIndex, nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                                          nvinfer1::IExprBuilder& exprBuilder) noexcept override {
    // nbDims 0 on failure: TensorRT reports it
    return guard(Kind::kName, "getOutputDimensions", nvinfer1::DimsExprs{}, [&] {
      nvinfer1::DimsExprs out[Kind::kOutputs]{};
      if (inputs == nullptr || outputIndex < 0 || outputIndex >= Kind::kOutputs ||
          !Kind::output_dims(inputs, nbInputs, out, exprBuilder)) {
        log_error(Kind::kName, "getOutputDimensions", "unsupported input rank or output index");
        return nvinfer1::DimsExprs{};
      }
      return out[outputIndex];
    });
  }
  bool supportsFormatCombination(int32_t pos, nvinfer1::PluginTensorDesc const* inOut, int32_t nbInputs,
                                 int32_t nbOutputs) noexcept override {
    return guard(Kind::kName, "supportsFormatCombination", false, [&] {
      if (inOut == nullptr || !io_ok<Kind>(nbInputs, nbOutputs) || pos < 0 || pos >= nbInputs + nbOutputs) {
        return false;
      }
      return Kind::supports(attrs_, pos, inOut, nbInputs);
    });
  }
  void configurePlugin(nvinfer1::DynamicPluginTensorDesc const* /*in*/, int32_t nbInputs,
                       nvinfer1::DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept override {
    guard(Kind::kName, "configurePlugin", [&] {
      if (io_ok<Kind>(nbInputs, nbOutputs)) {
        nb_inputs_ = nbInputs;
      } else {
        log_error(Kind::kName, "configurePlugin", "unexpected number of inputs or outputs");
      }
    });
  }
  size_t getWorkspaceSize(nvinfer1::PluginTensorDesc const* /*inputs*/, int32_t /*nbInputs*/,
                          nvinfer1::PluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept override {
    return 0;  // the kernels keep their tiles in shared memory and registers
  }
  int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* /*outputDesc*/,
                  void const* const* inputs, void* const* outputs, void* /*workspace*/,
                  cudaStream_t stream) noexcept override {
    return guard(Kind::kName, "enqueue", int32_t{-1},
                 [&] { return Kind::enqueue(attrs_, inputDesc, nb_inputs_, inputs, outputs, stream); });
  }

  Attrs const& attrs() const noexcept { return attrs_; }

 private:
  Attrs attrs_;
  std::string ns_;
  int32_t nb_inputs_{Kind::kMinIn};
};

template <class Kind>
class CreatorV2 final : public nvinfer1::IPluginCreator {
 public:
  nvinfer1::AsciiChar const* getPluginName() const noexcept override { return Kind::kName; }
  nvinfer1::AsciiChar const* getPluginVersion() const noexcept override { return kVersionV2; }
  nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override { return Kind::fields(); }
  nvinfer1::IPluginV2* createPlugin(nvinfer1::AsciiChar const* /*name*/,
                                    nvinfer1::PluginFieldCollection const* fc) noexcept override {
    return guard(Kind::kName, "createPlugin", static_cast<nvinfer1::IPluginV2*>(nullptr),
                 [&]() -> nvinfer1::IPluginV2* {
                   typename Kind::Attrs attrs{};
                   if (!parse_fields(fc, attrs)) return nullptr;  // parse_fields logged why
                   return new PluginV2<Kind>(attrs, ns_.c_str());
                 });
  }
  nvinfer1::IPluginV2* deserializePlugin(nvinfer1::AsciiChar const* /*name*/, void const* serialData,
                                         size_t serialLength) noexcept override {
    return guard(Kind::kName, "deserializePlugin", static_cast<nvinfer1::IPluginV2*>(nullptr),
                 [&]() -> nvinfer1::IPluginV2* {
                   typename Kind::Attrs attrs{};
                   if (!attrs.deserialize(serialData, serialLength)) {
                     log_error(Kind::kName, "deserializePlugin",
                               "the serialised data is not this plugin's version 1 attributes");
                     return nullptr;
                   }
                   return new PluginV2<Kind>(attrs, ns_.c_str());
                 });
  }
  void setPluginNamespace(nvinfer1::AsciiChar const* ns) noexcept override {
    guard(Kind::kName, "setPluginNamespace", [&] { ns_ = ns == nullptr ? "" : ns; });
  }
  nvinfer1::AsciiChar const* getPluginNamespace() const noexcept override { return ns_.c_str(); }

 private:
  std::string ns_;
};

}  // namespace edgevl

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
