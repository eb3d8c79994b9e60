#pragma once
// Shared pieces of the mlprt subcommands: exit codes, error printing, message building.

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mlprt/status.h"

namespace mlprt::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntimeError = 1;  ///< bad files, bad shapes, corrupt plans
inline constexpr int kExitUsageError = 2;    ///< bad flags or flag values

template <typename... Parts>
[[nodiscard]] std::string cat(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  return os.str();
}

/// Prints "mlprt: error: <message>" to stderr and returns `exit_code`.
int report_error(std::string_view message, int exit_code);
/// A library failure: exit 1.
int report_runtime_error(const Status& status);
/// A bad flag or flag value: exit 2, with a hint to --help.
int report_usage_error(std::string_view message);

/// Splits "a,b,c" at commas; empty items are kept so callers can refuse them.
[[nodiscard]] std::vector<std::string> split_list(std::string_view text);

/// Joins names as "'a', 'b'".
[[nodiscard]] std::string quoted_list(const std::vector<std::string>& names);

}  // namespace mlprt::cli
