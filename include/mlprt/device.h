#pragma once
/// @file device.h
/// GPU selection for the cuda backend (like cudaSetDevice): engines built or loaded afterwards
/// on the calling thread use that GPU, and their contexts stay on it.

#include <cstddef>

#include "mlprt/status.h"

namespace mlprt {

/// Makes GPU `index` current on the calling thread. Error if the index does not exist or this
/// build has no cuda backend (index 0 is then accepted: the cpu).
Status set_device(int index);

/// Device memory that mlprt itself holds in this process, on every GPU: the weights, activation
/// buffers and workspaces of all live engines and execution contexts (not the CUDA runtime's
/// own context, nor memory a caller allocates). Zero without a cuda backend.
struct DeviceMemoryUsage {
  size_t current_bytes = 0;  ///< held now
  size_t peak_bytes = 0;     ///< most held at once since the process started
};
DeviceMemoryUsage device_memory_usage();

}  // namespace mlprt
