#include "backends/cuda/cuda_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace mlprt::backend::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float load(const void* p, ElemType t, int64_t i) {
  switch (t) {
    case ElemType::kF16: return __half2float(static_cast<const __half*>(p)[i]);
    case ElemType::kBF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

__device__ __forceinline__ void store(void* p, ElemType t, int64_t i, float v) {
  switch (t) {
    case ElemType::kF16: static_cast<__half*>(p)[i] = __float2half_rn(v); break;
    case ElemType::kBF16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v); break;
    default: static_cast<float*>(p)[i] = v; break;
  }
}

unsigned grid_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65535 * 16 ? blocks : 65535 * 16);
}

__global__ void cast_kernel(const void* in, ElemType in_type, void* out, ElemType out_type,
                            int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    store(out, out_type, i, load(in, in_type, i));
  }
}

__global__ void relu_kernel(const void* in, void* out, ElemType type, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float v = load(in, type, i);
    store(out, type, i, v > 0.0f ? v : 0.0f);
  }
}

__global__ void add_kernel(const void* a, const void* b, void* y, ElemType type,
                           BroadcastShape shape, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    int64_t rest = i;
    int64_t ia = 0;
    int64_t ib = 0;
    for (int d = shape.rank - 1; d >= 0; --d) {
      const int64_t coord = rest % shape.dims[d];
      rest /= shape.dims[d];
      ia += coord * shape.stride_a[d];
      ib += coord * shape.stride_b[d];
    }
    store(y, type, i, load(a, type, ia) + load(b, type, ib));
  }
}

__global__ void fill_kernel(void* out, ElemType type, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    store(out, type, i, static_cast<float>(h & 0xffffu) / 32768.0f - 1.0f);
  }
}

// One block per row. Layer by layer, the row's activations stay in shared memory. Thread t
// handles output column t % n over the t / n-th slice of K, so that a warp reads consecutive
// weights of one row of W; the slices are then summed.
__global__ void __launch_bounds__(kThreads) fused_mlp_kernel(FusedMlpParams params,
                                                             const float* __restrict__ x,
                                                             float* __restrict__ y) {
  __shared__ float buf[2][kFusedMaxWidth];
  __shared__ float partial[kThreads];
  const int t = static_cast<int>(threadIdx.x);
  const int64_t row = blockIdx.x;
  const int k0 = params.layers[0].k;
  for (int i = t; i < k0; i += kThreads) buf[0][i] = x[row * k0 + i];
  __syncthreads();
  int cur = 0;
  for (int l = 0; l < params.num_layers; ++l) {
    const FusedMlpLayer layer = params.layers[l];
    const float* in = buf[cur];
    const bool last = l + 1 == params.num_layers;
    float* out = buf[cur ^ 1];
    if (layer.n * 2 > kThreads) {
      for (int col = t; col < layer.n; col += kThreads) {
        float acc = layer.bias ? layer.bias[col] : 0.0f;
        for (int k = 0; k < layer.k; ++k) acc = fmaf(in[k], layer.weights[k * layer.n + col], acc);
        if (layer.relu) acc = fmaxf(acc, 0.0f);
        if (last) {
          y[row * layer.n + col] = acc;
        } else {
          out[col] = acc;
        }
      }
    } else {
      const int slices = kThreads / layer.n;
      const int slice = t / layer.n;
      const int col = t % layer.n;
      if (slice < slices) {
        const int per = (layer.k + slices - 1) / slices;
        const int begin = slice * per;
        const int end = min(layer.k, begin + per);
        float acc = 0.0f;
        for (int k = begin; k < end; ++k) acc = fmaf(in[k], layer.weights[k * layer.n + col], acc);
        partial[slice * layer.n + col] = acc;
      }
      __syncthreads();
      if (t < layer.n) {
        float acc = layer.bias ? layer.bias[t] : 0.0f;
        for (int s = 0; s < slices; ++s) acc += partial[s * layer.n + t];
        if (layer.relu) acc = fmaxf(acc, 0.0f);
        if (last) {
          y[row * layer.n + t] = acc;
        } else {
          out[t] = acc;
        }
      }
    }
    __syncthreads();
    cur ^= 1;
  }
}

}  // namespace

cudaError_t launch_cast(const void* in, ElemType in_type, void* out, ElemType out_type, int64_t n,
                        cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  cast_kernel<<<grid_for(n), kThreads, 0, stream>>>(in, in_type, out, out_type, n);
  return cudaGetLastError();
}

cudaError_t launch_relu(const void* in, void* out, ElemType type, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  relu_kernel<<<grid_for(n), kThreads, 0, stream>>>(in, out, type, n);
  return cudaGetLastError();
}

cudaError_t launch_add(const void* a, const void* b, void* y, ElemType type,
                       const BroadcastShape& shape, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  add_kernel<<<grid_for(n), kThreads, 0, stream>>>(a, b, y, type, shape, n);
  return cudaGetLastError();
}

cudaError_t launch_fill_pattern(void* out, ElemType type, int64_t n, uint32_t seed,
                                cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  fill_kernel<<<grid_for(n), kThreads, 0, stream>>>(out, type, n, seed);
  return cudaGetLastError();
}

cudaError_t launch_fused_mlp(const FusedMlpParams& params, const float* x, float* y, int64_t rows,
                             cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (rows > 2147483647) return cudaErrorInvalidValue;
  fused_mlp_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(params, x, y);
  return cudaGetLastError();
}

}  // namespace mlprt::backend::cuda
