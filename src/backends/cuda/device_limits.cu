#include "backends/cuda/device_limits.h"

#include <atomic>

#include <cuda_runtime.h>

namespace mlprt::backend::cuda {
namespace {

// The current device's value from `query(device, &value)`, cached per device once positive.
template <typename Query>
int cached_value(std::atomic<int> (&cache)[kMaxDevices], int fallback, Query query) {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices) {
    cudaGetLastError();
    return fallback;
  }
  int value = cache[device].load(std::memory_order_relaxed);
  if (value > 0) return value;
  if (query(device, &value) != cudaSuccess || value <= 0) {
    cudaGetLastError();
    return fallback;
  }
  cache[device].store(value, std::memory_order_relaxed);
  return value;
}

int cached_attribute(cudaDeviceAttr attr, std::atomic<int> (&cache)[kMaxDevices], int fallback) {
  return cached_value(cache, fallback, [attr](int device, int* value) {
    return cudaDeviceGetAttribute(value, attr, device);
  });
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

int current_compute_capability() {
  static std::atomic<int> cache[kMaxDevices];
  return cached_value(cache, 0, [](int device, int* value) {
    int major = 0;
    int minor = 0;
    cudaError_t err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    if (err == cudaSuccess) {
      err = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
    }
    *value = major * 10 + minor;
    return err;
  });
}

cudaError_t opt_in_block_smem(const void* kernel, std::atomic<bool> (&done)[kMaxDevices]) {
  int device = 0;
  if (const cudaError_t err = cudaGetDevice(&device); err != cudaSuccess) return err;
  const bool cached = device >= 0 && device < kMaxDevices;
  if (cached && done[device].load(std::memory_order_acquire)) return cudaSuccess;
  const cudaError_t err = cudaFuncSetAttribute(
      kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, current_max_block_smem());
  if (err == cudaSuccess && cached) done[device].store(true, std::memory_order_release);
  return err;
}

}  // namespace mlprt::backend::cuda
