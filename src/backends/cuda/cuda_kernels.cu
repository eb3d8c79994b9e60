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

__device__ __forceinline__ float activate(const ActParams& a, float x) {
  switch (a.kind) {
    case ActKind::kRelu: return x > 0.0f ? x : 0.0f;
    case ActKind::kLeakyRelu: return x >= 0.0f ? x : a.alpha * x;
    case ActKind::kSigmoid: return 1.0f / (1.0f + expf(-x));
    case ActKind::kTanh: return tanhf(x);
    case ActKind::kElu: return x > 0.0f ? x : a.alpha * expm1f(x);
    case ActKind::kSelu: return a.beta * (x > 0.0f ? x : a.alpha * expm1f(x));
    case ActKind::kHardSigmoid: return fminf(fmaxf(a.alpha * x + a.beta, 0.0f), 1.0f);
    case ActKind::kHardSwish: return x * fminf(fmaxf(x / 6.0f + 0.5f, 0.0f), 1.0f);
    case ActKind::kSoftplus: return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
    case ActKind::kGeluErf: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
    case ActKind::kGeluTanh:
      return 0.5f * x * (1.0f + tanhf(0.79788456080286535588f * (x + 0.044715f * x * x * x)));
    case ActKind::kClip: return fminf(fmaxf(x, a.alpha), a.beta);
    default: return x;
  }
}

__global__ void activation_kernel(const void* in, void* out, ElemType type, ActParams act,
                                  int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    store(out, type, i, activate(act, load(in, type, i)));
  }
}

// fp32 specialization of the common case (contiguous float4 loads) is left out on purpose:
// these kernels sit between cuBLASLt calls whose cost dominates.
__device__ __forceinline__ float binary_op(BinaryOp op, float u, float v) {
  switch (op) {
    case BinaryOp::kSub: return u - v;
    case BinaryOp::kMul: return u * v;
    case BinaryOp::kDiv: return u / v;
    case BinaryOp::kPow: return powf(u, v);
    default: return u + v;
  }
}

__global__ void binary_kernel(const void* a, const void* b, void* y, ElemType type, BinaryOp op,
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
    store(y, type, i, binary_op(op, load(a, type, ia), load(b, type, ib)));
  }
}

// Block-wide reductions over kThreads threads; `scratch` holds one value per warp.
__device__ float block_max(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float r = scratch[0];
  for (int w = 1; w < kThreads / 32; ++w) r = fmaxf(r, scratch[w]);
  return r;
}

__device__ float block_sum(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float r = 0.0f;
  for (int w = 0; w < kThreads / 32; ++w) r += scratch[w];
  return r;
}

// One block per (outer, inner) row.
__global__ void __launch_bounds__(kThreads) softmax_kernel(const void* x, void* y, ElemType type,
                                                           RowShape rows, bool log) {
  __shared__ float scratch[kThreads / 32];
  const int64_t row = blockIdx.x;
  const int64_t base = (row / rows.inner) * rows.n * rows.inner + row % rows.inner;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < rows.n; j += kThreads) {
    mx = fmaxf(mx, load(x, type, base + j * rows.inner));
  }
  mx = block_max(mx, scratch);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < rows.n; j += kThreads) {
    sum += expf(load(x, type, base + j * rows.inner) - mx);
  }
  sum = block_sum(sum, scratch);
  const float shift = mx + logf(sum);
  const float inv = 1.0f / sum;
  for (int64_t j = threadIdx.x; j < rows.n; j += kThreads) {
    const float v = load(x, type, base + j * rows.inner);
    store(y, type, base + j * rows.inner, log ? v - shift : expf(v - mx) * inv);
  }
}

// One block per row; mean first, then the variance of the differences (two passes over the
// row, which stays in L1/L2 for the row sizes of MLPs).
__global__ void __launch_bounds__(kThreads) layer_norm_kernel(
    const void* x, void* y, ElemType type, RowShape rows, float epsilon, const float* scale,
    int64_t scale_count, const float* shift, int64_t shift_count) {
  __shared__ float scratch[kThreads / 32];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * rows.n;
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < rows.n; j += kThreads) sum += load(x, type, base + j);
  const float mean = block_sum(sum, scratch) / static_cast<float>(rows.n);
  float sq = 0.0f;
  for (int64_t j = threadIdx.x; j < rows.n; j += kThreads) {
    const float d = load(x, type, base + j) - mean;
    sq += d * d;
  }
  const float inv = rsqrtf(block_sum(sq, scratch) / static_cast<float>(rows.n) + epsilon);
  for (int64_t j = threadIdx.x; j < rows.n; j += kThreads) {
    float v = (load(x, type, base + j) - mean) * inv;
    if (scale_count) v *= scale[j % scale_count];
    if (shift_count) v += shift[j % shift_count];
    store(y, type, base + j, v);
  }
}

__global__ void scale_shift_kernel(const void* x, void* y, ElemType type, RowShape rows,
                                   const float* scale, const float* shift, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t c = (i / rows.inner) % rows.n;
    store(y, type, i, fmaf(load(x, type, i), scale[c], shift[c]));
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

cudaError_t launch_activation(const void* in, void* out, ElemType type, const ActParams& act,
                              int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  activation_kernel<<<grid_for(n), kThreads, 0, stream>>>(in, out, type, act, n);
  return cudaGetLastError();
}

cudaError_t launch_binary(const void* a, const void* b, void* y, ElemType type, BinaryOp op,
                          const BroadcastShape& shape, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  binary_kernel<<<grid_for(n), kThreads, 0, stream>>>(a, b, y, type, op, shape, n);
  return cudaGetLastError();
}

cudaError_t launch_softmax(const void* x, void* y, ElemType type, const RowShape& rows, bool log,
                           cudaStream_t stream) {
  const int64_t count = rows.outer * rows.inner;
  if (count <= 0 || rows.n <= 0) return cudaSuccess;
  if (count > 2147483647) return cudaErrorInvalidValue;
  softmax_kernel<<<static_cast<unsigned>(count), kThreads, 0, stream>>>(x, y, type, rows, log);
  return cudaGetLastError();
}

cudaError_t launch_layer_norm(const void* x, void* y, ElemType type, const RowShape& rows,
                              float epsilon, const float* scale, int64_t scale_count,
                              const float* shift, int64_t shift_count, cudaStream_t stream) {
  if (rows.outer <= 0 || rows.n <= 0) return cudaSuccess;
  if (rows.inner != 1 || rows.outer > 2147483647) return cudaErrorInvalidValue;
  layer_norm_kernel<<<static_cast<unsigned>(rows.outer), kThreads, 0, stream>>>(
      x, y, type, rows, epsilon, scale, scale_count, shift, shift_count);
  return cudaGetLastError();
}

cudaError_t launch_scale_shift(const void* x, void* y, ElemType type, const RowShape& rows,
                               const float* scale, const float* shift, cudaStream_t stream) {
  const int64_t total = rows.outer * rows.n * rows.inner;
  if (total <= 0) return cudaSuccess;
  scale_shift_kernel<<<grid_for(total), kThreads, 0, stream>>>(x, y, type, rows, scale, shift,
                                                               total);
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
