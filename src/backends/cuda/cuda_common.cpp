#include "backends/cuda/cuda_common.h"

#include <atomic>

#include "common/check.h"

namespace mlprt::backend::cuda {
namespace {

std::atomic<size_t> g_device_bytes{0};
std::atomic<size_t> g_device_peak{0};

void count_allocation(size_t bytes) {
  const size_t now = g_device_bytes.fetch_add(bytes) + bytes;
  size_t peak = g_device_peak.load();
  while (now > peak && !g_device_peak.compare_exchange_weak(peak, now)) {
  }
}

}  // namespace

DeviceMemoryUsage device_memory_held() { return {g_device_bytes.load(), g_device_peak.load()}; }

const char* to_string(Precision precision) {
  switch (precision) {
    case Precision::kFp32: return "fp32";
    case Precision::kTf32: return "tf32";
    case Precision::kFp16: return "fp16";
    case Precision::kBf16: return "bf16";
  }
  return "?";
}

Result<Precision> parse_precision(const std::string& text) {
  for (Precision p : {Precision::kFp32, Precision::kTf32, Precision::kFp16, Precision::kBf16}) {
    if (text == to_string(p)) return p;
  }
  return make_error(StatusCode::kCorruptData, "cuda backend: precision '", text,
                    "' in the plan; allowed: fp32, tf32, fp16, bf16");
}

ElemType storage_type(Precision precision) {
  switch (precision) {
    case Precision::kFp16: return ElemType::kF16;
    case Precision::kBf16: return ElemType::kBF16;
    default: return ElemType::kF32;
  }
}

size_t storage_size(Precision precision) { return storage_type(precision) == ElemType::kF32 ? 4 : 2; }

Status cuda_status(cudaError_t error, const std::string& what) {
  return make_error(StatusCode::kInternal, "cuda backend: ", what, ": ", cudaGetErrorName(error), " (",
                    cudaGetErrorString(error), ")");
}

Status cublas_status(cublasStatus_t status, const std::string& what) {
  const StatusCode code =
      status == CUBLAS_STATUS_NOT_SUPPORTED ? StatusCode::kUnsupported : StatusCode::kInternal;
  return make_error(code, "cuda backend: ", what, ": cuBLASLt status ", static_cast<int>(status));
}

Status DeviceBuffer::reserve(size_t bytes, const std::string& what) {
  if (bytes <= m_bytes) return Status::ok();
  release();
  void* p = nullptr;
  MLPRT_CUDA_TRY(cudaMalloc(&p, bytes), "cudaMalloc of " + std::to_string(bytes) + " bytes for " + what);
  m_ptr = p;
  m_bytes = bytes;
  count_allocation(bytes);
  return Status::ok();
}

void DeviceBuffer::release() noexcept {
  if (m_ptr != nullptr) {
    cudaFree(m_ptr);
    g_device_bytes.fetch_sub(m_bytes);
  }
  m_ptr = nullptr;
  m_bytes = 0;
}

Status PinnedBuffer::reserve(size_t bytes, const std::string& what) {
  if (bytes <= m_bytes) return Status::ok();
  release();
  void* p = nullptr;
  MLPRT_CUDA_TRY(cudaMallocHost(&p, bytes),
                 "cudaMallocHost of " + std::to_string(bytes) + " bytes for " + what);
  m_ptr = p;
  m_bytes = bytes;
  return Status::ok();
}

void PinnedBuffer::release() noexcept {
  if (m_ptr != nullptr) cudaFreeHost(m_ptr);
  m_ptr = nullptr;
  m_bytes = 0;
}

Status use_device(int device) {
  int current = -1;
  MLPRT_CUDA_TRY(cudaGetDevice(&current), "cudaGetDevice");
  if (current != device) MLPRT_CUDA_TRY(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
  return Status::ok();
}

}  // namespace mlprt::backend::cuda
