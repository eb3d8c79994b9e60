#pragma once
// The current device's limits that kernel launches size their grids and shared memory by,
// queried once per device and cached (launches ask at every call). When a query fails, a
// conservative value (and the error is cleared, so that it does not surface at the next call).

namespace mlprt::backend::cuda {

/// Streaming multiprocessors (132 if unknown).
int current_sm_count();
/// Shared memory per SM, in bytes (100 KiB if unknown).
int current_sm_smem();
/// Shared memory one block may opt in to, in bytes (48 KiB if unknown).
int current_max_block_smem();

}  // namespace mlprt::backend::cuda
