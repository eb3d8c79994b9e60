#pragma once
// TensorRT's TensorIOMode has NONE (a name that is not an I/O tensor) beside INPUT and OUTPUT.

#include <cstdint>

#include "mlprt/tensor.h"

namespace mlprt::python {

enum class IOMode : uint8_t { kNone, kInput, kOutput };

inline IOMode to_io_mode(TensorIOMode mode) {
  return mode == TensorIOMode::kInput ? IOMode::kInput : IOMode::kOutput;
}

}  // namespace mlprt::python
