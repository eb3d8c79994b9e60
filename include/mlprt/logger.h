#pragma once
/// @file logger.h
/// Process-wide logging through a settable callback. Thread-safe: the callback may be called
/// from any thread that uses mlprt, and must itself be thread-safe.

#include <functional>
#include <string_view>

namespace mlprt {

enum class Severity { kError = 0, kWarning = 1, kInfo = 2, kVerbose = 3 };

using LogCallback = std::function<void(Severity, std::string_view message)>;

/// Replaces the callback; an empty callback restores the default (stderr, "mlprt: <sev>: ...").
void set_log_callback(LogCallback callback);
/// Messages less severe than `max_severity` are dropped before the callback. Default: kWarning.
void set_log_severity(Severity max_severity);
[[nodiscard]] Severity log_severity();

}  // namespace mlprt
