#pragma once
// The cuda backend: Dense layers on cuBLASLt with fused epilogues, our own kernels for the
// other ops, tactics timed on the GPU at build time, CUDA graphs at run time.

#include "backends/backend.h"
#include "mlprt/device.h"

namespace mlprt::backend {

const Backend& cuda_backend();

/// Makes GPU `index` current for engines loaded afterwards on the calling thread.
Status select_cuda_device(int index);
/// mlprt::device_memory_usage() of a build with the cuda backend.
DeviceMemoryUsage cuda_device_memory();

}  // namespace mlprt::backend
