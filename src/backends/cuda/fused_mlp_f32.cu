#include "backends/cuda/fused_mlp_f32.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>

#include "backends/cuda/device_limits.h"
#include "backends/cuda/fused_rr_stream.cuh"
#include "backends/cuda/fused_tc_device.cuh"

namespace mlprt::backend::cuda {
namespace {

using namespace fused;  // NOLINT(google-build-using-namespace): the kernels' own helpers

// Warps per block and chunks per warp's ring. Latency, not bandwidth, bounds the kernel: 16
// warps hide 4 warps' latencies per scheduler. Measured on the H200 (builder timings, 784-32-10
// at 64K rows, fp32 / tf32): 8 warps x 6 stages 133.5 / 82.7 us against 16 x 3's 92.0 / 75.5
// (an earlier version of the kernel); now 12 x 5 89.1 / 70.7 and 16 x 3 80.0 / 68.8 (at 128
// registers a thread, ptxas spills up to 128 bytes of the 3xTF32 kernels).
constexpr int kMaxWarps = 16;
constexpr int kStages = 3;
constexpr int kRingBytes = kStages * kStreamRows * stream_row_bytes(true);  // per warp
constexpr int kTileRows = 16;
constexpr int kNT = kFusedF32MaxWidth / 8;  // n8 tiles of the widest layer

// Where things live in the block's shared memory, in floats (computed on the host).
struct F32Layout {
  int w_off[kFusedTcMaxLayers];  // layer l's weights [n_pad][wld[l]]
  int wld[kFusedTcMaxLayers];
  int b_off[kFusedTcMaxLayers];  // layer l's bias [n_pad]
  int ring_bytes = 0;            // where the warps' rings start
  int total_bytes = 0;
};

// Weight row strides (floats). The first layer: k in whole chunks, + 4, so that one quarter
// warp's 16-byte reads of rows g and g+1 (columns 8t..) fall on distinct banks. Later layers:
// 8 mod 32, so that a half warp's 8-byte reads of rows g (4 of them) at columns 2t do.
int first_wld(int k_pad) { return (k_pad + kStreamCols - 1) / kStreamCols * kStreamCols + 4; }
int hidden_wld(int k_pad) { return k_pad + (k_pad % 32 == 0 ? 8 : 24); }

F32Layout f32_layout(const FusedTcParams& params, int warps) {
  F32Layout out;
  int floats = 0;
  for (int l = 0; l < params.num_layers; ++l) {
    const FusedTcLayer& layer = params.layers[l];
    out.w_off[l] = floats;
    out.wld[l] = l == 0 ? first_wld(layer.k_pad) : hidden_wld(layer.k_pad);
    floats += layer.n_pad * out.wld[l];
  }
  for (int l = 0; l < params.num_layers; ++l) {
    out.b_off[l] = floats;
    floats += params.layers[l].n_pad;
  }
  out.ring_bytes = floats * 4;  // whole 16-byte pieces: n_pad and every stride are multiples of 4
  out.total_bytes = out.ring_bytes + warps * kRingBytes;
  return out;
}

// Every layer's weights ([n_pad][wld], zeros past k_pad) and biases into shared memory, by the
// whole block (asynchronous: the caller commits and waits).
__device__ __forceinline__ void stage_weights(const FusedTcParams& params,
                                              const F32Layout& layout, float* smem) {
  for (int l = 0; l < params.num_layers; ++l) {
    const FusedTcLayer& layer = params.layers[l];
    stage_rows(smem + layout.w_off[l], layout.wld[l], layer.n_pad,
               static_cast<const float*>(layer.weights), layer.n_pad, layer.k_pad);
    stage_floats(smem + layout.b_off[l], layer.bias, layer.n_pad);
  }
}

// v rounded to TF32 (to nearest, ties away, on the bits: two integer instructions where
// cvt.rna.tf32.f32 takes about six on sm_90, which made it the kernel's largest cost).
__device__ __forceinline__ uint32_t round_tf32(float v) {
  return (__float_as_uint(v) + 0x1000u) & 0xFFFFE000u;
}

// An operand as TF32: hi, and with SPLIT the remainder v - hi (exact in fp32; the tensor core
// reads its top 19 bits, so the pair carries 22 or more of v's 24, and the rounding errors of
// both parts are unbiased). An infinite v gives a NaN remainder (inf - inf), so an infinite
// input makes NaN outputs in fp32 engines.
template <bool SPLIT>
struct Tf32 {
  uint32_t hi = 0;
  uint32_t lo = 0;
  __device__ __forceinline__ explicit Tf32(float v) : hi(round_tf32(v)) {
    if constexpr (SPLIT) lo = __float_as_uint(v - __uint_as_float(hi));
  }
  Tf32() = default;
};

__device__ __forceinline__ void mma1688(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                        uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// c += A B for one k8 step: A's fragment a (a0 / a1: rows g / g+8 at k slot t, a2 / a3 at slot
// t+4), B's b0 (slot t) and b1 (slot t+4) of column g. The small terms first.
template <bool SPLIT>
__device__ __forceinline__ void mma_step(float (&c)[4], const Tf32<SPLIT> (&a)[4],
                                         const Tf32<SPLIT>& b0, const Tf32<SPLIT>& b1) {
  const uint32_t a_hi[4] = {a[0].hi, a[1].hi, a[2].hi, a[3].hi};
  if constexpr (SPLIT) {
    const uint32_t a_lo[4] = {a[0].lo, a[1].lo, a[2].lo, a[3].lo};
    mma1688(c, a_lo, b0.hi, b1.hi);
    mma1688(c, a_hi, b0.lo, b1.lo);
  }
  mma1688(c, a_hi, b0.hi, b1.hi);
}

// Calls f with the layer's n8 tile count (n_pad / 8: 2, 4, 6 or 8) as a compile-time constant,
// so that a layer's tiles unroll with no branch between them: their mma chains are
// independent, and only unrolled straight-line code lets them overlap.
template <typename F>
__device__ __forceinline__ void with_tiles(int n_pad, F&& f) {
  switch (n_pad / 8) {
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 6: f(std::integral_constant<int, 6>{}); break;
    default: f(std::integral_constant<int, 8>{}); break;
  }
}

// The first layer for the warp's current tile, its input streamed through the ring: acc[nt]
// (n8 tile nt: rows g / g+8, columns 8 nt + 2t, +1) = bias + x W^T for N8 tiles. A lane reads 8
// consecutive columns 8t.. of its rows g and g+8 per chunk; k step s takes columns 8t + 2s
// (slot t) and 8t + 2s + 1 (slot t+4), and the lane reads the same 8 columns of its weight rows,
// so every product pairs the right input and weight.
template <bool SPLIT, bool ELEMS, int N8>
__device__ __forceinline__ void stream_layer(float (&acc)[kNT][4], StreamCursor& at, int& use,
                                             const StreamSource& src, unsigned char* ring,
                                             const float* w, int wld, int lane) {
  const float* wl = w + (lane >> 2) * wld + (lane & 3) * 8;
  for (int c = 0; c < src.chunks; ++c) {
    float4 v[2][2];
    chunk_rows_f32(v, stream_next<true, ELEMS, kStages>(at, use, src, ring, lane), lane);
    const float g0[8] = {v[0][0].x, v[0][0].y, v[0][0].z, v[0][0].w,
                         v[0][1].x, v[0][1].y, v[0][1].z, v[0][1].w};  // row g
    const float g8[8] = {v[1][0].x, v[1][0].y, v[1][0].z, v[1][0].w,
                         v[1][1].x, v[1][1].y, v[1][1].z, v[1][1].w};  // row g+8
    Tf32<SPLIT> a[4][4];
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      a[s][0] = Tf32<SPLIT>(g0[2 * s]);
      a[s][1] = Tf32<SPLIT>(g8[2 * s]);
      a[s][2] = Tf32<SPLIT>(g0[2 * s + 1]);
      a[s][3] = Tf32<SPLIT>(g8[2 * s + 1]);
    }
    // SPLIT: the chunk's sums in accumulators of their own, added to acc in fp32: the tensor
    // cores round each mma's sum toward zero, and over a whole row's 3 x 98 mma (k = 784) that
    // bias alone was 1.7e-5 of the result; over one chunk's 12 it stays below 1e-6. More than 4
    // tiles run in two passes (the registers of 8 tiles' sums and weights would spill).
    constexpr int G = N8 > 4 ? N8 / 2 : N8;
#pragma unroll
    for (int pass = 0; pass < N8 / G; ++pass) {
      float part[G][4];
#pragma unroll
      for (int i = 0; i < G; ++i) {
#pragma unroll
        for (int e = 0; e < 4; ++e) part[i][e] = SPLIT ? 0.0f : acc[pass * G + i][e];
      }
#pragma unroll
      for (int half = 0; half < 2; ++half) {  // columns 8t + 4 half .. of the weight rows
        float4 wv[G];
#pragma unroll
        for (int i = 0; i < G; ++i) {
          wv[i] = *reinterpret_cast<const float4*>(wl + (pass * G + i) * 8 * wld +
                                                   c * kStreamCols + half * 4);
        }
#pragma unroll
        for (int s = 0; s < 2; ++s) {
#pragma unroll
          for (int i = 0; i < G; ++i) {
            const float w0 = s == 0 ? wv[i].x : wv[i].z;
            const float w1 = s == 0 ? wv[i].y : wv[i].w;
            mma_step<SPLIT>(part[i], a[2 * half + s], Tf32<SPLIT>(w0), Tf32<SPLIT>(w1));
          }
        }
      }
#pragma unroll
      for (int i = 0; i < G; ++i) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float& out = acc[pass * G + i][e];
          out = SPLIT ? out + part[i][e] : part[i][e];
        }
      }
    }
  }
}

__device__ __forceinline__ float activate_value(const ActParams& act, float v) {
  if (act.kind == ActKind::kNone) return v;
  if (act.kind == ActKind::kRelu) return v > 0.0f ? v : 0.0f;
  return activate_call(act, v);
}

// A later layer of N8 n8 tiles: acc (the previous layer's outputs, activation applied; n8
// tile j holds its columns 8j + 2t, +1 of rows g and g+8) becomes A's k8 step j (slot t <-
// column 8j + 2t, slot t+4 <- 8j + 2t + 1), and then acc = bias + A W^T of this layer. The k
// steps run in order, each over every tile (independent chains side by side).
template <bool SPLIT, int N8>
__device__ __forceinline__ void hidden_layer(float (&acc)[kNT][4], const FusedTcLayer& layer,
                                             const float* w, int wld, const float* bias,
                                             int lane) {
  Tf32<SPLIT> a[kNT][4];
#pragma unroll
  for (int j = 0; j < kNT; ++j) {
    if (j * 8 >= layer.k_pad) break;
    a[j][0] = Tf32<SPLIT>(acc[j][0]);
    a[j][1] = Tf32<SPLIT>(acc[j][2]);
    a[j][2] = Tf32<SPLIT>(acc[j][1]);
    a[j][3] = Tf32<SPLIT>(acc[j][3]);
  }
  // SPLIT: the sums start from zero and the bias is added in fp32 (see stream_layer).
  if constexpr (SPLIT) {
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[nt][e] = 0.0f;
    }
  } else {
    bias_tiles(acc, bias, layer.n_pad, lane);
  }
  const float* wl = w + (lane >> 2) * wld + (lane & 3) * 2;
#pragma unroll
  for (int j = 0; j < kNT; ++j) {
    if (j * 8 >= layer.k_pad) break;
#pragma unroll
    for (int nt = 0; nt < N8; ++nt) {
      const float2 wv = *reinterpret_cast<const float2*>(wl + nt * 8 * wld + j * 8);
      mma_step<SPLIT>(acc[nt], a[j], Tf32<SPLIT>(wv.x), Tf32<SPLIT>(wv.y));
    }
  }
  if constexpr (SPLIT) {
    float b[N8][4];
    bias_tiles(b, bias, layer.n_pad, lane);
#pragma unroll
    for (int nt = 0; nt < N8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[nt][e] += b[nt][e];
    }
  }
}

// The last layer's accumulators through its activation into y.
__device__ __forceinline__ void store_tile(const float (&acc)[kNT][4], const FusedTcLayer& layer,
                                           void* y, ElemType y_type, bool paired, int64_t row0,
                                           int64_t rows, int lane) {
  const int64_t r = row0 + (lane >> 2);
#pragma unroll
  for (int nt = 0; nt < kNT; ++nt) {
    const int col = nt * 8 + (lane & 3) * 2;
    if (nt * 8 >= layer.n_pad || col >= layer.n) continue;
    const bool both = col + 1 < layer.n;
    float v[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) v[e] = activate_value(layer.act, acc[nt][e]);
    if (r < rows) store_pair(y, y_type, r * layer.n + col, v[0], v[1], both, paired);
    if (r + 8 < rows) store_pair(y, y_type, (r + 8) * layer.n + col, v[2], v[3], both, paired);
  }
}

// ELEMS: x is not 16-byte aligned fp32 rows with k % 4 == 0 and is read element by element.
template <bool SPLIT, bool ELEMS>
__global__ void __launch_bounds__(kMaxWarps * 32, 1) fused_f32_kernel(
    const __grid_constant__ FusedTcParams params, const __grid_constant__ F32Layout layout,
    const void* __restrict__ x, ElemType x_type, void* __restrict__ y, ElemType y_type,
    int64_t rows) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  auto* const smem = reinterpret_cast<float*>(smem_raw);
  stage_weights(params, layout, smem);
  cp_async_commit();
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  const int warps = static_cast<int>(blockDim.x) >> 5;
  unsigned char* const ring = smem_raw + layout.ring_bytes + warp * kRingBytes;
  const int64_t tiles = (rows + kTileRows - 1) / kTileRows;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * warps;
  const FusedTcLayer& first = params.layers[0];
  const StreamSource src{x,    x_type, first.k, (first.k_pad + kStreamCols - 1) / kStreamCols,
                         rows, tiles,  stride};
  const int last = params.num_layers - 1;
  const bool paired =
      params.layers[last].n % 2 == 0 && reinterpret_cast<uintptr_t>(y) % 8 == 0;
  const int64_t first_tile = static_cast<int64_t>(blockIdx.x) * warps + warp;
  StreamCursor at{first_tile, 0, 0};
  int use = 0;
  stream_start<true, ELEMS, kStages>(at, src, ring, lane);
  // The oldest group: this thread's weight copies; then everyone's: the weights are in.
  cp_async_wait<kStages - 1>();
  __syncthreads();
  for (int64_t tile = first_tile; tile < tiles; tile += stride) {
    float acc[kNT][4];
    bias_tiles(acc, smem + layout.b_off[0], first.n_pad, lane);
    with_tiles(first.n_pad, [&](auto n8) {
      stream_layer<SPLIT, ELEMS, decltype(n8)::value>(acc, at, use, src, ring,
                                                      smem + layout.w_off[0], layout.wld[0], lane);
    });
    for (int l = 0; l < last; ++l) {
      const ActParams& act = params.layers[l].act;
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[nt][e] = activate_value(act, acc[nt][e]);
      }
      const FusedTcLayer& next = params.layers[l + 1];
      with_tiles(next.n_pad, [&](auto n8) {
        hidden_layer<SPLIT, decltype(n8)::value>(acc, next, smem + layout.w_off[l + 1],
                                                 layout.wld[l + 1], smem + layout.b_off[l + 1],
                                                 lane);
      });
    }
    store_tile(acc, params.layers[last], y, y_type, paired, tile * kTileRows, rows, lane);
  }
  cp_async_wait<0>();
}

template <bool SPLIT, bool ELEMS>
cudaError_t launch(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                   ElemType y_type, int64_t rows, cudaStream_t stream) {
  static std::atomic<bool> opted_in[kMaxDevices];
  const auto kernel = fused_f32_kernel<SPLIT, ELEMS>;
  if (const cudaError_t err = opt_in_block_smem(reinterpret_cast<const void*>(kernel), opted_in);
      err != cudaSuccess) {
    return err;
  }
  // Small batches: fewer warps per block (down to one per scheduler), so that the tiles spread
  // over every SM; each block's shared memory bounds the resident blocks.
  const int64_t tiles = (rows + kTileRows - 1) / kTileRows;
  const int64_t sms = current_sm_count();
  int warps = kMaxWarps;
  while (warps > 4 && tiles <= sms * (warps / 2)) warps /= 2;
  const F32Layout layout = f32_layout(params, warps);
  const int per_sm = std::max(1, current_sm_smem() / (layout.total_bytes + 1024));
  const int64_t wanted = (tiles + warps - 1) / warps;
  const int64_t most = sms * per_sm;
  const auto blocks = static_cast<unsigned>(wanted < most ? wanted : most);
  kernel<<<blocks, warps * 32, layout.total_bytes, stream>>>(params, layout, x, x_type, y, y_type,
                                                             rows);
  return cudaGetLastError();
}

template <bool SPLIT>
cudaError_t launch_input(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                         ElemType y_type, int64_t rows, cudaStream_t stream) {
  const bool rows_of_f32 = x_type == ElemType::kF32 && params.layers[0].k % 4 == 0 &&
                           reinterpret_cast<uintptr_t>(x) % 16 == 0;
  if (rows_of_f32) return launch<SPLIT, false>(params, x, x_type, y, y_type, rows, stream);
  return launch<SPLIT, true>(params, x, x_type, y, y_type, rows, stream);
}

}  // namespace

const char* fused_f32_ineligible(const FusedTcParams& params) {
  if (params.num_layers < 1) return "no layers";
  for (int l = 0; l < params.num_layers; ++l) {
    if (params.layers[l].n_pad > kFusedF32MaxWidth) {
      return "a layer is wider than 64 (the fp32 / tf32 fused kernel's limit)";
    }
    if (params.layers[l].residual) return "the fp32 / tf32 fused kernel adds no residual input";
  }
  if (f32_layout(params, kMaxWarps).total_bytes > current_max_block_smem()) {
    return "the fp32 weights and input buffers do not fit in shared memory";
  }
  return nullptr;
}

cudaError_t launch_fused_f32(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                             ElemType y_type, int64_t rows, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (params.compute != ElemType::kF32 || fused_f32_ineligible(params) != nullptr) {
    return cudaErrorInvalidValue;
  }
  if (params.split_tf32) return launch_input<true>(params, x, x_type, y, y_type, rows, stream);
  return launch_input<false>(params, x, x_type, y, y_type, rows, stream);
}

}  // namespace mlprt::backend::cuda
