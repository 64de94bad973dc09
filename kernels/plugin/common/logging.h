// Error reporting for the plugin library: through TensorRT's logger when TensorRT has handed the
// library a logger finder (setLoggerFinder, TensorRT >= 8.6: IPluginRegistry::loadLibrary,
// trtexec --dynamicPlugins, version-compatible plans), else to stderr (a library loaded with
// ctypes.CDLL(..., RTLD_GLOBAL) and registered statically gets no finder). Nothing here allocates
// or throws: messages are formatted into a fixed buffer and cut at 1023 bytes.
#pragma once

#include "NvInferRuntime.h"
#include "common/trt_api.h"

namespace edgevl {

using Severity = nvinfer1::ILogger::Severity;

#if EDGEVL_TRT_LOGGER_FINDER
// The finder TensorRT passed to setLoggerFinder (a later call replaces it; nullptr goes back to stderr).
void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept;
#endif

// TensorRT's logger for the calling thread through the finder, or nullptr (no finder, or it has none).
nvinfer1::ILogger* plugin_logger() noexcept;

// "[edgevl_trt_plugin] <msg>" at the given severity, to TensorRT's logger or stderr.
void log(Severity severity, char const* msg) noexcept;
void log_error(char const* msg) noexcept;
// "[edgevl_trt_plugin] <plugin>.<method>: <detail>" at kERROR.
void log_error(char const* plugin, char const* method, char const* detail) noexcept;

}  // namespace edgevl
