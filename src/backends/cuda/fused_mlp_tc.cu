#include "backends/cuda/fused_mlp_tc.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "backends/cuda/cuda_activate.cuh"

namespace mlprt::backend::cuda {
namespace {

constexpr int kRows = kFusedTcRowsPerBlock;
constexpr int kChunk = kFusedTcChunk;
constexpr int kRowWarps = 4;           // warps along the rows: 32 rows each
constexpr int kChunkLd = kChunk + 8;   // +16 bytes per row: ldmatrix rows hit distinct banks
constexpr int kMaxDevices = 64;

template <int CW>
struct Shape {
  static constexpr int kThreads = 32 * kRowWarps * CW;
  static constexpr int kActLd = 64 * CW + 8;
  static constexpr int kActElems = kRows * kActLd;
  static constexpr int kWElems = 64 * CW * kChunkLd;  // one stage of a weight chunk
  static constexpr int kXElems = kRows * kChunkLd;    // one stage of an input chunk
  static constexpr size_t bytes(size_t elem) {
    return elem * (kActElems + 2 * kWElems + 2 * kXElems);
  }
};

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int size = valid ? 16 : 0;  // 0: the 16 bytes are zero-filled, nothing read
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(size));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

template <typename T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  if constexpr (sizeof(T) == 2 && std::is_same_v<T, __half>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

template <typename T>
__device__ __forceinline__ T to_t(float v);
template <>
__device__ __forceinline__ __half to_t<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 to_t<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

__device__ __forceinline__ float load_any(const void* p, ElemType t, int64_t i) {
  switch (t) {
    case ElemType::kF16: return __half2float(static_cast<const __half*>(p)[i]);
    case ElemType::kBF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

__device__ __forceinline__ void store_any(void* p, ElemType t, int64_t i, float v) {
  switch (t) {
    case ElemType::kF16: static_cast<__half*>(p)[i] = __float2half_rn(v); break;
    case ElemType::kBF16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v); break;
    default: static_cast<float*>(p)[i] = v; break;
  }
}

// Copies chunk `c` of layer `layer`'s transposed weights (all n_pad rows, up to kChunk columns of
// k) into `dst` ([n_pad][kChunkLd]).
template <typename T, int CW>
__device__ __forceinline__ void load_w_chunk(const FusedTcLayer& layer, int c, T* dst) {
  const int k0 = c * kChunk;
  const int pieces_per_row = min(kChunk, layer.k_pad - k0) / 8;
  const int pieces = layer.n_pad * pieces_per_row;
  const T* w = static_cast<const T*>(layer.weights);
  for (int i = static_cast<int>(threadIdx.x); i < pieces; i += Shape<CW>::kThreads) {
    const int n = i / pieces_per_row;
    const int p = i - n * pieces_per_row;
    cp_async16(dst + n * kChunkLd + p * 8, w + static_cast<int64_t>(n) * layer.k_pad + k0 + p * 8,
               true);
  }
}

// Copies chunk `c` of the block's input rows (columns c*kChunk.., zeros past k and past the
// last row) into `dst` ([kRows][kChunkLd]), converting to T. `vec`: x is T, k % 8 == 0 and x is
// 16-byte aligned, so 16-byte asynchronous copies; otherwise element by element.
template <typename T, int CW>
__device__ __forceinline__ void load_x_chunk(const void* x, ElemType x_type, bool vec, int k,
                                             int k_pad, int64_t row0, int64_t rows, int c,
                                             T* dst) {
  const int k0 = c * kChunk;
  const int width = min(kChunk, k_pad - k0);
  if (vec) {
    const int per_row = width / 8;
    const T* xt = static_cast<const T*>(x);
    for (int i = static_cast<int>(threadIdx.x); i < kRows * per_row; i += Shape<CW>::kThreads) {
      const int r = i / per_row;
      const int p = i - r * per_row;
      const int col = k0 + p * 8;
      const bool valid = row0 + r < rows && col < k;
      cp_async16(dst + r * kChunkLd + p * 8, valid ? xt + (row0 + r) * k + col : xt, valid);
    }
  } else {
    for (int i = static_cast<int>(threadIdx.x); i < kRows * width; i += Shape<CW>::kThreads) {
      const int r = i / width;
      const int col = k0 + (i - r * width);
      const float v = row0 + r < rows && col < k ? load_any(x, x_type, (row0 + r) * k + col) : 0.0f;
      dst[r * kChunkLd + (col - k0)] = to_t<T>(v);
    }
  }
}

template <typename T, int CW>
__global__ void __launch_bounds__(Shape<CW>::kThreads) fused_tc_kernel(
    const __grid_constant__ FusedTcParams params, const void* __restrict__ x, ElemType x_type,
    bool x_vec, void* __restrict__ y, ElemType y_type, int64_t rows) {
  using S = Shape<CW>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* act = reinterpret_cast<T*>(smem_raw);
  T* wbuf = act + S::kActElems;
  T* xbuf = wbuf + 2 * S::kWElems;

  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  const int wr = warp % kRowWarps;  // rows wr*32 .. +32
  const int wc = warp / kRowWarps;  // columns wc*64 .. +64
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int k_in = params.layers[0].k;
  const int k_in_pad = params.layers[0].k_pad;

  float acc[2][8][4];
  int stage = 0;  // the stage the next chunk goes to
  load_w_chunk<T, CW>(params.layers[0], 0, wbuf);
  load_x_chunk<T, CW>(x, x_type, x_vec, k_in, k_in_pad, row0, rows, 0, xbuf);
  cp_async_commit();

  for (int l = 0; l < params.num_layers; ++l) {
    const FusedTcLayer& layer = params.layers[l];
    const int chunks = (layer.k_pad + kChunk - 1) / kChunk;
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[mt][nt][e] = 0.0f;

    for (int c = 0; c < chunks; ++c) {
      const int cur = stage;
      stage ^= 1;
      if (c + 1 < chunks) {
        load_w_chunk<T, CW>(layer, c + 1, wbuf + stage * S::kWElems);
        if (l == 0) {
          load_x_chunk<T, CW>(x, x_type, x_vec, k_in, k_in_pad, row0, rows, c + 1,
                              xbuf + stage * S::kXElems);
        }
        cp_async_commit();
        cp_async_wait<1>();
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();
      const T* a_base = l == 0 ? xbuf + cur * S::kXElems : act + c * kChunk;
      const int lda = l == 0 ? kChunkLd : S::kActLd;
      const T* w = wbuf + cur * S::kWElems;
      const int steps = min(kChunk, layer.k_pad - c * kChunk) / 16;
      for (int ks = 0; ks < steps; ++ks) {
        uint32_t a[2][4];
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
          ldmatrix_x4(a[mt], a_base + (wr * 32 + mt * 16 + (lane & 15)) * lda + ks * 16 +
                                 (lane >> 4) * 8);
        }
#pragma unroll
        for (int np = 0; np < 4; ++np) {
          const int nbase = wc * 64 + np * 16;
          if (nbase < layer.n_pad) {
            uint32_t b[4];
            ldmatrix_x4(b, w + (nbase + ((lane >> 4) << 3) + (lane & 7)) * kChunkLd + ks * 16 +
                               ((lane >> 3) & 1) * 8);
#pragma unroll
            for (int mt = 0; mt < 2; ++mt) {
              mma16816<T>(acc[mt][2 * np], a[mt], b[0], b[1]);
              mma16816<T>(acc[mt][2 * np + 1], a[mt], b[2], b[3]);
            }
          }
        }
      }
      __syncthreads();  // every warp is done with this stage (and, last chunk, with act)
    }

    const bool last = l + 1 == params.num_layers;
    if (!last) {  // the next layer's first weights copy while this one's epilogue runs
      load_w_chunk<T, CW>(params.layers[l + 1], 0, wbuf + stage * S::kWElems);
      cp_async_commit();
    }
    const int g = lane >> 2;
    const int t2 = (lane & 3) * 2;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const int col = wc * 64 + nt * 8 + t2;
      if (col >= layer.n_pad) continue;
      const float b0 = layer.bias[col];
      const float b1 = layer.bias[col + 1];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = wr * 32 + mt * 16 + g + h * 8;
          float v0 = activate_dynamic(layer.act, acc[mt][nt][2 * h] + b0);
          float v1 = activate_dynamic(layer.act, acc[mt][nt][2 * h + 1] + b1);
          if (!last) {
            // Padded columns hold zeros (an activation of 0 may be inf or nan: log, reciprocal).
            if (col >= layer.n) v0 = 0.0f;
            if (col + 1 >= layer.n) v1 = 0.0f;
            T* dst = act + r * S::kActLd + col;
            dst[0] = to_t<T>(v0);
            dst[1] = to_t<T>(v1);
          } else if (row0 + r < rows) {
            const int64_t base = (row0 + r) * layer.n;
            if (col < layer.n) store_any(y, y_type, base + col, v0);
            if (col + 1 < layer.n) store_any(y, y_type, base + col + 1, v1);
          }
        }
      }
    }
    if (!last) __syncthreads();  // the next layer reads act
  }
}

template <typename T, int CW>
cudaError_t launch_tc(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                      ElemType y_type, int64_t rows, cudaStream_t stream) {
  using S = Shape<CW>;
  static std::atomic<bool> configured[kMaxDevices];
  const size_t bytes = S::bytes(sizeof(T));
  int device = 0;
  if (cudaError_t err = cudaGetDevice(&device); err != cudaSuccess) return err;
  if (device < 0 || device >= kMaxDevices || !configured[device].load()) {
    const cudaError_t err = cudaFuncSetAttribute(
        fused_tc_kernel<T, CW>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
    if (err != cudaSuccess) return err;
    if (device >= 0 && device < kMaxDevices) configured[device].store(true);
  }
  const bool x_vec = x_type == params.compute && params.layers[0].k % 8 == 0 &&
                     reinterpret_cast<uintptr_t>(x) % 16 == 0;
  const int64_t blocks = (rows + kRows - 1) / kRows;
  fused_tc_kernel<T, CW><<<static_cast<unsigned>(blocks), S::kThreads, bytes, stream>>>(
      params, x, x_type, x_vec, y, y_type, rows);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_width(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                         ElemType y_type, int64_t rows, cudaStream_t stream) {
  if (params.width_pad <= 64) return launch_tc<T, 1>(params, x, x_type, y, y_type, rows, stream);
  if (params.width_pad <= 128) return launch_tc<T, 2>(params, x, x_type, y, y_type, rows, stream);
  return launch_tc<T, 4>(params, x, x_type, y, y_type, rows, stream);
}

}  // namespace

cudaError_t launch_fused_tc(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                            ElemType y_type, int64_t rows, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (params.num_layers < 1 || params.num_layers > kFusedTcMaxLayers || params.width_pad < 16 ||
      params.width_pad > kFusedTcMaxWidth || (rows + kRows - 1) / kRows > 2147483647) {
    return cudaErrorInvalidValue;
  }
  for (int l = 0; l < params.num_layers; ++l) {
    const FusedTcLayer& layer = params.layers[l];
    if (layer.weights == nullptr || layer.bias == nullptr || layer.k < 1 || layer.n < 1 ||
        layer.k_pad != fused_tc_pad(layer.k) || layer.n_pad != fused_tc_pad(layer.n) ||
        layer.n_pad > params.width_pad || (l > 0 && layer.k != params.layers[l - 1].n)) {
      return cudaErrorInvalidValue;
    }
  }
  switch (params.compute) {
    case ElemType::kF16: return launch_width<__half>(params, x, x_type, y, y_type, rows, stream);
    case ElemType::kBF16:
      return launch_width<__nv_bfloat16>(params, x, x_type, y, y_type, rows, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace mlprt::backend::cuda
