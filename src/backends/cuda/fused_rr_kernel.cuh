#pragma once
// The register-resident fused MLP kernel (fused_mlp_rr.h) and its launch, shared by the
// translation units that instantiate it per element type (fused_mlp_rr_half.cu,
// fused_mlp_rr_bf16.cu: two files that compile in parallel) and by fused_mlp_rr.cu, which uses
// the host-side shape helpers only.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "backends/cuda/device_limits.h"
#include "backends/cuda/fused_mlp_rr.h"
#include "backends/cuda/fused_rr_stream.cuh"
#include "backends/cuda/fused_tc_device.cuh"

namespace mlprt::backend::cuda::rr {
using namespace fused;  // NOLINT(google-build-using-namespace): the kernels' own helpers

constexpr int kMmaRows = 16;  // rows of one mma.sync tile
constexpr int kMaxWarps = 8;  // per block
// Per block for two-tile warps in 64-wide chains: one block of 16 per SM (the same 128
// registers a thread as two blocks of 8) stages the weights once per SM instead of twice.
constexpr int kTwoTileWarps = 16;

// Where things live in the block's shared memory, computed on the host.
struct RrLayout {
  int w_off[kFusedTcMaxLayers];   // layer l's weights [w_rows[l]][wld[l]], in elements
  int wld[kFusedTcMaxLayers];     // k_pad + 8 (stream_wld for a streamed first layer)
  int w_rows[kFusedTcMaxLayers];  // n_pad (16 stream_groups(n_pad) for a streamed first layer)
  int b_off[kFusedTcMaxLayers];  // layer l's bias [n_pad], in floats from `bias_bytes`
  int bias_bytes = 0;            // where the biases start
  int x_bytes = 0;               // where the warps' input buffers start
  int raw_bytes = 0;             // per warp: the rows as they are copied in (modes 0 and 1)
  int warp_bytes = 0;            // per warp: raw rows, then (modes 1 and 2) the rows in T
  int total_bytes = 0;
};

// How a tile of input rows reaches the A fragments:
//  0: x is T (16-byte aligned rows): cp.async into the warp's buffer, read by ldmatrix there;
//  1: x is fp32 (16-byte aligned rows): cp.async of the fp32 rows (x_ld_f32 floats apart), read
//     into the A fragments and converted there;
//  2: anything else: element loads through fp32 (not overlapped with the compute);
//  3, 4: an input wider than the chain, streamed by the first layer through a ring of chunks in
//     the warp's buffer (fused_rr_stream.cuh), as T rows or fp32 rows (16-byte aligned).
enum XMode { kXDirect = 0, kXFp32 = 1, kXElements = 2, kXStreamT = 3, kXStreamF32 = 4 };
constexpr bool is_stream(XMode mode) { return mode >= kXStreamT; }

// Floats between fp32 rows in a warp's buffer: +16 bytes (whole cp.async pieces), so that the
// rows of a fragment load start 4 banks apart instead of on the same bank.
__host__ __device__ constexpr int x_ld_f32(int k_pad) { return k_pad + 4; }

template <int MAXW>
constexpr int x_ld() {
  return MAXW + 8;  // +16 bytes per row: ldmatrix rows hit distinct banks
}

inline RrLayout rr_layout(const FusedTcParams& params, int warps, int maxw, int rows, XMode mode) {
  RrLayout out;
  int elems = 0;
  for (int l = 0; l < params.num_layers; ++l) {
    const int k_pad = params.layers[l].k_pad;
    out.w_off[l] = elems;
    const bool streamed = l == 0 && is_stream(mode);
    out.wld[l] = streamed ? stream_wld(k_pad, mode == kXStreamF32) : k_pad + 8;
    out.w_rows[l] = streamed ? 16 * stream_groups(params.layers[l].n_pad) : params.layers[l].n_pad;
    elems += out.w_rows[l] * out.wld[l];
  }
  out.bias_bytes = (elems * 2 + 15) / 16 * 16;
  int floats = 0;
  for (int l = 0; l < params.num_layers; ++l) {
    out.b_off[l] = floats;
    floats += params.layers[l].n_pad;
  }
  out.x_bytes = out.bias_bytes + floats * 4;
  const int t_bytes = is_stream(mode) ? 0 : rows * (maxw + 8) * 2;
  out.raw_bytes = mode == kXDirect            ? t_bytes
                  : mode == kXFp32            ? rows * x_ld_f32(params.layers[0].k_pad) * 4
                  : is_stream(mode) ? stream_warp_bytes(mode == kXStreamF32)
                                              : 0;
  out.warp_bytes = out.raw_bytes + (mode == kXElements ? t_bytes : 0);
  out.total_bytes = out.x_bytes + warps * out.warp_bytes;
  return out;
}

// Starts copying the warp's tile of input rows [row0, row0 + ROWS) into `raw` (modes 0 and 1;
// zeros past k and past the last row): mode 0 as T rows x_ld elements apart, mode 1 as fp32 rows
// x_ld_f32 floats apart.
template <typename T, int MAXW, int ROWS>
__device__ __forceinline__ void copy_x_tile(const void* x, XMode mode, int k, int k_pad,
                                            int64_t row0, int64_t rows, unsigned char* raw,
                                            int lane) {
  const int esize = mode == kXDirect ? 2 : 4;
  const int per_row = k_pad * esize / 16;
  const int ld_bytes = (mode == kXDirect ? x_ld<MAXW>() : x_ld_f32(k_pad)) * esize;
  const int row_bytes = k * esize;
  const int rows_left = static_cast<int>(rows - row0 < ROWS ? rows - row0 : ROWS);
  const auto* tile = static_cast<const unsigned char*>(x) + row0 * row_bytes;
  if (32 % per_row == 0) {  // each lane copies one column of pieces: pointer steps only
    const int dr = 32 / per_row;
    const int r0 = lane / per_row;
    const int col = (lane % per_row) * 16;
    const bool col_valid = col < row_bytes;
    const unsigned char* src = tile + r0 * row_bytes + col;
    unsigned char* dst = raw + r0 * ld_bytes + col;
#pragma unroll 4
    for (int r = r0; r < ROWS; r += dr, src += dr * row_bytes, dst += dr * ld_bytes) {
      const bool valid = col_valid && r < rows_left;
      cp_async16(dst, valid ? src : x, valid);
    }
    return;
  }
  GridWalk at(lane, 32, per_row);
  for (int i = lane; i < ROWS * per_row; i += 32, at.next()) {
    const int col = at.c * 16;
    const bool valid = at.r < rows_left && col < row_bytes;
    cp_async16(raw + at.r * ld_bytes + col, valid ? tile + at.r * row_bytes + col : x, valid);
  }
}

// Mode 2: the tile into `dst` ([ROWS][x_ld] of T), loaded element by element.
template <typename T, int MAXW, int ROWS>
__device__ __forceinline__ void fill_x_tile(const void* x, ElemType x_type, int k, int k_pad,
                                            int64_t row0, int64_t rows, T* dst, int lane) {
  constexpr int kLd = x_ld<MAXW>();
  GridWalk at(lane, 32, k_pad);
  for (int i = lane; i < ROWS * k_pad; i += 32, at.next()) {
    const bool valid = row0 + at.r < rows && at.c < k;
    const float v = valid ? load_elem(x, x_type, (row0 + at.r) * k + at.c) : 0.0f;
    dst[at.r * kLd + at.c] = to_t<T>(v);
  }
}

// The first layer's A fragments from the warp's fp32 rows (mode 1; rows x_ld_f32 floats apart),
// converted to T: rows g / g+8, columns t2, t2+1 (a0 / a1) and t2+8, t2+9 (a2 / a3) of each k16.
template <typename T, int MAXW, int MT>
__device__ __forceinline__ void load_a_f32(uint32_t (&a)[MT][MAXW / 16][4], const float* rows_f32,
                                           int k_pad, int lane) {
  const int ld = x_ld_f32(k_pad);
  const float* base = rows_f32 + (lane >> 2) * ld + (lane & 3) * 2;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int kt = 0; kt < MAXW / 16; ++kt) {
      if (kt * 16 >= k_pad) break;
      const float* p = base + mt * kMmaRows * ld + kt * 16;
      const float2 v0 = *reinterpret_cast<const float2*>(p);
      const float2 v1 = *reinterpret_cast<const float2*>(p + 8 * ld);
      const float2 v2 = *reinterpret_cast<const float2*>(p + 8);
      const float2 v3 = *reinterpret_cast<const float2*>(p + 8 * ld + 8);
      a[mt][kt][0] = pack2<T>(v0.x, v0.y);
      a[mt][kt][1] = pack2<T>(v1.x, v1.y);
      a[mt][kt][2] = pack2<T>(v2.x, v2.y);
      a[mt][kt][3] = pack2<T>(v3.x, v3.y);
    }
  }
}

// Every layer's weights ([w_rows][wld] per layer, zeros past n_pad and k_pad) and biases into
// shared memory, by the whole block (asynchronous: the caller commits and waits).
template <typename T>
__device__ __forceinline__ void stage_weights(const FusedTcParams& params, const RrLayout& layout,
                                              unsigned char* smem) {
  for (int l = 0; l < params.num_layers; ++l) {
    const FusedTcLayer& layer = params.layers[l];
    stage_rows(reinterpret_cast<T*>(smem) + layout.w_off[l], layout.wld[l], layout.w_rows[l],
               static_cast<const T*>(layer.weights), layer.n_pad, layer.k_pad);
    stage_floats(reinterpret_cast<float*>(smem + layout.bias_bytes) + layout.b_off[l], layer.bias,
                 layer.n_pad);
  }
}

// Columns [16 np, 16 np + 16) of a layer for the warp's rows: acc = A x W^T, plus the bias where
// BIAS (two n8 tiles per 16-row tile; the first mma starts from the bias pair). A layer runs one
// such column group at a time, so only its 8 accumulators per row tile and 4 weight fragments
// are live, whatever the width. FULL: the layer is MAXW x MAXW, so every bound is known at
// compile time (no branch in unrolled loops). `wl`: this lane's ldmatrix row of the layer's
// weights ([n_pad][wld] in shared memory).
template <typename T, int MAXW, int MT, bool FULL, bool BIAS>
__device__ __forceinline__ void column_group(float (&acc)[MT][2][4],
                                             const uint32_t (&a)[MT][MAXW / 16][4], const T* wl,
                                             int wld, const float* bias, int np, int k_pad,
                                             int lane) {
  const int t2 = (lane & 3) * 2;
  const float2 b0 = BIAS ? *reinterpret_cast<const float2*>(bias + np * 16 + t2) : float2{};
  const float2 b1 = BIAS ? *reinterpret_cast<const float2*>(bias + np * 16 + 8 + t2) : float2{};
  uint32_t b[4];
  ldmatrix_x4(b, wl + np * 16 * wld);  // k_pad >= 16: the first k16 step always runs
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    mma16816_from<T>(acc[mt][0], a[mt][0], b[0], b[1], b0.x, b0.y);
    mma16816_from<T>(acc[mt][1], a[mt][0], b[2], b[3], b1.x, b1.y);
  }
#pragma unroll
  for (int kt = 1; kt < MAXW / 16; ++kt) {
    if (!FULL && kt * 16 >= k_pad) break;
    ldmatrix_x4(b, wl + np * 16 * wld + kt * 16);
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      mma16816<T>(acc[mt][0], a[mt][kt], b[0], b[1]);
      mma16816<T>(acc[mt][1], a[mt][kt], b[2], b[3]);
    }
  }
}

// A residual layer's input added to column group np's accumulators: the layer's A fragments of
// k16 tile np hold exactly those rows and columns (k == n), in the pairs the C tiles hold.
template <typename T, int MAXW, int MT>
__device__ __forceinline__ void add_input(float (&acc)[MT][2][4],
                                          const uint32_t (&a)[MT][MAXW / 16][4], int np) {
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float2 top = unpack2<T>(a[mt][np][h * 2]);
      const float2 bottom = unpack2<T>(a[mt][np][h * 2 + 1]);
      acc[mt][h][0] += top.x;
      acc[mt][h][1] += top.y;
      acc[mt][h][2] += bottom.x;
      acc[mt][h][3] += bottom.y;
    }
  }
}

// Column group np's accumulators (acc[mt][h]: n8 tile 2 np + h; C of n8 tile j: rows g / g+8,
// columns 8j + t2, +1) through the activation into the next layer's A fragments (A of k16 tile
// np: a0 / a1 rows g / g+8 of its first 8 columns, a2 / a3 of its last 8). Padded columns hold 0
// (zero weights and bias), which none and relu keep; any other activation's are zeroed (an
// activation of 0 need not be 0). PAIR_BIAS (fp16, none / relu): the accumulators hold no bias
// yet; it is added to the packed pairs, with the relu, in one fma.relu.f16x2 per pair.
template <typename T, int MAXW, int MT, int MODE, bool PAIR_BIAS>
__device__ __forceinline__ void group_to_fragments(const float (&acc)[MT][2][4],
                                                   uint32_t (&out)[MT][MAXW / 16][4],
                                                   const FusedTcLayer& layer,
                                                   const uint32_t (&pair_bias)[2], int np,
                                                   int lane) {
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      if constexpr (PAIR_BIAS) {
        out[mt][np][h * 2] =
            add_relu2_f16(pack2<T>(acc[mt][h][0], acc[mt][h][1]), pair_bias[h], MODE == 1);
        out[mt][np][h * 2 + 1] =
            add_relu2_f16(pack2<T>(acc[mt][h][2], acc[mt][h][3]), pair_bias[h], MODE == 1);
      } else if constexpr (MODE == 1) {  // relu commutes with rounding: on packed pairs
        out[mt][np][h * 2] = relu2<T>(pack2<T>(acc[mt][h][0], acc[mt][h][1]));
        out[mt][np][h * 2 + 1] = relu2<T>(pack2<T>(acc[mt][h][2], acc[mt][h][3]));
      } else {
        float v[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) v[e] = epilogue_act<MODE>(layer.act, acc[mt][h][e]);
        if constexpr (MODE == 2) {
          const int col = np * 16 + h * 8 + (lane & 3) * 2;
          if (col >= layer.n) v[0] = v[2] = 0.0f;
          if (col + 1 >= layer.n) v[1] = v[3] = 0.0f;
        }
        out[mt][np][h * 2] = pack2<T>(v[0], v[1]);
        out[mt][np][h * 2 + 1] = pack2<T>(v[2], v[3]);
      }
    }
  }
}

// Column group np's accumulators of the last layer through the activation into y.
template <typename T, int MT, int MODE>
__device__ __forceinline__ void store_group(const float (&acc)[MT][2][4], const FusedTcLayer& layer,
                                            void* y, ElemType y_type, bool paired, int64_t row0,
                                            int64_t rows, int np, int lane) {
  const int g = lane >> 2;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int col = np * 16 + h * 8 + (lane & 3) * 2;
    if (col >= layer.n) continue;
    const bool both = col + 1 < layer.n;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      float v[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) v[e] = epilogue_act<MODE>(layer.act, acc[mt][h][e]);
      const int64_t r = row0 + mt * kMmaRows + g;
      if (r < rows) store_pair(y, y_type, r * layer.n + col, v[0], v[1], both, paired);
      if (r + 8 < rows) store_pair(y, y_type, (r + 8) * layer.n + col, v[2], v[3], both, paired);
    }
  }
}

// Two-tile 64-wide warps (16 per SM, 128 registers) keep the residual test at run time, a
// branch between column groups that ptxas schedules no code across (no residual variants):
// branch-free there, tcnn 1M rows ran 113-116 -> 119-121 us (H200, graph medians).
template <int MAXW, int MT>
inline constexpr bool kGroupFence = MT == 2 && MAXW == 64;

// A hidden layer: its outputs through the activation become the next layer's A fragments.
// FULL and RES (a residual layer) are compile-time so that the column groups' loop holds no
// branch: ptxas then interleaves the groups' independent mma chains, where a branch between
// groups ran them one after another. Measured on the H200 (tcnn fp16, graph medians, one call):
// one-tile warps 0.3-0.8 us faster from 1 to 4096 rows, tcnn128 1024 rows 14.4 -> 12.9-13.6 us
// and 1M rows 350 -> 340 (not two-tile 64-wide warps: kGroupFence).
template <typename T, int MAXW, int MT, int MODE, bool FULL, bool RES>
__device__ __forceinline__ void hidden_layer(const uint32_t (&a)[MT][MAXW / 16][4],
                                             uint32_t (&out)[MT][MAXW / 16][4],
                                             const FusedTcLayer& layer, const T* w,
                                             const float* bias, int lane) {
  constexpr int KT = MAXW / 16;
  const int wld = FULL ? MAXW + 8 : layer.k_pad + 8;
  const T* wl = lane_w_row(w, wld, lane);
  // fp16, no activation or relu: the bias goes onto the packed pairs (the sums round to fp16
  // before the bias add: well within fp16's tolerance; bf16's coarser rounding keeps the fp32 add).
  constexpr bool kPairBias = std::is_same_v<T, __half> && MODE <= 1;
#pragma unroll
  for (int np = 0; np < KT; ++np) {
    if (!FULL && np * 16 >= layer.n_pad) break;
    float acc[MT][2][4];
    column_group<T, MAXW, MT, FULL, !kPairBias>(acc, a, wl, wld, bias, np, layer.k_pad, lane);
    if constexpr (RES) {
      add_input<T, MAXW, MT>(acc, a, np);
    } else if constexpr (kGroupFence<MAXW, MT>) {
      if (layer.residual) add_input<T, MAXW, MT>(acc, a, np);  // never taken: a fence
    }
    uint32_t pair_bias[2] = {0, 0};
    if constexpr (kPairBias) {
      const int t2 = (lane & 3) * 2;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float2 bh = *reinterpret_cast<const float2*>(bias + np * 16 + h * 8 + t2);
        pair_bias[h] = pack2<T>(bh.x, bh.y);
      }
    }
    group_to_fragments<T, MAXW, MT, MODE, kPairBias>(acc, out, layer, pair_bias, np, lane);
  }
}

// The last layer: its outputs through the activation into y (RES as for hidden_layer).
template <typename T, int MAXW, int MT, int MODE, bool RES>
__device__ __forceinline__ void output_layer(const uint32_t (&a)[MT][MAXW / 16][4],
                                             const FusedTcLayer& layer, const T* w,
                                             const float* bias, void* y, ElemType y_type,
                                             bool paired, int64_t row0, int64_t rows, int lane) {
  const int wld = layer.k_pad + 8;
  const T* wl = lane_w_row(w, wld, lane);
#pragma unroll
  for (int np = 0; np < MAXW / 16; ++np) {
    if (np * 16 >= layer.n_pad) break;
    float acc[MT][2][4];
    column_group<T, MAXW, MT, false, true>(acc, a, wl, wld, bias, np, layer.k_pad, lane);
    if constexpr (RES) {
      add_input<T, MAXW, MT>(acc, a, np);
    } else if constexpr (kGroupFence<MAXW, MT>) {
      if (layer.residual) add_input<T, MAXW, MT>(acc, a, np);  // never taken: a fence
    }
    store_group<T, MT, MODE>(acc, layer, y, y_type, paired, row0, rows, np, lane);
  }
}

template <typename T, int MAXW, int MT, int MODE>
__device__ __forceinline__ void output_layer_shape(const uint32_t (&a)[MT][MAXW / 16][4],
                                                   const FusedTcLayer& layer, const T* w,
                                                   const float* bias, void* y, ElemType y_type,
                                                   bool paired, int64_t row0, int64_t rows,
                                                   int lane) {
  if constexpr (!kGroupFence<MAXW, MT>) {
    if (layer.residual) {
      output_layer<T, MAXW, MT, MODE, true>(a, layer, w, bias, y, y_type, paired, row0, rows,
                                            lane);
      return;
    }
  }
  output_layer<T, MAXW, MT, MODE, false>(a, layer, w, bias, y, y_type, paired, row0, rows, lane);
}

template <typename T, int MAXW, int MT, bool FULL, bool RES>
__device__ __forceinline__ void hidden_layer_act(const uint32_t (&a)[MT][MAXW / 16][4],
                                                 uint32_t (&out)[MT][MAXW / 16][4],
                                                 const FusedTcLayer& layer, const T* w,
                                                 const float* bias, int lane) {
  switch (layer.act.kind) {
    case ActKind::kNone:
      hidden_layer<T, MAXW, MT, 0, FULL, RES>(a, out, layer, w, bias, lane);
      break;
    case ActKind::kRelu:
      hidden_layer<T, MAXW, MT, 1, FULL, RES>(a, out, layer, w, bias, lane);
      break;
    default: hidden_layer<T, MAXW, MT, 2, FULL, RES>(a, out, layer, w, bias, lane); break;
  }
}

// Hidden layer l from fragments `a` into `out`.
template <typename T, int MAXW, int MT>
__device__ __forceinline__ void run_hidden(const FusedTcParams& params, const RrLayout& layout,
                                           const T* wsm, const float* bsm, int l,
                                           const uint32_t (&a)[MT][MAXW / 16][4],
                                           uint32_t (&out)[MT][MAXW / 16][4], int lane) {
  const FusedTcLayer& layer = params.layers[l];
  const T* w = wsm + layout.w_off[l];
  const float* bias = bsm + layout.b_off[l];
  // A residual layer is square: MAXW x MAXW or narrower, run by the bounded loops (with the
  // fence, the residual test is the run-time one inside the layer).
  if constexpr (!kGroupFence<MAXW, MT>) {
    if (layer.residual) {
      hidden_layer_act<T, MAXW, MT, false, true>(a, out, layer, w, bias, lane);
      return;
    }
  }
  if (layer.k_pad == MAXW && layer.n_pad == MAXW) {
    hidden_layer_act<T, MAXW, MT, true, false>(a, out, layer, w, bias, lane);
  } else {
    hidden_layer_act<T, MAXW, MT, false, false>(a, out, layer, w, bias, lane);
  }
}

// Layers [first, last] from fragments `a` (layer first's input) through the output into y:
// hidden layers in pairs, ping-ponging between two fragment sets (no copies between them).
template <typename T, int MAXW, int MT>
__device__ __forceinline__ void run_chain_from(const FusedTcParams& params, const RrLayout& layout,
                                               const T* wsm, const float* bsm, int first,
                                               uint32_t (&a)[MT][MAXW / 16][4], void* y,
                                               ElemType y_type, bool paired, int64_t row0,
                                               int64_t rows, int lane) {
  constexpr int KT = MAXW / 16;
  const int last = params.num_layers - 1;
  uint32_t a2[MT][KT][4];
  int l = first;
  for (; l + 2 <= last; l += 2) {
    run_hidden<T, MAXW, MT>(params, layout, wsm, bsm, l, a, a2, lane);
    run_hidden<T, MAXW, MT>(params, layout, wsm, bsm, l + 1, a2, a, lane);
  }
  if (l < last) {
    run_hidden<T, MAXW, MT>(params, layout, wsm, bsm, l, a, a2, lane);
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int kt = 0; kt < KT; ++kt) {
#pragma unroll
        for (int i = 0; i < 4; ++i) a[mt][kt][i] = a2[mt][kt][i];
      }
    }
  }
  const FusedTcLayer& layer = params.layers[last];
  const T* w = wsm + layout.w_off[last];
  const float* bias = bsm + layout.b_off[last];
  switch (layer.act.kind) {
    case ActKind::kNone:
      output_layer_shape<T, MAXW, MT, 0>(a, layer, w, bias, y, y_type, paired, row0, rows,
                                        lane);
      break;
    case ActKind::kRelu:
      output_layer_shape<T, MAXW, MT, 1>(a, layer, w, bias, y, y_type, paired, row0, rows,
                                        lane);
      break;
    default:
      output_layer_shape<T, MAXW, MT, 2>(a, layer, w, bias, y, y_type, paired, row0, rows,
                                        lane);
      break;
  }
}

// The warp's tiles of ROWS rows, staged (modes 0-2): once a tile's rows are in registers, the
// next tile's are copied into the warp's buffer while the layers run. Waits for the block's
// weights (stage_weights) too.
template <typename T, int MAXW, int ROWS>
__device__ __forceinline__ void run_staged_tiles(const FusedTcParams& params,
                                                 const RrLayout& layout, unsigned char* smem_raw,
                                                 const void* x, ElemType x_type, XMode x_mode,
                                                 void* y, ElemType y_type, bool paired,
                                                 int64_t rows) {
  constexpr int KT = MAXW / 16;
  constexpr int MT = ROWS / kMmaRows;
  constexpr int kLd = x_ld<MAXW>();
  const T* const wsm = reinterpret_cast<const T*>(smem_raw);
  const float* const bsm = reinterpret_cast<const float*>(smem_raw + layout.bias_bytes);
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  unsigned char* const raw = smem_raw + layout.x_bytes + warp * layout.warp_bytes;
  // The T rows ldmatrix reads (modes 0 and 2): the copied rows in mode 0, the element-loaded rows
  // in mode 2 (raw_bytes is 0 there).
  T* const xt = reinterpret_cast<T*>(x_mode == kXDirect ? raw : raw + layout.raw_bytes);
  const int k_in = params.layers[0].k;
  const int k_in_pad = params.layers[0].k_pad;
  const int64_t tiles = (rows + ROWS - 1) / ROWS;
  const int warps = static_cast<int>(blockDim.x) >> 5;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * warps;
  int64_t tile = static_cast<int64_t>(blockIdx.x) * warps + warp;
  if (tile < tiles && x_mode != kXElements) {
    copy_x_tile<T, MAXW, ROWS>(x, x_mode, k_in, k_in_pad, tile * ROWS, rows, raw, lane);
  }
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();  // the weights are in; from here on every warp is on its own

  for (; tile < tiles; tile += stride) {
    const int64_t row0 = tile * ROWS;
    cp_async_wait<0>();  // this tile's rows (copied during the previous tile's layers)
    __syncwarp();
    uint32_t a[MT][KT][4];
    if (x_mode == kXFp32) {
      load_a_f32<T, MAXW, MT>(a, reinterpret_cast<const float*>(raw), k_in_pad, lane);
    } else {
      if (x_mode == kXElements) {
        fill_x_tile<T, MAXW, ROWS>(x, x_type, k_in, k_in_pad, row0, rows, xt, lane);
        __syncwarp();
      }
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int kt = 0; kt < KT; ++kt) {
          if (kt * 16 >= k_in_pad) break;
          ldmatrix_x4(a[mt][kt], xt + (mt * kMmaRows + (lane & 15)) * kLd + kt * 16 + (lane >> 4) * 8);
        }
      }
    }
    __syncwarp();  // every lane has read its rows: the buffer may take the next tile's
    const int64_t next = tile + stride;
    if (next < tiles && x_mode != kXElements) {
      copy_x_tile<T, MAXW, ROWS>(x, x_mode, k_in, k_in_pad, next * ROWS, rows, raw, lane);
    }
    cp_async_commit();
    run_chain_from<T, MAXW, MT>(params, layout, wsm, bsm, 0, a, y, y_type, paired, row0, rows,
                                lane);
  }
  cp_async_wait<0>();
}

// The streamed layer's accumulators through its activation: into y when it is the only layer,
// else into the next layer's A fragments.
template <typename T, int MAXW, int MODE>
__device__ __forceinline__ void stream_epilogue(const float (&acc)[MAXW / 16][1][2][4],
                                                uint32_t (&a)[1][MAXW / 16][4],
                                                const FusedTcLayer& layer, bool is_output, void* y,
                                                ElemType y_type, bool paired, int64_t row0,
                                                int64_t rows, int lane) {
  const uint32_t no_pair_bias[2] = {0, 0};
#pragma unroll
  for (int np = 0; np < MAXW / 16; ++np) {
    if (np * 16 >= layer.n_pad) break;
    if (is_output) {
      store_group<T, 1, MODE>(acc[np], layer, y, y_type, paired, row0, rows, np, lane);
    } else {
      group_to_fragments<T, MAXW, 1, MODE, false>(acc[np], a, layer, no_pair_bias, np, lane);
    }
  }
}

// The warp's 16-row tiles with a streamed first layer (fused_rr_stream.cuh): no input staging;
// the memory system overlaps one warp's loads with the other warps' layers.
template <typename T, int MAXW>
__device__ __forceinline__ void run_stream_tiles(const FusedTcParams& params,
                                                 const RrLayout& layout, unsigned char* smem_raw,
                                                 const void* x, bool f32, void* y,
                                                 ElemType y_type, bool paired, int64_t rows) {
  constexpr int KT = MAXW / 16;
  const T* const wsm = reinterpret_cast<const T*>(smem_raw);
  const float* const bsm = reinterpret_cast<const float*>(smem_raw + layout.bias_bytes);
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  unsigned char* const ring = smem_raw + layout.x_bytes + warp * layout.warp_bytes;
  const int warps = static_cast<int>(blockDim.x) >> 5;
  const int64_t tiles = (rows + kMmaRows - 1) / kMmaRows;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * warps;
  const FusedTcLayer& first = params.layers[0];
  const int chunks = (first.k_pad + kStreamCols - 1) / kStreamCols;
  const StreamSource src{x, f32 ? ElemType::kF32 : params.compute, first.k, chunks, rows, tiles,
                         stride};
  const bool only = params.num_layers == 1;
  const int64_t first_tile = static_cast<int64_t>(blockIdx.x) * warps + warp;
  StreamCursor at{first_tile, 0, 0};
  int use = 0;
  if (f32) {
    stream_start<true>(at, src, ring, lane);
  } else {
    stream_start<false>(at, src, ring, lane);
  }
  // The oldest group: this thread's weight copies; then everyone's: the weights are in.
  if (f32) {
    cp_async_wait<stream_stages(true) - 1>();
  } else {
    cp_async_wait<stream_stages(false) - 1>();
  }
  __syncthreads();
  for (int64_t tile = first_tile; tile < tiles; tile += stride) {
    const int64_t row0 = tile * kMmaRows;
    float acc[KT][1][2][4];
    const T* w0 = wsm + layout.w_off[0];
    const float* b0 = bsm + layout.b_off[0];
    const int wld = layout.wld[0];
    if (f32) {
      stream_layer_f32<T, MAXW>(acc, at, use, src, ring, first.n_pad, w0, wld, b0, lane);
    } else {
      switch (stream_groups(first.n_pad)) {
        case 1:
          stream_layer_t<T, MAXW, 1>(acc, at, use, src, ring, first.n_pad, w0, wld, b0, lane);
          break;
        case 2:
          stream_layer_t<T, MAXW, 2>(acc, at, use, src, ring, first.n_pad, w0, wld, b0, lane);
          break;
        case 4:
          stream_layer_t<T, MAXW, 4>(acc, at, use, src, ring, first.n_pad, w0, wld, b0, lane);
          break;
        default:
          if constexpr (MAXW >= 128) {
            stream_layer_t<T, MAXW, 8>(acc, at, use, src, ring, first.n_pad, w0, wld, b0, lane);
          }
          break;
      }
    }
    uint32_t a[1][KT][4];
    switch (first.act.kind) {
      case ActKind::kNone:
        stream_epilogue<T, MAXW, 0>(acc, a, first, only, y, y_type, paired, row0, rows, lane);
        break;
      case ActKind::kRelu:
        stream_epilogue<T, MAXW, 1>(acc, a, first, only, y, y_type, paired, row0, rows, lane);
        break;
      default:
        stream_epilogue<T, MAXW, 2>(acc, a, first, only, y, y_type, paired, row0, rows, lane);
        break;
    }
    if (!only) {
      run_chain_from<T, MAXW, 1>(params, layout, wsm, bsm, 1, a, y, y_type, paired, row0, rows,
                                 lane);
    }
  }
  cp_async_wait<0>();
}

// ROWS: rows a warp runs through the chain at a time (16: one mma tile; 32: two tiles sharing
// each weight fragment read from shared memory). MIN_BLOCKS: blocks of WARPS per SM the
// register budget must allow. STREAM: the first layer streams its input (16-row tiles only).
template <typename T, int MAXW, int ROWS, int MIN_BLOCKS, bool STREAM, int WARPS>
__global__ void __launch_bounds__(WARPS * 32, MIN_BLOCKS) fused_rr_kernel(
    const __grid_constant__ FusedTcParams params, const __grid_constant__ RrLayout layout,
    const void* __restrict__ x, ElemType x_type, XMode x_mode, void* __restrict__ y,
    ElemType y_type, int64_t rows) {
  static_assert(!STREAM || ROWS == kMmaRows, "a streamed first layer runs 16-row tiles");
  extern __shared__ __align__(16) unsigned char smem_raw[];
  stage_weights<T>(params, layout, smem_raw);
  const int last = params.num_layers - 1;
  const bool paired = (params.layers[last].n % 2) == 0 && (reinterpret_cast<uintptr_t>(y) % 8) == 0;
  if constexpr (STREAM) {
    cp_async_commit();
    run_stream_tiles<T, MAXW>(params, layout, smem_raw, x, x_mode == kXStreamF32, y, y_type,
                              paired, rows);
  } else {
    run_staged_tiles<T, MAXW, ROWS>(params, layout, smem_raw, x, x_type, x_mode, y, y_type,
                                    paired, rows);
  }
}

// The widest layer the registers hold: every layer's input and output, but an input wider than
// kFusedRrMaxWidth, which the first layer streams.
inline int chain_width(const FusedTcParams& params) {
  int w = 0;
  for (int l = 0; l < params.num_layers; ++l) {
    const FusedTcLayer& layer = params.layers[l];
    if (l > 0 || layer.k_pad <= kFusedRrMaxWidth) w = std::max(w, layer.k_pad);
    w = std::max(w, layer.n_pad);
  }
  return w;
}

// The kernel's template width (64 or 128) for a chain whose input is `k_pad` wide and whose
// widest layer has `widest_pad` outputs: as chain_width, the input counts unless it is streamed.
inline int template_width_of(int k_pad, int widest_pad) {
  const int width = k_pad <= kFusedRrMaxWidth ? std::max(k_pad, widest_pad) : widest_pad;
  return width <= 64 ? 64 : 128;
}

inline int template_width(const FusedTcParams& params) {
  int widest = 0;
  for (int l = 0; l < params.num_layers; ++l) widest = std::max(widest, params.layers[l].n_pad);
  return template_width_of(params.layers[0].k_pad, widest);
}

inline bool streams_input(const FusedTcParams& params) {
  return params.layers[0].k_pad > template_width(params);
}

// Whether x is 16-byte aligned rows of the compute type or of fp32, which cp.async can copy.
struct InputRows {
  bool of_t;
  bool of_f32;
};
inline InputRows input_rows(const FusedTcParams& params, const void* x, ElemType x_type) {
  const int k = params.layers[0].k;
  const bool aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0;
  return {x_type == params.compute && k % 8 == 0 && aligned,
          x_type == ElemType::kF32 && k % 4 == 0 && aligned};
}

inline XMode x_mode_of(const FusedTcParams& params, const void* x, ElemType x_type) {
  const InputRows in = input_rows(params, x, x_type);
  if (streams_input(params)) return in.of_t ? kXStreamT : kXStreamF32;  // see fused_rr_takes
  return in.of_t ? kXDirect : in.of_f32 ? kXFp32 : kXElements;
}

// Shared memory of a block of `warps` warps of ROWS-row tiles, the largest over the input
// modes the chain can take (eligibility must not depend on the input's type or address).
inline int block_smem(const FusedTcParams& params, int rows, int warps = kMaxWarps) {
  if (streams_input(params)) {
    static_assert(stream_warp_bytes(true) >= stream_warp_bytes(false),
                  "the fp32 ring sizes a streamed chain's eligibility");
    return rr_layout(params, warps, template_width(params), rows, kXStreamF32).total_bytes;
  }
  int bytes = 0;
  for (const XMode mode : {kXDirect, kXFp32, kXElements}) {
    bytes = std::max(bytes,
                     rr_layout(params, warps, template_width(params), rows, mode).total_bytes);
  }
  return bytes;
}

// Blocks of `kernel` (`warps` warps) that its registers let one SM hold at once, whatever
// shared memory it is given.
inline int register_bound_blocks(const void* kernel, int warps) {
  int blocks = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, warps * 32, 0) !=
          cudaSuccess ||
      blocks < 1) {
    return 1;
  }
  return blocks;
}

template <typename T, int MAXW, int ROWS, int MIN_BLOCKS, bool STREAM = false,
          int WARPS = kMaxWarps>
cudaError_t launch(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                   ElemType y_type, int64_t rows, cudaStream_t stream) {
  static std::atomic<bool> opted_in[kMaxDevices];
  static std::atomic<int> by_registers[kMaxDevices];
  const auto kernel = fused_rr_kernel<T, MAXW, ROWS, MIN_BLOCKS, STREAM, WARPS>;
  const XMode mode = x_mode_of(params, x, x_type);
  if (const cudaError_t err = opt_in_block_smem(reinterpret_cast<const void*>(kernel), opted_in);
      err != cudaSuccess) {
    return err;
  }
  int device = 0;
  if (cudaError_t err = cudaGetDevice(&device); err != cudaSuccess) return err;
  if (device < 0 || device >= kMaxDevices) return cudaErrorInvalidDevice;
  int reg_blocks = by_registers[device].load();
  if (reg_blocks == 0) {
    reg_blocks = register_bound_blocks(reinterpret_cast<const void*>(kernel), WARPS);
    by_registers[device].store(reg_blocks);
  }
  // Resident blocks of WARPS: registers and this chain's shared memory (1 KiB per block is
  // the runtime's) both bound them; a persistent grid larger than that runs in a second wave.
  const RrLayout full = rr_layout(params, WARPS, MAXW, ROWS, mode);
  const int by_smem = current_sm_smem() / (full.total_bytes + 1024);
  const int per_sm = std::max(1, std::min(reg_blocks, by_smem));
  // Small batches: fewer warps per block (down to one per scheduler), so that the tiles spread
  // over every SM (each block copies all the weights once, which is cheap next to a layer chain
  // run on a crowded SM).
  const int64_t tiles = (rows + ROWS - 1) / ROWS;
  const int64_t sms = current_sm_count();
  int warps = WARPS;
  while (warps > 4 && tiles <= sms * (warps / 2)) warps /= 2;
  const int64_t wanted = (tiles + warps - 1) / warps;
  const int64_t most = sms * (warps == WARPS ? per_sm : per_sm * (WARPS / warps));
  const auto blocks = static_cast<unsigned>(wanted < most ? wanted : most);
  const RrLayout layout = rr_layout(params, warps, MAXW, ROWS, mode);
  kernel<<<blocks, warps * 32, layout.total_bytes, stream>>>(params, layout, x, x_type, mode, y,
                                                             y_type, rows);
  return cudaGetLastError();
}

// Two 16-row tiles per warp share each weight fragment read from shared memory but double a
// warp's latency: used once one-tile warps in blocks of 8 would need more than one block per SM.
// tcnn 64-64x4-16 fp16 on the H200 (graph medians, one call, two rounds): one- / two-tile warps
// at 16K rows 9.3-10.0 / 10.0-10.2 us, at 24K 11.5-12.2 / 10.6, at 32K 12.4 / 11.0-11.3. Warps of
// three or four tiles (one block of 8 or 12 per SM, 168-255 registers) were slower from 32K to
// 1M rows (1M: 122-134 us vs 114): fewer warps hide less latency. Measured on
// the H200 (fp16, fp32 I/O): tcnn 64-64x4-16 at 1M rows 130 us with two tiles vs 146 with one;
// tcnn128 64-128x4-16 at 64K / 1M rows 32.6 / 378 us vs 43.1 / 529. 2 blocks per SM (117
// registers, no spills) ran as fast as 3 (80 registers, which spill). A streamed first layer
// runs one-tile warps: it holds the accumulators of all its columns. 64-wide two-tile warps in
// blocks of 16 (one per SM): tcnn at 64K rows 14.2-15.0 us vs 15.1-15.9 in blocks of 8 (the
// same call, graph medians), 1M the same (118-120); one-tile warps at 1024 rows stay in blocks
// of 8 (7.9-8.0 us vs 8.6-8.7 in blocks of 16).
template <typename T>
cudaError_t launch_width(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                         ElemType y_type, int64_t rows, cudaStream_t stream) {
  const int64_t sms = current_sm_count();
  const bool two_tiles_fit = block_smem(params, 2 * kMmaRows) <= current_max_block_smem();
  if (template_width(params) == 64) {
    if (streams_input(params)) {
      return launch<T, 64, 16, 2, true>(params, x, x_type, y, y_type, rows, stream);
    }
    if (rows > sms * kMaxWarps * kMmaRows &&
        block_smem(params, 2 * kMmaRows, kTwoTileWarps) <= current_max_block_smem()) {
      return launch<T, 64, 32, 1, false, kTwoTileWarps>(params, x, x_type, y, y_type, rows,
                                                        stream);
    }
    return launch<T, 64, 16, 2>(params, x, x_type, y, y_type, rows, stream);
  }
  if (streams_input(params)) {
    return launch<T, 128, 16, 1, true>(params, x, x_type, y, y_type, rows, stream);
  }
  if (rows > sms * kMaxWarps * kMmaRows && two_tiles_fit) {
    return launch<T, 128, 32, 1>(params, x, x_type, y, y_type, rows, stream);
  }
  return launch<T, 128, 16, 1>(params, x, x_type, y, y_type, rows, stream);
}

// launch_width<__half> and launch_width<__nv_bfloat16>, each compiled in its own file.
cudaError_t launch_half(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                        ElemType y_type, int64_t rows, cudaStream_t stream);
cudaError_t launch_bf16(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                        ElemType y_type, int64_t rows, cudaStream_t stream);

}  // namespace mlprt::backend::cuda::rr
