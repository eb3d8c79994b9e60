#include "backends/cuda/device_limits.h"

#include <atomic>

#include <cuda_runtime.h>

namespace mlprt::backend::cuda {
namespace {

constexpr int kMaxDevices = 64;

int cached_attribute(cudaDeviceAttr attr, std::atomic<int> (&cache)[kMaxDevices], int fallback) {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices) {
    cudaGetLastError();
    return fallback;
  }
  int value = cache[device].load(std::memory_order_relaxed);
  if (value > 0) return value;
  if (cudaDeviceGetAttribute(&value, attr, device) != cudaSuccess || value <= 0) {
    cudaGetLastError();
    return fallback;
  }
  cache[device].store(value, std::memory_order_relaxed);
  return value;
}

}  // namespace

int current_sm_count() {
  static std::atomic<int> cache[kMaxDevices];
  return cached_attribute(cudaDevAttrMultiProcessorCount, cache, 132);
}

int current_sm_smem() {
  static std::atomic<int> cache[kMaxDevices];
  return cached_attribute(cudaDevAttrMaxSharedMemoryPerMultiprocessor, cache, 100 * 1024);
}

int current_max_block_smem() {
  static std::atomic<int> cache[kMaxDevices];
  return cached_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, cache, 48 * 1024);
}

}  // namespace mlprt::backend::cuda
