#include "backends/cuda/cuda_data_kernels.h"

#include <algorithm>

#include "backends/cuda/cuda_activate.cuh"
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

// Threads (x, y) of a block: x picks one of kReduceCols outputs (adjacent outputs are adjacent
// in memory when the kept inner dim is contiguous, so loads coalesce), y one of kReduceRows
// slices of the reduced elements; the partial sums meet in shared memory. One thread per output
// looping over every reduced element was latency-bound (124 us for a [1, 196, 512] mean over
// tokens on an H200, where 16 blocks of 1024 threads take a few).
constexpr int kReduceCols = 32;
constexpr int kReduceRows = 32;

__device__ __forceinline__ int64_t reduced_offset(const ReduceShape& s, int64_t r) {
  if (s.reduced_rank == 1) return r * s.reduced_stride[0];
  int64_t off = 0;
  for (int d = s.reduced_rank - 1; d >= 0; --d) {
    off += (r % s.reduced_dims[d]) * s.reduced_stride[d];
    r /= s.reduced_dims[d];
  }
  return off;
}

__global__ void __launch_bounds__(kReduceCols* kReduceRows)
    reduce_mean_kernel(const void* __restrict__ x, void* __restrict__ y, ElemType type,
                       ReduceShape s, int64_t outputs) {
  __shared__ float partial[kReduceRows][kReduceCols + 1];
  for (int64_t first = int64_t{blockIdx.x} * kReduceCols; first < outputs;
       first += int64_t{gridDim.x} * kReduceCols) {
    const int64_t o = first + threadIdx.x;
    float sum = 0.0f;
    if (o < outputs) {
      int64_t rest = o;
      int64_t base = 0;
      for (int d = s.kept_rank - 1; d >= 0; --d) {
        base += (rest % s.kept_dims[d]) * s.kept_stride[d];
        rest /= s.kept_dims[d];
      }
      for (int64_t r = threadIdx.y; r < s.count; r += kReduceRows) {
        sum += load_elem(x, type, base + reduced_offset(s, r));
      }
    }
    partial[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && o < outputs) {
      float total = 0.0f;
      for (int i = 0; i < kReduceRows; ++i) total += partial[i][threadIdx.x];
      store_elem(y, type, o,
                 s.count > 0 ? total / static_cast<float>(s.count) : __int_as_float(0x7fc00000));
    }
    __syncthreads();
  }
}

// y = act(y + bias) over rows of `cols` elements: threads (x) walk a row, (y) pick rows, so no
// element needs a 64-bit division to find its bias. per_col: bias[col] (a product stored
// [m, n]); else bias[row % n] (a transposed product stored [n, m]).
__global__ void bias_activation_kernel(void* y, ElemType type, const float* __restrict__ bias,
                                       int64_t n, int64_t rows, int64_t cols, bool per_col,
                                       ActParams act) {
  for (int64_t row = int64_t{blockIdx.x} * blockDim.y + threadIdx.y; row < rows;
       row += int64_t{gridDim.x} * blockDim.y) {
    const float row_bias = per_col ? 0.0f : bias[row % n];
    const int64_t at = row * cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      float v = load_elem(y, type, at + c);
      v += per_col ? bias[c] : row_bias;
      store_elem(y, type, at + c, activate_dynamic(act, v));
    }
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
  const auto blocks = static_cast<unsigned>(
      std::min<int64_t>((outputs + kReduceCols - 1) / kReduceCols, kMaxBlocks));
  reduce_mean_kernel<<<blocks, dim3(kReduceCols, kReduceRows), 0, stream>>>(x, y, type, shape,
                                                                            outputs);
  return cudaGetLastError();
}

cudaError_t launch_bias_activation(void* y, ElemType type, const float* bias, int64_t n,
                                   int64_t every, int64_t total, const ActParams& act,
                                   cudaStream_t stream) {
  if (total <= 0 || (bias == nullptr && act.kind == ActKind::kNone)) return cudaSuccess;
  if (bias == nullptr) return launch_activation(y, y, type, act, total, stream);
  if (n <= 0) return cudaErrorInvalidValue;
  const bool per_col = every == 1;
  const int64_t cols = per_col ? n : every;
  const int64_t rows = total / cols;
  // 32..256 threads along a row, the rest of the 256 on further rows.
  const int x_threads = static_cast<int>(std::min<int64_t>(kThreads, (cols + 31) / 32 * 32));
  const int y_threads = kThreads / x_threads;
  const auto blocks =
      static_cast<unsigned>(std::min<int64_t>((rows + y_threads - 1) / y_threads, kMaxBlocks));
  bias_activation_kernel<<<blocks, dim3(x_threads, y_threads), 0, stream>>>(
      y, type, bias, n, rows, cols, per_col, act);
  return cudaGetLastError();
}

}  // namespace mlprt::backend::cuda
