// The error guard of every noexcept TensorRT entry point that does more than return a constant or a
// member: the body runs inside try/catch, an exception (std::bad_alloc from a std::string or a new,
// anything else) is logged through common/logging.h as "<plugin>.<method>: <what>" and the entry
// point returns TensorRT's failure value for it (nullptr, -1, false, 0, empty dims) instead of
// letting the exception reach the noexcept boundary, which would std::terminate the process.
//
//   IPluginV2DynamicExt* clone() const noexcept override {
//     return guard(Kind::kName, "clone", static_cast<IPluginV2DynamicExt*>(nullptr),
//                  [&] { return new PluginV2(*this); });
//   }
#pragma once

#include <exception>
#include <utility>

#include "common/logging.h"

namespace edgevl {

// body() or, when it throws, `fail` (logged)
template <class R, class F>
R guard(char const* plugin, char const* method, R fail, F&& body) noexcept {
  try {
    return std::forward<F>(body)();
  } catch (std::exception const& e) {
    log_error(plugin, method, e.what());
  } catch (...) {
    log_error(plugin, method, "unknown exception");
  }
  return fail;
}

// the same for a void entry point (setPluginNamespace, serialize, configurePlugin of V2)
template <class F>
void guard(char const* plugin, char const* method, F&& body) noexcept {
  try {
    std::forward<F>(body)();
  } catch (std::exception const& e) {
    log_error(plugin, method, e.what());
  } catch (...) {
    log_error(plugin, method, "unknown exception");
  }
}

}  // namespace edgevl
