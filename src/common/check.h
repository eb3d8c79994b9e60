#pragma once
// Internal error-propagation helpers. Public API functions never throw; these macros turn
// failures into Status values with context.

#include <sstream>
#include <string>
#include <utility>

#include "mlprt/status.h"

#define MLPRT_CONCAT_INNER(a, b) a##b
#define MLPRT_CONCAT(a, b) MLPRT_CONCAT_INNER(a, b)

/// Returns the Status of `expr` from the enclosing function if it is an error.
#define MLPRT_RETURN_IF_ERROR(expr)                     \
  do {                                                  \
    ::mlprt::Status mlprt_status_ = (expr);             \
    if (!mlprt_status_.is_ok()) return mlprt_status_;   \
  } while (0)

/// `MLPRT_ASSIGN_OR_RETURN(auto x, make_x());` declares x from a Result, or returns its error.
#define MLPRT_ASSIGN_OR_RETURN(lhs, expr) \
  MLPRT_ASSIGN_OR_RETURN_IMPL(MLPRT_CONCAT(mlprt_result_, __LINE__), lhs, expr)
#define MLPRT_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.is_ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

/// Internal invariant: on failure returns kInternal naming file:line (a bug in mlprt).
#define MLPRT_CHECK(cond, msg)                                                           \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::ostringstream mlprt_os_;                                                      \
      mlprt_os_ << __FILE__ << ":" << __LINE__ << ": internal check failed: " #cond ": " \
                << msg;                                                                  \
      return ::mlprt::Status(::mlprt::StatusCode::kInternal, mlprt_os_.str());           \
    }                                                                                    \
  } while (0)

namespace mlprt {

/// Builds a message from streamable parts: make_error(kInvalidArgument, "node ", name, " ...").
template <typename... Parts>
Status make_error(StatusCode code, Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  return Status(code, os.str());
}

}  // namespace mlprt
