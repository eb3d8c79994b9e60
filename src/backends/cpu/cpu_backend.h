#pragma once
// The cpu backend (oneDNN). Only backends/registry.cpp includes this header.

#include "backends/backend.h"

namespace mlprt::backend {

/// The process-wide cpu backend instance.
const Backend& cpu_backend();

}  // namespace mlprt::backend
