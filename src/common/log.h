#pragma once
// Internal logging entry point; see include/mlprt/logger.h for the public side.

#include <sstream>
#include <string_view>

#include "mlprt/logger.h"

namespace mlprt::detail {

void emit_log(Severity severity, std::string_view message);

template <typename... Parts>
void log(Severity severity, Parts&&... parts) {
  if (static_cast<int>(severity) > static_cast<int>(log_severity())) return;
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  emit_log(severity, os.str());
}

}  // namespace mlprt::detail
