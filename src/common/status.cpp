#include "mlprt/status.h"

namespace mlprt {

const char* to_string(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kNotFound: return "not found";
    case StatusCode::kUnsupported: return "unsupported";
    case StatusCode::kOutOfRange: return "out of range";
    case StatusCode::kCorruptData: return "corrupt data";
    case StatusCode::kVersionMismatch: return "version mismatch";
    case StatusCode::kHardwareMismatch: return "hardware mismatch";
    case StatusCode::kIoError: return "i/o error";
    case StatusCode::kInternal: return "internal error";
  }
  return "unknown";
}

Status Status::with_context(const std::string& context) const {
  if (is_ok()) return *this;
  return Status(m_code, context + ": " + m_message);
}

}  // namespace mlprt
