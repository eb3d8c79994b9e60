#include "backends/cuda/fused_mlp_tc.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "backends/cuda/device_limits.h"
#include "backends/cuda/fused_mlp_f32.h"
#include "backends/cuda/fused_mlp_rr.h"
#include "backends/cuda/fused_mlp_wg.h"
#include "backends/cuda/fused_tc_device.cuh"

namespace mlprt::backend::cuda {
namespace {

using namespace fused;  // NOLINT(google-build-using-namespace): the kernels' own helpers

constexpr int kChunk = kFusedTcChunk;
constexpr int kChunkLd = kChunk + 8;   // +16 bytes per row: ldmatrix rows hit distinct banks

// CW warps along the columns (64 each), RW along the rows (32 each): a block owns RW * 32 rows.
template <int CW, int RW>
struct Shape {
  static constexpr int kRows = 32 * RW;
  static constexpr int kThreads = 32 * RW * CW;
  static constexpr int kActLd = 64 * CW + 8;
  static constexpr int kActElems = kRows * kActLd;
  static constexpr int kWElems = 64 * CW * kChunkLd;  // one stage of a weight chunk
  static constexpr int kXElems = kRows * kChunkLd;    // one stage of an input chunk
  static_assert(kActLd >= kChunkLd, "an input stage must fit the activation buffer");
  // The input's first stage lives in the activation buffer (free until the first layer's
  // epilogue); the second only exists when the input is wider than one chunk.
  static constexpr size_t kBiasBytes = 2 * sizeof(float) * 64 * CW;  // two layers' biases
  static constexpr size_t bytes(size_t elem, bool two_x_stages) {
    return kBiasBytes + elem * (kActElems + 2 * kWElems + (two_x_stages ? kXElems : 0));
  }
};

// Copies chunk `c` of layer `layer`'s transposed weights (all n_pad rows, up to kChunk columns of
// k) into `dst` ([n_pad][kChunkLd]).
template <typename T, class S>
__device__ __forceinline__ void load_w_chunk(const FusedTcLayer& layer, int c, T* dst) {
  const int k0 = c * kChunk;
  const int pieces_per_row = min(kChunk, layer.k_pad - k0) / 8;
  const int pieces = layer.n_pad * pieces_per_row;
  const T* w = static_cast<const T*>(layer.weights);
  for (int i = static_cast<int>(threadIdx.x); i < pieces; i += S::kThreads) {
    const int n = i / pieces_per_row;
    const int p = i - n * pieces_per_row;
    cp_async16(dst + n * kChunkLd + p * 8, w + static_cast<int64_t>(n) * layer.k_pad + k0 + p * 8,
               true);
  }
}

// Copies the layer's bias ([n_pad] fp32, 16-byte aligned) into `dst`, in the same copy group as
// its first weight chunk: the epilogue then reads it from shared memory.
template <class S>
__device__ __forceinline__ void load_bias(const FusedTcLayer& layer, float* dst) {
  for (int i = static_cast<int>(threadIdx.x); i < layer.n_pad / 4; i += S::kThreads) {
    cp_async16(dst + i * 4, layer.bias + i * 4, true);
  }
}

// Copies chunk `c` of the block's input rows (columns c*kChunk.., zeros past k and past the
// last row) into `dst` ([S::kRows][kChunkLd]), converting to T. `vec`: x is T, k % 8 == 0 and x is
// 16-byte aligned, so 16-byte asynchronous copies; otherwise element by element.
template <typename T, class S>
__device__ __forceinline__ void load_x_chunk(const void* x, ElemType x_type, bool vec, int k,
                                             int k_pad, int64_t row0, int64_t rows, int c,
                                             T* dst) {
  const int k0 = c * kChunk;
  const int width = min(kChunk, k_pad - k0);
  if (vec) {
    const int per_row = width / 8;
    const T* xt = static_cast<const T*>(x);
    for (int i = static_cast<int>(threadIdx.x); i < S::kRows * per_row; i += S::kThreads) {
      const int r = i / per_row;
      const int p = i - r * per_row;
      const int col = k0 + p * 8;
      const bool valid = row0 + r < rows && col < k;
      cp_async16(dst + r * kChunkLd + p * 8, valid ? xt + (row0 + r) * k + col : xt, valid);
    }
  } else {
#pragma unroll 8
    for (int i = static_cast<int>(threadIdx.x); i < S::kRows * width; i += S::kThreads) {
      const int r = i / width;
      const int col = k0 + (i - r * width);
      const float v = row0 + r < rows && col < k ? load_elem(x, x_type, (row0 + r) * k + col) : 0.0f;
      dst[r * kChunkLd + (col - k0)] = to_t<T>(v);
    }
  }
}

// acc + bias, the activation, then into act (hidden layers; zeros in the padded columns) or
// into y (the last layer, rows and columns past the end left out).
template <typename T, class S, int MODE>
__device__ __forceinline__ void epilogue(float (&acc)[2][8][4], const FusedTcLayer& layer,
                                         const float* bias, bool last, T* act, void* y, ElemType y_type,
                                         int64_t row0, int64_t rows, int wr, int wc, int lane) {
  const int g = lane >> 2;
  const int t2 = (lane & 3) * 2;
  const bool paired = (layer.n % 2) == 0 && (reinterpret_cast<uintptr_t>(y) % 8) == 0;
#pragma unroll
  for (int nt = 0; nt < 8; ++nt) {
    const int col = wc * 64 + nt * 8 + t2;
    if (col >= layer.n_pad) continue;
    const float b0 = bias[col];
    const float b1 = bias[col + 1];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = wr * 32 + mt * 16 + g + h * 8;
        float v0 = epilogue_act<MODE>(layer.act, acc[mt][nt][2 * h] + b0);
        float v1 = epilogue_act<MODE>(layer.act, acc[mt][nt][2 * h + 1] + b1);
        if (!last) {
          // Padded columns hold zeros (an activation of 0 may be inf or nan: log, reciprocal).
          if (col >= layer.n) v0 = 0.0f;
          if (col + 1 >= layer.n) v1 = 0.0f;
          *reinterpret_cast<uint32_t*>(act + r * S::kActLd + col) = pack2<T>(v0, v1);
        } else if (row0 + r < rows && col < layer.n) {
          store_pair(y, y_type, (row0 + r) * layer.n + col, v0, v1, col + 1 < layer.n, paired);
        }
      }
    }
  }
}

template <typename T, int CW, int RW>
__global__ void __launch_bounds__(Shape<CW, RW>::kThreads) fused_tc_kernel(
    const __grid_constant__ FusedTcParams params, const void* __restrict__ x, ElemType x_type,
    bool x_vec, void* __restrict__ y, ElemType y_type, int64_t rows) {
  using S = Shape<CW, RW>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  float* bias_s = reinterpret_cast<float*>(smem_raw);  // [2][64 * CW]: layer l in l % 2
  T* act = reinterpret_cast<T*>(smem_raw + S::kBiasBytes);
  T* wbuf = act + S::kActElems;
  T* const x1 = wbuf + 2 * S::kWElems;  // the input's second stage (the first: act)

  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  const int wr = warp % RW;  // rows wr*32 .. +32
  const int wc = warp / RW;  // columns wc*64 .. +64
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * S::kRows;
  const int k_in = params.layers[0].k;
  const int k_in_pad = params.layers[0].k_pad;

  float acc[2][8][4];
  int stage = 0;  // the stage the next chunk goes to
  load_w_chunk<T, S>(params.layers[0], 0, wbuf);
  load_bias<S>(params.layers[0], bias_s);
  load_x_chunk<T, S>(x, x_type, x_vec, k_in, k_in_pad, row0, rows, 0, act);
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
        load_w_chunk<T, S>(layer, c + 1, wbuf + stage * S::kWElems);
        if (l == 0) {
          load_x_chunk<T, S>(x, x_type, x_vec, k_in, k_in_pad, row0, rows, c + 1,
                              stage ? x1 : act);
        }
        cp_async_commit();
        cp_async_wait<1>();
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();
      const T* a_base = l == 0 ? (cur ? x1 : act) : act + c * kChunk;
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
      load_w_chunk<T, S>(params.layers[l + 1], 0, wbuf + stage * S::kWElems);
      load_bias<S>(params.layers[l + 1], bias_s + ((l + 1) & 1) * 64 * CW);
      cp_async_commit();
    }
    switch (layer.act.kind) {
      case ActKind::kNone:
        epilogue<T, S, 0>(acc, layer, bias_s + (l & 1) * 64 * CW, last, act, y, y_type, row0, rows, wr, wc, lane);
        break;
      case ActKind::kRelu:
        epilogue<T, S, 1>(acc, layer, bias_s + (l & 1) * 64 * CW, last, act, y, y_type, row0, rows, wr, wc, lane);
        break;
      default:
        epilogue<T, S, 2>(acc, layer, bias_s + (l & 1) * 64 * CW, last, act, y, y_type, row0, rows, wr, wc, lane);
        break;
    }
    if (!last) __syncthreads();  // the next layer reads act
  }
}

template <typename T, int CW, int RW>
cudaError_t launch_tc(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                      ElemType y_type, int64_t rows, cudaStream_t stream) {
  using S = Shape<CW, RW>;
  static std::atomic<bool> opted_in[kMaxDevices];
  const size_t bytes = S::bytes(sizeof(T), params.layers[0].k_pad > kChunk);
  if (const cudaError_t err = opt_in_block_smem(
          reinterpret_cast<const void*>(fused_tc_kernel<T, CW, RW>), opted_in);
      err != cudaSuccess) {
    return err;
  }
  const bool x_vec = x_type == params.compute && params.layers[0].k % 8 == 0 &&
                     reinterpret_cast<uintptr_t>(x) % 16 == 0;
  const int64_t blocks = (rows + S::kRows - 1) / S::kRows;
  fused_tc_kernel<T, CW, RW><<<static_cast<unsigned>(blocks), S::kThreads, bytes, stream>>>(
      params, x, x_type, x_vec, y, y_type, rows);
  return cudaGetLastError();
}

// 128-row blocks where they fill the GPU twice over; 32-row blocks below that (more blocks in
// flight for small batches, each re-reading the weights from L2).
template <typename T, int CW>
cudaError_t launch_rows(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                        ElemType y_type, int64_t rows, cudaStream_t stream) {
  if ((rows + 127) / 128 >= 2 * int64_t{current_sm_count()}) {
    return launch_tc<T, CW, 4>(params, x, x_type, y, y_type, rows, stream);
  }
  return launch_tc<T, CW, 1>(params, x, x_type, y, y_type, rows, stream);
}

template <typename T>
cudaError_t launch_width(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                         ElemType y_type, int64_t rows, cudaStream_t stream) {
  if (params.width_pad <= 64) return launch_rows<T, 1>(params, x, x_type, y, y_type, rows, stream);
  if (params.width_pad <= 128) return launch_rows<T, 2>(params, x, x_type, y, y_type, rows, stream);
  return launch_rows<T, 4>(params, x, x_type, y, y_type, rows, stream);
}

}  // namespace

cudaError_t launch_fused_tc(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                            ElemType y_type, int64_t rows, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (params.num_layers < 1 || params.num_layers > kFusedTcMaxLayers || params.width_pad < 16 ||
      params.width_pad > kFusedTcMaxWidth || (rows + 31) / 32 > 2147483647) {
    return cudaErrorInvalidValue;
  }
  for (int l = 0; l < params.num_layers; ++l) {
    const FusedTcLayer& layer = params.layers[l];
    if (layer.weights == nullptr || layer.bias == nullptr || layer.k < 1 || layer.n < 1 ||
        layer.k_pad != fused_tc_pad(layer.k) || layer.n_pad != fused_tc_pad(layer.n) ||
        layer.n_pad > params.width_pad || (l > 0 && layer.k != params.layers[l - 1].n) ||
        (layer.residual && layer.k != layer.n)) {
      return cudaErrorInvalidValue;
    }
  }
  if (params.compute == ElemType::kF32) {
    return launch_fused_f32(params, x, x_type, y, y_type, rows, stream);
  }
  // 64-wide chains on Hopper run the warpgroup kernel (fused_mlp_wg.h). tcnn 64-64x4-16 fp16
  // on the H200 (graph medians, one call, two rounds), it / the register-resident kernel at
  // 1 / 1024 / 16K / 32K / 64K / 128K / 1M rows: 6.0 / 6.4-6.5 / 7.5 / 9.0 / 11.8-11.9 /
  // 18.4-18.7 / 107.3-107.5 us against 7.9-8.1 / 8.3-8.4 / 9.5-9.7 / 11.2-11.4 / 14.1 /
  // 20.9-21.1 / 114.0-114.3.
  if (fused_wg_ineligible(params) == nullptr && fused_wg_takes(params, x, x_type)) {
    return launch_fused_wg(params, x, x_type, y, y_type, rows, stream);
  }
  // Chains no wider than 128 keep their activations in registers (fused_mlp_rr.h).
  if (fused_rr_ineligible(params) == nullptr && fused_rr_takes(params, x, x_type)) {
    return launch_fused_rr(params, x, x_type, y, y_type, rows, stream);
  }
  for (int l = 0; l < params.num_layers; ++l) {
    if (params.layers[l].residual) return cudaErrorInvalidValue;  // the staged kernel adds none
  }
  switch (params.compute) {
    case ElemType::kF16: return launch_width<__half>(params, x, x_type, y, y_type, rows, stream);
    case ElemType::kBF16:
      return launch_width<__nv_bfloat16>(params, x, x_type, y, y_type, rows, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace mlprt::backend::cuda
