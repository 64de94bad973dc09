#include "common/logging.h"

#include <atomic>
#include <cstdio>

namespace edgevl {

namespace {
constexpr char kPrefix[] = "[edgevl_trt_plugin] ";

#if EDGEVL_TRT_LOGGER_FINDER
// atomic rather than a mutex: std::mutex::lock can throw, and every caller is noexcept
std::atomic<nvinfer1::ILoggerFinder*> g_finder{nullptr};
#endif

char const* severity_name(Severity s) noexcept {
  switch (s) {
    case Severity::kINTERNAL_ERROR: return "internal error";
    case Severity::kERROR: return "error";
    case Severity::kWARNING: return "warning";
    case Severity::kINFO: return "info";
    case Severity::kVERBOSE: return "verbose";
  }
  return "error";
}
}  // namespace

#if EDGEVL_TRT_LOGGER_FINDER
void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept { g_finder.store(finder); }
#endif

nvinfer1::ILogger* plugin_logger() noexcept {
#if EDGEVL_TRT_LOGGER_FINDER
  nvinfer1::ILoggerFinder* finder = g_finder.load();
  if (finder == nullptr) return nullptr;
  try {  // findLogger is not declared noexcept
    return finder->findLogger();
  } catch (...) {
    return nullptr;
  }
#else
  return nullptr;
#endif
}

void log(Severity severity, char const* msg) noexcept {
  char line[1024];
  std::snprintf(line, sizeof(line), "%s%s", kPrefix, msg == nullptr ? "(no message)" : msg);
  if (nvinfer1::ILogger* logger = plugin_logger(); logger != nullptr) {
    logger->log(severity, line);
    return;
  }
  std::fprintf(stderr, "%s (%s)\n", line, severity_name(severity));
}

void log_error(char const* msg) noexcept { log(Severity::kERROR, msg); }

void log_error(char const* plugin, char const* method, char const* detail) noexcept {
  char msg[1000];
  std::snprintf(msg, sizeof(msg), "%s.%s: %s", plugin == nullptr ? "?" : plugin, method == nullptr ? "?" : method,
                detail == nullptr ? "(no detail)" : detail);
  log(Severity::kERROR, msg);
}

}  // namespace edgevl
