#pragma once
// Shared pieces of the cuda backend: precisions, error conversion, owning device and pinned
// host buffers, the cuBLASLt handle.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "backends/cuda/cuda_kernels.h"
#include "mlprt/device.h"
#include "mlprt/status.h"
#include "mlprt/tensor.h"

namespace mlprt::backend::cuda {

/// What a layer computes in: fp32 and tf32 keep fp32 activations, fp16/bf16 keep 16-bit ones
/// (with fp32 accumulation).
enum class Precision : uint8_t { kFp32, kTf32, kFp16, kBf16 };

const char* to_string(Precision precision);
using mlprt::to_string;  // Dims, DataType: not hidden by the above
Result<Precision> parse_precision(const std::string& text);
ElemType storage_type(Precision precision);
size_t storage_size(Precision precision);

/// "cuda backend: <what>: cudaErrorMemoryAllocation (out of memory)"
Status cuda_status(cudaError_t error, const std::string& what);
Status cublas_status(cublasStatus_t status, const std::string& what);

#define MLPRT_CUDA_TRY(expr, what)                                   \
  do {                                                               \
    const cudaError_t mlprt_cuda_err_ = (expr);                      \
    if (mlprt_cuda_err_ != cudaSuccess) {                            \
      return ::mlprt::backend::cuda::cuda_status(mlprt_cuda_err_, what); \
    }                                                                \
  } while (0)

#define MLPRT_CUBLAS_TRY(expr, what)                                     \
  do {                                                                   \
    const cublasStatus_t mlprt_cublas_st_ = (expr);                      \
    if (mlprt_cublas_st_ != CUBLAS_STATUS_SUCCESS) {                     \
      return ::mlprt::backend::cuda::cublas_status(mlprt_cublas_st_, what); \
    }                                                                    \
  } while (0)

/// Bytes every DeviceBuffer of the process holds now, and the most at once (mlprt::device_memory_usage).
DeviceMemoryUsage device_memory_held();

/// cudaMalloc'd memory that only grows (counted in device_memory_held).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { release(); }
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : m_ptr(std::exchange(other.m_ptr, nullptr)), m_bytes(std::exchange(other.m_bytes, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      release();
      m_ptr = std::exchange(other.m_ptr, nullptr);
      m_bytes = std::exchange(other.m_bytes, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  Status reserve(size_t bytes, const std::string& what);
  [[nodiscard]] void* get() const noexcept { return m_ptr; }
  [[nodiscard]] size_t bytes() const noexcept { return m_bytes; }

 private:
  void release() noexcept;
  void* m_ptr = nullptr;
  size_t m_bytes = 0;
};

/// cudaMallocHost'd (page-locked) memory that only grows.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { release(); }
  PinnedBuffer(PinnedBuffer&& other) noexcept
      : m_ptr(std::exchange(other.m_ptr, nullptr)), m_bytes(std::exchange(other.m_bytes, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept {
    if (this != &other) {
      release();
      m_ptr = std::exchange(other.m_ptr, nullptr);
      m_bytes = std::exchange(other.m_bytes, 0);
    }
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  Status reserve(size_t bytes, const std::string& what);
  [[nodiscard]] void* get() const noexcept { return m_ptr; }

 private:
  void release() noexcept;
  void* m_ptr = nullptr;
  size_t m_bytes = 0;
};

/// A cuBLASLt handle. It holds no stream or workspace (cublasLtMatmul takes both), so one handle
/// serves every thread. Destroying one synchronizes the whole device, which invalidates stream
/// captures on other threads and races with their graph instantiation in the driver (a crash seen
/// on the H100): the engine owns one that outlives its contexts, rather than one per context.
class LtHandle {
 public:
  LtHandle() = default;
  ~LtHandle() {
    if (m_handle != nullptr) cublasLtDestroy(m_handle);
  }
  LtHandle(const LtHandle&) = delete;
  LtHandle& operator=(const LtHandle&) = delete;

  Status create() {
    if (m_handle == nullptr) MLPRT_CUBLAS_TRY(cublasLtCreate(&m_handle), "cublasLtCreate");
    return Status::ok();
  }
  [[nodiscard]] cublasLtHandle_t get() const noexcept { return m_handle; }

 private:
  cublasLtHandle_t m_handle = nullptr;
};

/// Makes `device` current on the calling thread if it is not already.
Status use_device(int device);

}  // namespace mlprt::backend::cuda
