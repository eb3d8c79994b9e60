#pragma once
#include "bindings.h"

namespace mlprt::python {

enum class LoggerSeverity { kInternalError, kError, kWarning, kInfo, kVerbose };

struct ILogger {
  LoggerSeverity min_severity = LoggerSeverity::kWarning;
  virtual ~ILogger() = default;
};

struct Logger : ILogger {
  explicit Logger(LoggerSeverity severity) { min_severity = severity; }
};

/// Makes `logger` (an ILogger, or None: no change) mlprt's process-wide log target.
void install_logger(nb::handle logger);

}  // namespace mlprt::python
