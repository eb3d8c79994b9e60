#include <atomic>
#include <iostream>
#include <mutex>

#include "common/log.h"

namespace mlprt {
namespace {

std::mutex g_mutex;
LogCallback g_callback;
std::atomic<int> g_severity{static_cast<int>(Severity::kWarning)};

const char* severity_name(Severity severity) {
  switch (severity) {
    case Severity::kError: return "error";
    case Severity::kWarning: return "warning";
    case Severity::kInfo: return "info";
    case Severity::kVerbose: return "verbose";
  }
  return "?";
}

}  // namespace

void set_log_callback(LogCallback callback) {
  std::lock_guard lock(g_mutex);
  g_callback = std::move(callback);
}

void set_log_severity(Severity max_severity) { g_severity = static_cast<int>(max_severity); }

Severity log_severity() { return static_cast<Severity>(g_severity.load()); }

namespace detail {

void emit_log(Severity severity, std::string_view message) {
  std::lock_guard lock(g_mutex);
  if (g_callback) {
    g_callback(severity, message);
  } else {
    std::cerr << "mlprt: " << severity_name(severity) << ": " << message << '\n';
  }
}

}  // namespace detail
}  // namespace mlprt
