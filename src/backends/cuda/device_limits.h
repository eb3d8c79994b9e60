#pragma once
// The current device's limits that kernel launches size their grids and shared memory by,
// queried once per device and cached (launches ask at every call). When a query fails, a
// conservative value (and the error is cleared, so that it does not surface at the next call).

#include <cuda_runtime.h>

#include <atomic>

namespace mlprt::backend::cuda {

/// Devices that the per-device caches hold (a device past them is asked again at every call).
inline constexpr int kMaxDevices = 64;

/// Streaming multiprocessors (132 if unknown).
int current_sm_count();
/// Shared memory per SM, in bytes (100 KiB if unknown).
int current_sm_smem();
/// Shared memory one block may opt in to, in bytes (48 KiB if unknown).
int current_max_block_smem();
/// Compute capability as major * 10 + minor (90 for Hopper; 0 if unknown).
int current_compute_capability();

/// Lets `kernel` take current_max_block_smem() bytes of dynamic shared memory, once per device:
/// `done` is the caller's flag per device for this kernel. The attribute is a ceiling only; each
/// launch still asks for what it needs.
cudaError_t opt_in_block_smem(const void* kernel, std::atomic<bool> (&done)[kMaxDevices]);

}  // namespace mlprt::backend::cuda
