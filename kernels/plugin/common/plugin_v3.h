// The IPluginV3 flavour of every plugin (IPluginV3OneCore / Build / Runtime with IPluginCreatorV3One,
// TensorRT >= 10), version kVersionV3 = "2", over a Kind (common/kind.h). It serialises its fields
// (Kind::serial_fields plus num_inputs), which its creator parses back at kRUNTIME.
//
// Every entry point that does more than return a constant or a member runs inside guard()
// (common/guard.h). Only compiled where EDGEVL_TRT_V3 (common/trt_api.h).
#pragma once

#include "common/trt_api.h"

#if EDGEVL_TRT_V3

#include <cstdint>

#include "NvInferRuntime.h"
#include "common/fields.h"
#include "common/guard.h"
#include "common/kind.h"
#include "common/logging.h"

namespace edgevl {

template <class Kind>
class PluginV3 final : public nvinfer1::IPluginV3,
                       public nvinfer1::IPluginV3OneCore,
                       public nvinfer1::IPluginV3OneBuild,
                       public nvinfer1::IPluginV3OneRuntime {
 public:
  using Attrs = typename Kind::Attrs;
  PluginV3(Attrs attrs, int32_t nb_inputs) noexcept : attrs_(attrs), nb_inputs_(nb_inputs) { refresh_fields(); }
  PluginV3(PluginV3 const& o) noexcept : attrs_(o.attrs_), nb_inputs_(o.nb_inputs_) { refresh_fields(); }
  PluginV3& operator=(PluginV3 const&) = delete;
  ~PluginV3() override = default;

  // IPluginV3
  nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override {
    switch (type) {
      case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
      case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
      case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    }
    return nullptr;
  }
  nvinfer1::IPluginV3* clone() noexcept override {
    return guard(Kind::kName, "clone", static_cast<nvinfer1::IPluginV3*>(nullptr),
                 [&] { return new PluginV3(*this); });
  }

  // core
  nvinfer1::AsciiChar const* getPluginName() const noexcept override { return Kind::kName; }
  nvinfer1::AsciiChar const* getPluginVersion() const noexcept override { return kVersionV3; }
  nvinfer1::AsciiChar const* getPluginNamespace() const noexcept override { return kPluginNamespace; }

  // build
  int32_t getNbOutputs() const noexcept override { return Kind::kOutputs; }
  int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* /*in*/, int32_t nbInputs,
                          nvinfer1::DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept override {
    return guard(Kind::kName, "configurePlugin", int32_t{-1}, [&] { return set_io("configurePlugin", nbInputs, nbOutputs); });
  }
  int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs, nvinfer1::DataType const* inputTypes,
                             int32_t nbInputs) const noexcept override {
    return guard(Kind::kName, "getOutputDataTypes", int32_t{-1}, [&] {
      if (outputTypes == nullptr || !io_ok<Kind>(nbInputs, nbOutputs)) return int32_t{-1};
      for (int32_t i = 0; i < nbOutputs; ++i) outputTypes[i] = Kind::output_type(attrs_, i, inputTypes);
      return int32_t{0};
    });
  }
  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* /*shapeIn*/,
                          int32_t /*nbShapeInputs*/, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                          nvinfer1::IExprBuilder& exprBuilder) noexcept override {
    return guard(Kind::kName, "getOutputShapes", int32_t{-1}, [&] {
      if (inputs == nullptr || outputs == nullptr || !io_ok<Kind>(nbInputs, nbOutputs) ||
          !Kind::output_dims(inputs, nbInputs, outputs, exprBuilder)) {
        log_error(Kind::kName, "getOutputShapes", "unsupported inputs");
        return int32_t{-1};
      }
      return int32_t{0};
    });
  }
  bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                 int32_t nbOutputs) noexcept override {
    return guard(Kind::kName, "supportsFormatCombination", false, [&] {
      if (inOut == nullptr || !io_ok<Kind>(nbInputs, nbOutputs) || pos < 0 || pos >= nbInputs + nbOutputs) {
        return false;
      }
      nvinfer1::PluginTensorDesc descs[kMaxIO];
      for (int32_t i = 0; i <= pos; ++i) descs[i] = inOut[i].desc;
      return Kind::supports(attrs_, pos, descs, nbInputs);
    });
  }
  size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* /*inputs*/, int32_t /*nbInputs*/,
                          nvinfer1::DynamicPluginTensorDesc const* /*outputs*/,
                          int32_t /*nbOutputs*/) const noexcept override {
    return 0;  // the kernels keep their tiles in shared memory and registers
  }

  // runtime
  int32_t onShapeChange(nvinfer1::PluginTensorDesc const* /*in*/, int32_t nbInputs,
                        nvinfer1::PluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept override {
    return guard(Kind::kName, "onShapeChange", int32_t{-1},
                 [&] { return set_io("onShapeChange", nbInputs, nbOutputs); });
  }
  int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* /*outputDesc*/,
                  void const* const* inputs, void* const* outputs, void* /*workspace*/,
                  cudaStream_t stream) noexcept override {
    return guard(Kind::kName, "enqueue", int32_t{-1},
                 [&] { return Kind::enqueue(attrs_, inputDesc, nb_inputs_, inputs, outputs, stream); });
  }
  nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* /*context*/) noexcept override {
    return clone();
  }
  nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override {
    return guard(Kind::kName, "getFieldsToSerialize", static_cast<nvinfer1::PluginFieldCollection const*>(nullptr),
                 [&] {
                   refresh_fields();
                   return static_cast<nvinfer1::PluginFieldCollection const*>(&fc_);
                 });
  }

  Attrs const& attrs() const noexcept { return attrs_; }
  int32_t nb_inputs() const noexcept { return nb_inputs_; }

 private:
  int32_t set_io(char const* method, int32_t nbInputs, int32_t nbOutputs) noexcept {
    if (!io_ok<Kind>(nbInputs, nbOutputs)) {
      log_error(Kind::kName, method, "unexpected number of inputs or outputs");
      return -1;
    }
    nb_inputs_ = nbInputs;
    return 0;
  }
  void refresh_fields() noexcept {
    int32_t n = Kind::serial_fields(attrs_, fields_);
    fields_[n++] = nvinfer1::PluginField("num_inputs", &nb_inputs_, nvinfer1::PluginFieldType::kINT32, 1);
    fc_.nbFields = n;
    fc_.fields = fields_;
  }

  Attrs attrs_;
  int32_t nb_inputs_;
  nvinfer1::PluginField fields_[kMaxSerialFields];
  nvinfer1::PluginFieldCollection fc_{};
};

template <class Kind>
class CreatorV3 final : public nvinfer1::IPluginCreatorV3One {
 public:
  nvinfer1::IPluginV3* createPlugin(nvinfer1::AsciiChar const* /*name*/, nvinfer1::PluginFieldCollection const* fc,
                                    nvinfer1::TensorRTPhase /*phase*/) noexcept override {
    return guard(Kind::kName, "createPlugin", static_cast<nvinfer1::IPluginV3*>(nullptr),
                 [&]() -> nvinfer1::IPluginV3* {
                   typename Kind::Attrs attrs{};
                   if (!parse_fields(fc, attrs)) return nullptr;  // parse_fields logged why
                   // num_inputs: written by getFieldsToSerialize; absent at build time (the ONNX node)
                   int32_t n = Kind::kMaxIn;
                   if (find_int(fc, "num_inputs", n) && (n < Kind::kMinIn || n > Kind::kMaxIn)) {
                     log_error(Kind::kName, "createPlugin", "field 'num_inputs' is out of range");
                     return nullptr;
                   }
                   return new PluginV3<Kind>(attrs, n);
                 });
  }
  nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override { return Kind::fields(); }
  nvinfer1::AsciiChar const* getPluginName() const noexcept override { return Kind::kName; }
  nvinfer1::AsciiChar const* getPluginVersion() const noexcept override { return kVersionV3; }
  nvinfer1::AsciiChar const* getPluginNamespace() const noexcept override { return kPluginNamespace; }
};

}  // namespace edgevl

#endif  // EDGEVL_TRT_V3
