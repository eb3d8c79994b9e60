#include "backends/cuda/cuda_kernels.h"

#include "backends/cuda/cuda_activate.cuh"
#include "backends/cuda/cuda_elem_io.cuh"
#include "backends/cuda/device_limits.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

namespace mlprt::backend::cuda {
namespace {

constexpr int kThreads = 256;
// Grid-stride kernels launch at most this many blocks per SM: 4 waves of 8 resident blocks,
// enough to hide memory latency without paying for blocks that do nothing but exit.
constexpr int64_t kBlocksPerSm = 32;

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// V consecutive elements, loaded and stored as one 16-byte access (two for 8 floats).
template <typename T, int V>
struct alignas(sizeof(T) * V < 16 ? sizeof(T) * V : 16) Pack {
  T v[V];
};

// The widest pack of both types: 16 bytes of the narrower one.
template <typename In, typename Out>
constexpr int kPackWidth =
    static_cast<int>(16 / (sizeof(In) < sizeof(Out) ? sizeof(In) : sizeof(Out)));

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Blocks for `items` work items of one thread each, capped for a grid-stride loop; at least 1.
unsigned blocks_for(int64_t items) {
  const int64_t wanted = (items + kThreads - 1) / kThreads;
  const int64_t cap = int64_t{current_sm_count()} * kBlocksPerSm;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(wanted, cap)));
}


template <ActKind K>
struct ActOp {
  float alpha;
  float beta;
  __device__ __forceinline__ float operator()(float x) const { return activate<K>(x, alpha, beta); }
};

struct Identity {
  __device__ __forceinline__ float operator()(float x) const { return x; }
};

// y[i] = op(x[i]) over n elements: packs of V over a grid-stride loop, then the n % V tail
// element by element (one per thread of the first block). In place allowed (no __restrict__).
template <typename In, typename Out, int V, typename Op>
__global__ void __launch_bounds__(kThreads) map_kernel(const In* in, Out* out, int64_t n, Op op) {
  const int64_t packs = n / V;
  const int64_t first = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = first; i < packs; i += stride) {
    const Pack<In, V> a = reinterpret_cast<const Pack<In, V>*>(in)[i];
    Pack<Out, V> b;
#pragma unroll
    for (int j = 0; j < V; ++j) b.v[j] = from_float<Out>(op(to_float(a.v[j])));
    reinterpret_cast<Pack<Out, V>*>(out)[i] = b;
  }
  const int64_t tail = packs * V + first;
  if (tail < n) out[tail] = from_float<Out>(op(to_float(in[tail])));
}

template <typename In, typename Out, typename Op>
cudaError_t launch_map(const void* in, void* out, int64_t n, Op op, cudaStream_t stream) {
  constexpr int kV = kPackWidth<In, Out>;
  const In* x = static_cast<const In*>(in);
  Out* y = static_cast<Out*>(out);
  if (aligned16(in) && aligned16(out)) {
    map_kernel<In, Out, kV, Op><<<blocks_for(n / kV + 1), kThreads, 0, stream>>>(x, y, n, op);
  } else {
    map_kernel<In, Out, 1, Op><<<blocks_for(n), kThreads, 0, stream>>>(x, y, n, op);
  }
  return cudaGetLastError();
}

template <typename In>
cudaError_t launch_cast_from(const void* in, void* out, ElemType out_type, int64_t n,
                             cudaStream_t stream) {
  switch (out_type) {
    case ElemType::kF16: return launch_map<In, __half>(in, out, n, Identity{}, stream);
    case ElemType::kBF16: return launch_map<In, __nv_bfloat16>(in, out, n, Identity{}, stream);
    default: return launch_map<In, float>(in, out, n, Identity{}, stream);
  }
}

// Finds the kernel of `act.kind` among the instantiations K, K+1, ... (no table to keep in step
// with ActKind).
template <typename T, int K>
cudaError_t launch_activation_of(const void* in, void* out, const ActParams& act, int64_t n,
                                 cudaStream_t stream) {
  if constexpr (K < kActKindCount) {
    if (static_cast<int>(act.kind) == K) {
      return launch_map<T, T>(in, out, n, ActOp<static_cast<ActKind>(K)>{act.alpha, act.beta},
                              stream);
    }
    return launch_activation_of<T, K + 1>(in, out, act, n, stream);
  } else {
    return cudaErrorInvalidValue;
  }
}

template <BinaryOp Op>
__device__ __forceinline__ float binary_op(float u, float v) {
  if constexpr (Op == BinaryOp::kSub) return u - v;
  if constexpr (Op == BinaryOp::kMul) return u * v;
  if constexpr (Op == BinaryOp::kDiv) return u / v;
  if constexpr (Op == BinaryOp::kPow) return powf(u, v);
  return u + v;
}

__device__ __forceinline__ float binary_op(BinaryOp op, float u, float v) {
  switch (op) {
    case BinaryOp::kSub: return binary_op<BinaryOp::kSub>(u, v);
    case BinaryOp::kMul: return binary_op<BinaryOp::kMul>(u, v);
    case BinaryOp::kDiv: return binary_op<BinaryOp::kDiv>(u, v);
    case BinaryOp::kPow: return binary_op<BinaryOp::kPow>(u, v);
    default: return binary_op<BinaryOp::kAdd>(u, v);
  }
}

// y = a op b, all three of n elements.
template <typename T, int V, BinaryOp Op>
__global__ void __launch_bounds__(kThreads) binary_same_kernel(const T* a, const T* b, T* y,
                                                               int64_t n) {
  const int64_t packs = n / V;
  const int64_t first = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = first; i < packs; i += stride) {
    const Pack<T, V> u = reinterpret_cast<const Pack<T, V>*>(a)[i];
    const Pack<T, V> v = reinterpret_cast<const Pack<T, V>*>(b)[i];
    Pack<T, V> r;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      r.v[j] = from_float<T>(binary_op<Op>(to_float(u.v[j]), to_float(v.v[j])));
    }
    reinterpret_cast<Pack<T, V>*>(y)[i] = r;
  }
  const int64_t tail = packs * V + first;
  if (tail < n) y[tail] = from_float<T>(binary_op<Op>(to_float(a[tail]), to_float(b[tail])));
}

// One operand (`full`) has y's n elements, the other (`row`) c elements that repeat along y
// (a bias row, a scalar): y[i] = full[i] op row[i % c], or row[i % c] op full[i] when
// kRowFirst. The row is read element by element (it stays in L1).
template <typename T, int V, BinaryOp Op, bool kRowFirst>
__global__ void __launch_bounds__(kThreads) binary_row_kernel(const T* full, const T* row, T* y,
                                                              int64_t n, int64_t c) {
  const int64_t packs = n / V;
  const int64_t first = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = first; i < packs; i += stride) {
    const Pack<T, V> u = reinterpret_cast<const Pack<T, V>*>(full)[i];
    int64_t j = (i * V) % c;
    Pack<T, V> r;
#pragma unroll
    for (int e = 0; e < V; ++e) {
      const float f = to_float(u.v[e]);
      const float w = to_float(row[j]);
      r.v[e] = from_float<T>(kRowFirst ? binary_op<Op>(w, f) : binary_op<Op>(f, w));
      j = j + 1 == c ? 0 : j + 1;
    }
    reinterpret_cast<Pack<T, V>*>(y)[i] = r;
  }
  const int64_t tail = packs * V + first;
  if (tail < n) {
    const float f = to_float(full[tail]);
    const float w = to_float(row[tail % c]);
    y[tail] = from_float<T>(kRowFirst ? binary_op<Op>(w, f) : binary_op<Op>(f, w));
  }
}

// Any broadcast: each output index is split into coordinates and mapped through the strides.
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
    store_elem(y, type, i, binary_op(op, load_elem(a, type, ia), load_elem(b, type, ib)));
  }
}

// How an operand's strides lay it over the output: the size c of the trailing block it holds
// contiguously (it repeats over the leading dims); c == n: it has the output's layout; 0:
// neither (a general broadcast).
int64_t trailing_block(const BroadcastShape& shape, const int64_t* strides) {
  int64_t contiguous[kMaxRank];
  int64_t step = 1;
  for (int d = shape.rank - 1; d >= 0; --d) {
    contiguous[d] = step;
    step *= shape.dims[d];
  }
  int r = shape.rank;
  while (r > 0 && (shape.dims[r - 1] == 1 || strides[r - 1] == contiguous[r - 1])) --r;
  for (int d = 0; d < r; ++d) {
    if (shape.dims[d] != 1 && strides[d] != 0) return 0;
  }
  return r == 0 ? step : contiguous[r - 1];
}

template <typename T, BinaryOp Op>
cudaError_t launch_binary_fast(const T* a, const T* b, T* y, int64_t n, int64_t ca, int64_t cb,
                               cudaStream_t stream) {
  constexpr int kV = kPackWidth<T, T>;
  if (ca == n && cb == n) {
    if (aligned16(a) && aligned16(b) && aligned16(y)) {
      binary_same_kernel<T, kV, Op><<<blocks_for(n / kV + 1), kThreads, 0, stream>>>(a, b, y, n);
    } else {
      binary_same_kernel<T, 1, Op><<<blocks_for(n), kThreads, 0, stream>>>(a, b, y, n);
    }
  } else if (ca == n) {
    if (aligned16(a) && aligned16(y)) {
      binary_row_kernel<T, kV, Op, false>
          <<<blocks_for(n / kV + 1), kThreads, 0, stream>>>(a, b, y, n, cb);
    } else {
      binary_row_kernel<T, 1, Op, false><<<blocks_for(n), kThreads, 0, stream>>>(a, b, y, n, cb);
    }
  } else {
    if (aligned16(b) && aligned16(y)) {
      binary_row_kernel<T, kV, Op, true>
          <<<blocks_for(n / kV + 1), kThreads, 0, stream>>>(b, a, y, n, ca);
    } else {
      binary_row_kernel<T, 1, Op, true><<<blocks_for(n), kThreads, 0, stream>>>(b, a, y, n, ca);
    }
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_binary_fast(const void* a, const void* b, void* y, BinaryOp op, int64_t n,
                               int64_t ca, int64_t cb, cudaStream_t stream) {
  const T* u = static_cast<const T*>(a);
  const T* v = static_cast<const T*>(b);
  T* out = static_cast<T*>(y);
  switch (op) {
    case BinaryOp::kSub: return launch_binary_fast<T, BinaryOp::kSub>(u, v, out, n, ca, cb, stream);
    case BinaryOp::kMul: return launch_binary_fast<T, BinaryOp::kMul>(u, v, out, n, ca, cb, stream);
    case BinaryOp::kDiv: return launch_binary_fast<T, BinaryOp::kDiv>(u, v, out, n, ca, cb, stream);
    case BinaryOp::kPow: return launch_binary_fast<T, BinaryOp::kPow>(u, v, out, n, ca, cb, stream);
    default: return launch_binary_fast<T, BinaryOp::kAdd>(u, v, out, n, ca, cb, stream);
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
    mx = fmaxf(mx, load_elem(x, type, base + j * rows.inner));
  }
  mx = block_max(mx, scratch);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < rows.n; j += kThreads) {
    sum += expf(load_elem(x, type, base + j * rows.inner) - mx);
  }
  sum = block_sum(sum, scratch);
  const float shift = mx + logf(sum);
  const float inv = 1.0f / sum;
  for (int64_t j = threadIdx.x; j < rows.n; j += kThreads) {
    const float v = load_elem(x, type, base + j * rows.inner);
    store_elem(y, type, base + j * rows.inner, log ? v - shift : expf(v - mx) * inv);
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
  for (int64_t j = threadIdx.x; j < rows.n; j += kThreads) sum += load_elem(x, type, base + j);
  const float mean = block_sum(sum, scratch) / static_cast<float>(rows.n);
  float sq = 0.0f;
  for (int64_t j = threadIdx.x; j < rows.n; j += kThreads) {
    const float d = load_elem(x, type, base + j) - mean;
    sq += d * d;
  }
  const float inv = rsqrtf(block_sum(sq, scratch) / static_cast<float>(rows.n) + epsilon);
  for (int64_t j = threadIdx.x; j < rows.n; j += kThreads) {
    float v = (load_elem(x, type, base + j) - mean) * inv;
    if (scale_count) v *= scale[j % scale_count];
    if (shift_count) v += shift[j % shift_count];
    store_elem(y, type, base + j, v);
  }
}

// Rows of up to 32 * kPer elements: one warp per row, each lane holding kPer elements in
// registers, so the row is read once (the block-per-row kernel above reads it three times and
// synchronizes the block twice; 1.9x torch's time at [12544, 512] on an H200).
template <int kPer>
__global__ void __launch_bounds__(kThreads) layer_norm_warp_kernel(
    const void* x, void* y, ElemType type, int64_t rows, int64_t n, float epsilon,
    const float* scale, int64_t scale_count, const float* shift, int64_t shift_count) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t warps = int64_t{gridDim.x} * (kThreads / 32);
  for (int64_t row = int64_t{blockIdx.x} * (kThreads / 32) + threadIdx.x / 32; row < rows;
       row += warps) {
    const int64_t base = row * n;
    float v[kPer];
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int64_t j = lane + 32 * k;
      v[k] = j < n ? load_elem(x, type, base + j) : 0.0f;
      sum += v[k];
    }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    const float mean = sum / static_cast<float>(n);
    float sq = 0.0f;
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const float d = lane + 32 * k < n ? v[k] - mean : 0.0f;
      sq += d * d;
    }
    for (int o = 16; o > 0; o >>= 1) sq += __shfl_xor_sync(0xffffffffu, sq, o);
    const float inv = rsqrtf(sq / static_cast<float>(n) + epsilon);
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int64_t j = lane + 32 * k;
      if (j >= n) break;
      float out = (v[k] - mean) * inv;
      if (scale_count) out *= scale[scale_count == n ? j : j % scale_count];
      if (shift_count) out += shift[shift_count == n ? j : j % shift_count];
      store_elem(y, type, base + j, out);
    }
  }
}

// fp32 rows of n % 4 == 0 (16-byte aligned) up to 32 * 4 * kQuads wide: as above, each lane
// loading float4s (quad q of a row at lane + 32 q), a quarter of the load instructions.
template <int kQuads>
__global__ void __launch_bounds__(kThreads) layer_norm_warp_f4_kernel(
    const float4* x, float4* y, int64_t rows, int64_t n, float epsilon, const float* scale,
    int64_t scale_count, const float* shift, int64_t shift_count) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t quads = n / 4;
  const int64_t warps = int64_t{gridDim.x} * (kThreads / 32);
  for (int64_t row = int64_t{blockIdx.x} * (kThreads / 32) + threadIdx.x / 32; row < rows;
       row += warps) {
    const float4* in = x + row * quads;
    float4 v[kQuads];
    float sum = 0.0f;
#pragma unroll
    for (int q = 0; q < kQuads; ++q) {
      const int64_t at = lane + 32 * q;
      v[q] = at < quads ? in[at] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      sum += (v[q].x + v[q].y) + (v[q].z + v[q].w);
    }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    const float mean = sum / static_cast<float>(n);
    float sq = 0.0f;
#pragma unroll
    for (int q = 0; q < kQuads; ++q) {
      if (lane + 32 * q >= quads) continue;
      const float a = v[q].x - mean, b = v[q].y - mean, c = v[q].z - mean, d = v[q].w - mean;
      sq += (a * a + b * b) + (c * c + d * d);
    }
    for (int o = 16; o > 0; o >>= 1) sq += __shfl_xor_sync(0xffffffffu, sq, o);
    const float inv = rsqrtf(sq / static_cast<float>(n) + epsilon);
    float4* out = y + row * quads;
#pragma unroll
    for (int q = 0; q < kQuads; ++q) {
      const int64_t at = lane + 32 * q;
      if (at >= quads) break;
      float r[4] = {v[q].x, v[q].y, v[q].z, v[q].w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t j = 4 * at + e;
        r[e] = (r[e] - mean) * inv;
        if (scale_count) r[e] *= scale[scale_count == n ? j : j % scale_count];
        if (shift_count) r[e] += shift[shift_count == n ? j : j % shift_count];
      }
      out[at] = make_float4(r[0], r[1], r[2], r[3]);
    }
  }
}

__global__ void scale_shift_kernel(const void* x, void* y, ElemType type, RowShape rows,
                                   const float* scale, const float* shift, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t c = (i / rows.inner) % rows.n;
    store_elem(y, type, i, fmaf(load_elem(x, type, i), scale[c], shift[c]));
  }
}

__global__ void fill_kernel(void* out, ElemType type, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    store_elem(out, type, i, static_cast<float>(h & 0xffffu) / 32768.0f - 1.0f);
  }
}

// One block per row. Layer by layer, the row's activations stay in shared memory. Thread t
// handles output column t % n over the t / n-th slice of K, so that a warp reads consecutive
// weights of one row of W; the slices are then summed.
// The input and output keep the engine's I/O types (float, __half, __nv_bfloat16); the math is
// fp32.
template <typename In, typename Out>
__global__ void __launch_bounds__(kThreads) fused_mlp_kernel(FusedMlpParams params,
                                                             const In* __restrict__ x,
                                                             Out* __restrict__ y) {
  __shared__ float buf[2][kFusedMaxWidth];
  __shared__ float partial[kThreads];
  const int t = static_cast<int>(threadIdx.x);
  const int64_t row = blockIdx.x;
  const int k0 = params.layers[0].k;
  for (int i = t; i < k0; i += kThreads) buf[0][i] = to_float(x[row * k0 + i]);
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
          y[row * layer.n + col] = from_float<Out>(acc);
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
          y[row * layer.n + t] = from_float<Out>(acc);
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
  switch (in_type) {
    case ElemType::kF16: return launch_cast_from<__half>(in, out, out_type, n, stream);
    case ElemType::kBF16: return launch_cast_from<__nv_bfloat16>(in, out, out_type, n, stream);
    default: return launch_cast_from<float>(in, out, out_type, n, stream);
  }
}

cudaError_t launch_activation(const void* in, void* out, ElemType type, const ActParams& act,
                              int64_t n, cudaStream_t stream) {
  if (n <= 0 || (act.kind == ActKind::kNone && in == out)) return cudaSuccess;
  switch (type) {
    case ElemType::kF16: return launch_activation_of<__half, 0>(in, out, act, n, stream);
    case ElemType::kBF16: return launch_activation_of<__nv_bfloat16, 0>(in, out, act, n, stream);
    default: return launch_activation_of<float, 0>(in, out, act, n, stream);
  }
}

cudaError_t launch_binary(const void* a, const void* b, void* y, ElemType type, BinaryOp op,
                          const BroadcastShape& shape, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (shape.rank < 0 || shape.rank > kMaxRank) return cudaErrorInvalidValue;
  const int64_t ca = trailing_block(shape, shape.stride_a);
  const int64_t cb = trailing_block(shape, shape.stride_b);
  if ((ca == n && cb > 0) || (cb == n && ca > 0)) {
    switch (type) {
      case ElemType::kF16: return launch_binary_fast<__half>(a, b, y, op, n, ca, cb, stream);
      case ElemType::kBF16:
        return launch_binary_fast<__nv_bfloat16>(a, b, y, op, n, ca, cb, stream);
      default: return launch_binary_fast<float>(a, b, y, op, n, ca, cb, stream);
    }
  }
  binary_kernel<<<blocks_for(n), kThreads, 0, stream>>>(a, b, y, type, op, shape, n);
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
  const int64_t per_lane = (rows.n + 31) / 32;
  const unsigned warp_blocks = blocks_for(rows.outer * 32);
  if (type == ElemType::kF32 && rows.n % 4 == 0 && aligned16(x) && aligned16(y) &&
      per_lane <= 32) {
    const auto f4_kernel = [&](auto kernel) {
      kernel<<<warp_blocks, kThreads, 0, stream>>>(
          static_cast<const float4*>(x), static_cast<float4*>(y), rows.outer, rows.n, epsilon,
          scale, scale_count, shift, shift_count);
      return cudaGetLastError();
    };
    if (per_lane <= 4) return f4_kernel(layer_norm_warp_f4_kernel<1>);
    if (per_lane <= 8) return f4_kernel(layer_norm_warp_f4_kernel<2>);
    if (per_lane <= 16) return f4_kernel(layer_norm_warp_f4_kernel<4>);
    return f4_kernel(layer_norm_warp_f4_kernel<8>);
  }
  const auto warp_kernel = [&](auto kernel) {
    kernel<<<warp_blocks, kThreads, 0, stream>>>(x, y, type, rows.outer, rows.n, epsilon, scale,
                                                 scale_count, shift, shift_count);
    return cudaGetLastError();
  };
  if (per_lane <= 4) return warp_kernel(layer_norm_warp_kernel<4>);
  if (per_lane <= 8) return warp_kernel(layer_norm_warp_kernel<8>);
  if (per_lane <= 16) return warp_kernel(layer_norm_warp_kernel<16>);
  if (per_lane <= 32) return warp_kernel(layer_norm_warp_kernel<32>);
  layer_norm_kernel<<<static_cast<unsigned>(rows.outer), kThreads, 0, stream>>>(
      x, y, type, rows, epsilon, scale, scale_count, shift, shift_count);
  return cudaGetLastError();
}

cudaError_t launch_scale_shift(const void* x, void* y, ElemType type, const RowShape& rows,
                               const float* scale, const float* shift, cudaStream_t stream) {
  const int64_t total = rows.outer * rows.n * rows.inner;
  if (total <= 0) return cudaSuccess;
  scale_shift_kernel<<<blocks_for(total), kThreads, 0, stream>>>(x, y, type, rows, scale, shift,
                                                               total);
  return cudaGetLastError();
}

cudaError_t launch_fill_pattern(void* out, ElemType type, int64_t n, uint32_t seed,
                                cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  fill_kernel<<<blocks_for(n), kThreads, 0, stream>>>(out, type, n, seed);
  return cudaGetLastError();
}

namespace {

template <typename In>
cudaError_t launch_fused_from(const FusedMlpParams& params, const In* x, void* y, ElemType y_type,
                              unsigned rows, cudaStream_t stream) {
  switch (y_type) {
    case ElemType::kF32:
      fused_mlp_kernel<<<rows, kThreads, 0, stream>>>(params, x, static_cast<float*>(y));
      break;
    case ElemType::kF16:
      fused_mlp_kernel<<<rows, kThreads, 0, stream>>>(params, x, static_cast<__half*>(y));
      break;
    case ElemType::kBF16:
      fused_mlp_kernel<<<rows, kThreads, 0, stream>>>(params, x, static_cast<__nv_bfloat16*>(y));
      break;
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_fused_mlp(const FusedMlpParams& params, const void* x, ElemType x_type, void* y,
                             ElemType y_type, int64_t rows, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (rows > 2147483647) return cudaErrorInvalidValue;
  const auto blocks = static_cast<unsigned>(rows);
  switch (x_type) {
    case ElemType::kF32:
      return launch_fused_from(params, static_cast<const float*>(x), y, y_type, blocks, stream);
    case ElemType::kF16:
      return launch_fused_from(params, static_cast<const __half*>(x), y, y_type, blocks, stream);
    case ElemType::kBF16:
      return launch_fused_from(params, static_cast<const __nv_bfloat16*>(x), y, y_type, blocks,
                               stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace mlprt::backend::cuda
