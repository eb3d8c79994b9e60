#include "backends/cuda/cuda_data_kernels.h"

#include <algorithm>

#include "backends/cuda/cuda_elem_io.cuh"

namespace mlprt::backend::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;

int blocks_for(int64_t n) {
  return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks));
}


// Copies elements of T (4 or 2 bytes: the copy does not convert).
template <typename T>
__global__ void strided_copy_kernel(const T* __restrict__ x, T* __restrict__ y, GatherShape s,
                                    int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = i;
    int64_t src = s.offset;
    for (int d = s.rank - 1; d >= 0; --d) {
      src += (rest % s.dims[d]) * s.stride[d];
      rest /= s.dims[d];
    }
    y[i] = x[src];
  }
}

__global__ void reduce_mean_kernel(const void* __restrict__ x, void* __restrict__ y, ElemType type,
                                   ReduceShape s, int64_t outputs) {
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < outputs;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = o;
    int64_t base = 0;
    for (int d = s.kept_rank - 1; d >= 0; --d) {
      base += (rest % s.kept_dims[d]) * s.kept_stride[d];
      rest /= s.kept_dims[d];
    }
    float sum = 0.0f;
    for (int64_t r = 0; r < s.count; ++r) {
      int64_t left = r;
      int64_t off = base;
      for (int d = s.reduced_rank - 1; d >= 0; --d) {
        off += (left % s.reduced_dims[d]) * s.reduced_stride[d];
        left /= s.reduced_dims[d];
      }
      sum += load_elem(x, type, off);
    }
    store_elem(y, type, o,
               s.count > 0 ? sum / static_cast<float>(s.count) : __int_as_float(0x7fc00000));
  }
}

__global__ void add_bias_kernel(void* y, ElemType type, const float* __restrict__ bias, int64_t n,
                                int64_t every, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    store_elem(y, type, i, load_elem(y, type, i) + bias[(i / every) % n]);
  }
}

}  // namespace

cudaError_t launch_strided_copy(const void* x, void* y, ElemType type, const GatherShape& shape,
                                int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (type == ElemType::kF32) {
    strided_copy_kernel<float><<<blocks_for(n), kThreads, 0, stream>>>(
        static_cast<const float*>(x), static_cast<float*>(y), shape, n);
  } else {
    strided_copy_kernel<uint16_t><<<blocks_for(n), kThreads, 0, stream>>>(
        static_cast<const uint16_t*>(x), static_cast<uint16_t*>(y), shape, n);
  }
  return cudaGetLastError();
}

cudaError_t launch_reduce_mean(const void* x, void* y, ElemType type, const ReduceShape& shape,
                               int64_t outputs, cudaStream_t stream) {
  if (outputs <= 0) return cudaSuccess;
  reduce_mean_kernel<<<blocks_for(outputs), kThreads, 0, stream>>>(x, y, type, shape, outputs);
  return cudaGetLastError();
}

cudaError_t launch_add_bias(void* y, ElemType type, const float* bias, int64_t n, int64_t every,
                            int64_t total, cudaStream_t stream) {
  if (total <= 0 || n <= 0) return cudaSuccess;
  add_bias_kernel<<<blocks_for(total), kThreads, 0, stream>>>(y, type, bias, n,
                                                              std::max<int64_t>(every, 1), total);
  return cudaGetLastError();
}

}  // namespace mlprt::backend::cuda
