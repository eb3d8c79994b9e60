#include "backends/cuda/fused_mlp_wg.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>

#include "backends/cuda/device_limits.h"
#include "backends/cuda/fused_tc_device.cuh"
#include "backends/cuda/fused_wg_mma.cuh"

namespace mlprt::backend::cuda {
namespace wg {
namespace {

using namespace fused;  // NOLINT(google-build-using-namespace): the kernels' own helpers

constexpr int kWidth = 64;         // every layer's k_pad
constexpr int kTileRows = 64;      // a warpgroup's tile (wgmma's M)
constexpr int kWarpRows = 16;      // a warp's share of it
constexpr int kXld = kWidth + 8;   // elements between staged rows: ldmatrix rows on distinct banks
// Floats between staged fp32 rows: a half-warp's 8-byte reads of a fragment (rows g = 0..3,
// columns 2t) then start on banks 8g + 2t, all distinct (68 gave two-way conflicts).
constexpr int kXldF32 = kWidth + 8;
constexpr int kCoreBytes = 128;    // an 8 x 8 core matrix of 16-bit values

// A warp's row buffer: 16 rows of T, or of fp32.
constexpr int warp_x_bytes(bool f32_in) {
  return f32_in ? kWarpRows * kXldF32 * 4 : kWarpRows * kXld * 2;
}

// Where things live in the block's shared memory, computed on the host.
struct WgLayout {
  int w_off[kFusedTcMaxLayers];  // layer l's weights, in bytes: n_pad / 8 x 8 core matrices
  int b_off[kFusedTcMaxLayers];  // layer l's bias [n_pad], in floats from `bias_bytes`
  int bias_bytes = 0;
  int x_bytes = 0;     // where the warps' row buffers start (the image ends there)
  int warp_x_bytes = 0;  // one warp's buffer
  int mbar_bytes = 0;  // where the weight copy's mbarrier is
  int total_bytes = 0;
};

WgLayout wg_layout(const FusedTcParams& params, int warpgroups, bool f32_in) {
  WgLayout out;
  int bytes = 0;
  int floats = 0;
  for (int l = 0; l < params.num_layers; ++l) {
    out.w_off[l] = bytes;
    bytes += params.layers[l].n_pad * kWidth * 2;
    out.b_off[l] = floats;
    floats += params.layers[l].n_pad;
  }
  out.bias_bytes = bytes;
  out.x_bytes = bytes + floats * 4;
  out.warp_x_bytes = warp_x_bytes(f32_in);
  out.mbar_bytes = out.x_bytes + warpgroups * 4 * out.warp_x_bytes;
  out.total_bytes = out.mbar_bytes + 16;
  return out;
}

// The chains the kernel runs: fp16 / bf16, every layer taking 64 inputs (padded), at most 64
// outputs.
bool wg_shape(const FusedTcParams& params) {
  if (params.compute != ElemType::kF16 && params.compute != ElemType::kBF16) return false;
  if (params.num_layers < 1 || params.num_layers > kFusedTcMaxLayers) return false;
  for (int l = 0; l < params.num_layers; ++l) {
    if (params.layers[l].k_pad != kWidth || params.layers[l].n_pad > kWidth) return false;
  }
  return true;
}

// The shared-memory image of the weights and biases (block l writes layer l's): the weights
// ([n_pad][64], k contiguous) as 8 x 8 core matrices, matrix (n / 8, k / 8) at
// ((k / 8) * n_pad / 8 + n / 8) * 128 bytes, its rows 16 bytes apart. K steps are then
// `n_pad * 32` bytes apart and, within one, core matrices along K `n_pad * 16` (the
// descriptor's leading offset) and along N 128 (its stride offset).
__global__ void make_image_kernel(const __grid_constant__ FusedTcParams params,
                                  const __grid_constant__ WgLayout layout,
                                  unsigned char* __restrict__ image) {
  const int l = static_cast<int>(blockIdx.x);
  const int tid = static_cast<int>(threadIdx.x);
  const int threads = static_cast<int>(blockDim.x);
  const FusedTcLayer& layer = params.layers[l];
  const auto* w = static_cast<const uint4*>(layer.weights);  // 8 pieces a row
  const int groups = layer.n_pad / 8;
  unsigned char* const dst = image + layout.w_off[l];
  for (int i = tid; i < layer.n_pad * 8; i += threads) {
    const int n = i >> 3;
    const int k8 = i & 7;
    *reinterpret_cast<uint4*>(dst + (k8 * groups + (n >> 3)) * kCoreBytes + (n & 7) * 16) = w[i];
  }
  float* const bias = reinterpret_cast<float*>(image + layout.bias_bytes) + layout.b_off[l];
  for (int i = tid; i < layer.n_pad; i += threads) bias[i] = layer.bias[i];
}

// One layer of a 64-row tile: D[64 x N] = A (a: four k16 steps) x W^T, waited for.
template <typename T, int N>
__device__ __forceinline__ void run_layer(float (&d)[N / 2], const uint32_t (&a)[4][4],
                                          const unsigned char* w) {
  constexpr uint32_t kKStep = N * 32;  // bytes between k16 steps: two core-matrix columns
  fence();
  Wgmma<T, N>::template run<false>(d, a[0], smem_desc(w, kKStep / 2, kCoreBytes));
#pragma unroll
  for (int s = 1; s < 4; ++s) {
    Wgmma<T, N>::template run<true>(d, a[s], smem_desc(w + s * kKStep, kKStep / 2, kCoreBytes));
  }
  commit();
  wait_all();
}

// The bias, the residual input (a residual layer's A fragments hold its input in the
// accumulators' layout: 8-column block j is k16 step j / 2's half j % 2) and the activation
// on 8-column block j's four values (rows g, g + 8; columns c, c + 1).
template <typename T, int MODE>
__device__ __forceinline__ void finish_block(float (&v)[4], const uint32_t (&a)[4][4],
                                             const FusedTcLayer& layer, const float* bias, int j,
                                             int col) {
  const float2 b = *reinterpret_cast<const float2*>(bias + col);
  v[0] += b.x;
  v[1] += b.y;
  v[2] += b.x;
  v[3] += b.y;
  if (layer.residual) {
    const float2 top = unpack2<T>(a[j / 2][(j % 2) * 2]);
    const float2 bottom = unpack2<T>(a[j / 2][(j % 2) * 2 + 1]);
    v[0] += top.x;
    v[1] += top.y;
    v[2] += bottom.x;
    v[3] += bottom.y;
  }
#pragma unroll
  for (int e = 0; e < 4; ++e) v[e] = epilogue_act<MODE>(layer.act, v[e]);
}

// A hidden layer's accumulators into the next layer's A fragments. Padded columns hold 0 (zero
// weights and bias), which none and relu keep; any other activation's are zeroed.
template <typename T, int MODE>
__device__ __forceinline__ void to_fragments(const float (&d)[32], uint32_t (&a)[4][4],
                                             const FusedTcLayer& layer, const float* bias,
                                             int t2) {
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int col = 8 * j + t2;
    float v[4] = {d[4 * j], d[4 * j + 1], d[4 * j + 2], d[4 * j + 3]};
    finish_block<T, MODE>(v, a, layer, bias, j, col);
    if constexpr (MODE == 2) {
      if (col >= layer.n) v[0] = v[2] = 0.0f;
      if (col + 1 >= layer.n) v[1] = v[3] = 0.0f;
    }
    a[j / 2][(j % 2) * 2] = pack2<T>(v[0], v[1]);
    a[j / 2][(j % 2) * 2 + 1] = pack2<T>(v[2], v[3]);
  }
}

struct Output {
  void* y;
  ElemType type;
  bool paired;  // pairs of outputs as one store
  int64_t rows;
};

// The last layer (N = its n_pad) of the warp's 16 rows, from row `r` (this lane's first).
template <typename T, int N, int MODE>
__device__ __forceinline__ void store_rows(const float (&d)[N / 2], const uint32_t (&a)[4][4],
                                           const FusedTcLayer& layer, const float* bias,
                                           const Output& out, int64_t r, int t2) {
#pragma unroll
  for (int j = 0; j < N / 8; ++j) {
    const int col = 8 * j + t2;
    if (col >= layer.n) continue;
    float v[4] = {d[4 * j], d[4 * j + 1], d[4 * j + 2], d[4 * j + 3]};
    finish_block<T, MODE>(v, a, layer, bias, j, col);
    const bool both = col + 1 < layer.n;
    if (r < out.rows) store_pair(out.y, out.type, r * layer.n + col, v[0], v[1], both, out.paired);
    if (r + 8 < out.rows) {
      store_pair(out.y, out.type, (r + 8) * layer.n + col, v[2], v[3], both, out.paired);
    }
  }
}

template <typename T, int N>
__device__ __forceinline__ void last_layer(const uint32_t (&a)[4][4], const unsigned char* w,
                                           const FusedTcLayer& layer, const float* bias,
                                           const Output& out, int64_t r, int t2) {
  float d[N / 2];
  run_layer<T, N>(d, a, w);
  switch (layer.act.kind) {
    case ActKind::kNone: store_rows<T, N, 0>(d, a, layer, bias, out, r, t2); break;
    case ActKind::kRelu: store_rows<T, N, 1>(d, a, layer, bias, out, r, t2); break;
    default: store_rows<T, N, 2>(d, a, layer, bias, out, r, t2); break;
  }
}

// Copies the warp's 16 rows from row `row0` into its buffer (zeros past k and past the last
// row): T rows kXld elements apart (8 pieces of 16 bytes a row, 4 per lane), or (F32) fp32 rows
// kXldF32 floats apart (16 pieces a row, 8 per lane).
template <typename T, bool F32>
__device__ __forceinline__ void copy_rows(unsigned char* buf, const void* x, int k, int64_t row0,
                                          int64_t rows, int lane) {
  constexpr int kPieces = F32 ? 16 : 8;  // a row's 16-byte pieces
  constexpr int kPerPiece = F32 ? 4 : 8;  // elements a piece
  constexpr int kLd = F32 ? kXldF32 : kXld;
  using E = std::conditional_t<F32, float, T>;
  const E* const src = static_cast<const E*>(x);
  E* const dst = reinterpret_cast<E*>(buf);
#pragma unroll
  for (int i = 0; i < kWarpRows * kPieces / 32; ++i) {
    const int piece = lane + 32 * i;
    const int r = piece / kPieces;
    const int c = (piece % kPieces) * kPerPiece;
    const bool valid = row0 + r < rows && c < k;
    cp_async16(dst + r * kLd + c, valid ? src + (row0 + r) * k + c : src, valid);
  }
}

// The first layer's A fragments from the warp's buffer: ldmatrix of T rows, or fp32 rows read in
// the fragments' pairs (rows g / g + 8, columns 2t, 2t + 1 and 2t + 8, 2t + 9 of each k16 step)
// and rounded to T.
template <typename T, bool F32>
__device__ __forceinline__ void load_a(uint32_t (&a)[4][4], const unsigned char* buf, int lane) {
  if constexpr (F32) {
    const float* base =
        reinterpret_cast<const float*>(buf) + (lane >> 2) * kXldF32 + (lane & 3) * 2;
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      const float* p = base + s * 16;
      const float2 v0 = *reinterpret_cast<const float2*>(p);
      const float2 v1 = *reinterpret_cast<const float2*>(p + 8 * kXldF32);
      const float2 v2 = *reinterpret_cast<const float2*>(p + 8);
      const float2 v3 = *reinterpret_cast<const float2*>(p + 8 * kXldF32 + 8);
      a[s][0] = pack2<T>(v0.x, v0.y);
      a[s][1] = pack2<T>(v1.x, v1.y);
      a[s][2] = pack2<T>(v2.x, v2.y);
      a[s][3] = pack2<T>(v3.x, v3.y);
    }
  } else {
    const T* xs = reinterpret_cast<const T*>(buf);
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      ldmatrix_x4(a[s], xs + (lane & 15) * kXld + s * 16 + (lane >> 4) * 8);
    }
  }
}

template <typename T, int WARPGROUPS, bool F32_IN>
__global__ void __launch_bounds__(WARPGROUPS * 128, 1)
    fused_wg_kernel(const __grid_constant__ FusedTcParams params,
                    const __grid_constant__ WgLayout layout, const void* __restrict__ x,
                    void* __restrict__ y, ElemType y_type, int64_t rows) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(128) unsigned char smem[];
  // The weights and biases in one bulk copy of their image: copied 16 bytes per thread by
  // every SM at once, they took the first tile's start from 1.3 to 5.0 us (median) at 64K rows.
  const auto mbar = static_cast<uint32_t>(__cvta_generic_to_shared(smem + layout.mbar_bytes));
  if (threadIdx.x == 0) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(mbar) : "memory");
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(mbar),
                 "r"(layout.x_bytes)
                 : "memory");
    asm volatile(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, "
        "[%3];\n" ::"r"(static_cast<uint32_t>(__cvta_generic_to_shared(smem))),
        "l"(params.wg_image), "r"(layout.x_bytes), "r"(mbar)
        : "memory");
  }
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int t2 = (lane & 3) * 2;
  const int k = params.layers[0].k;
  unsigned char* const xs = smem + layout.x_bytes + warp * layout.warp_x_bytes;
  const int64_t tiles = (rows + kTileRows - 1) / kTileRows;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * WARPGROUPS;
  const int64_t warp_row = (warp & 3) * kWarpRows;  // this warp's rows of a tile
  int64_t tile = static_cast<int64_t>(blockIdx.x) * WARPGROUPS + (warp >> 2);
  if (tile < tiles) copy_rows<T, F32_IN>(xs, x, k, tile * kTileRows + warp_row, rows, lane);
  cp_async_commit();
  __syncthreads();  // the mbarrier is initialized before anyone waits on it
  asm volatile(
      "{\n.reg .pred done;\nWAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], 0;\n"
      "@!done bra WAIT_%=;\n}\n" ::"r"(mbar)
      : "memory");
  const float* const bias = reinterpret_cast<const float*>(smem + layout.bias_bytes);
  const int last = params.num_layers - 1;
  const FusedTcLayer& out_layer = params.layers[last];
  const Output out{y, y_type,
                   out_layer.n % 2 == 0 && reinterpret_cast<uintptr_t>(y) % 8 == 0, rows};
  for (; tile < tiles; tile += stride) {
    cp_async_wait<0>();
    __syncwarp();
    uint32_t a[4][4];
    load_a<T, F32_IN>(a, xs, lane);
    __syncwarp();  // every lane has read its rows: the buffer may take the next tile's
    if (tile + stride < tiles) {
      copy_rows<T, F32_IN>(xs, x, k, (tile + stride) * kTileRows + warp_row, rows, lane);
    }
    cp_async_commit();
    for (int l = 0; l < last; ++l) {
      const FusedTcLayer& layer = params.layers[l];
      const float* b = bias + layout.b_off[l];
      float d[32];
      run_layer<T, 64>(d, a, smem + layout.w_off[l]);
      switch (layer.act.kind) {
        case ActKind::kNone: to_fragments<T, 0>(d, a, layer, b, t2); break;
        case ActKind::kRelu: to_fragments<T, 1>(d, a, layer, b, t2); break;
        default: to_fragments<T, 2>(d, a, layer, b, t2); break;
      }
    }
    const unsigned char* w = smem + layout.w_off[last];
    const float* b = bias + layout.b_off[last];
    const int64_t r = tile * kTileRows + warp_row + (lane >> 2);
    switch (out_layer.n_pad) {
      case 16: last_layer<T, 16>(a, w, out_layer, b, out, r, t2); break;
      case 32: last_layer<T, 32>(a, w, out_layer, b, out, r, t2); break;
      case 48: last_layer<T, 48>(a, w, out_layer, b, out, r, t2); break;
      default: last_layer<T, 64>(a, w, out_layer, b, out, r, t2); break;
    }
  }
  cp_async_wait<0>();
#endif
}

template <typename T, int WARPGROUPS, bool F32_IN>
cudaError_t launch(const FusedTcParams& params, const void* x, void* y, ElemType y_type,
                   int64_t rows, int64_t tiles, cudaStream_t stream) {
  static std::atomic<bool> opted_in[kMaxDevices];
  const auto kernel = fused_wg_kernel<T, WARPGROUPS, F32_IN>;
  if (const cudaError_t err = opt_in_block_smem(reinterpret_cast<const void*>(kernel), opted_in);
      err != cudaSuccess) {
    return err;
  }
  const WgLayout layout = wg_layout(params, WARPGROUPS, F32_IN);
  const int64_t wanted = (tiles + WARPGROUPS - 1) / WARPGROUPS;
  const auto blocks = static_cast<unsigned>(std::min<int64_t>(wanted, current_sm_count()));
  kernel<<<blocks, WARPGROUPS * 128, layout.total_bytes, stream>>>(
      params, layout, x, y, y_type, rows);
  return cudaGetLastError();
}

// Four warpgroups a block once two would run more than one tile each: the SM's tensor cores
// then have a warpgroup's wgmmas to run while another one runs its epilogue.
template <typename T, bool F32_IN>
cudaError_t launch_type(const FusedTcParams& params, const void* x, void* y, ElemType y_type,
                        int64_t rows, cudaStream_t stream) {
  const int64_t tiles = (rows + kTileRows - 1) / kTileRows;
  if (tiles > 2 * static_cast<int64_t>(current_sm_count()) &&
      wg_layout(params, 4, F32_IN).total_bytes <= current_max_block_smem()) {
    return launch<T, 4, F32_IN>(params, x, y, y_type, rows, tiles, stream);
  }
  return launch<T, 2, F32_IN>(params, x, y, y_type, rows, tiles, stream);
}

}  // namespace
}  // namespace wg

const char* fused_wg_ineligible(const FusedTcParams& params) {
  if (!wg::wg_shape(params)) {
    return "the warpgroup kernel runs fp16 and bf16 chains of 64-wide layers";
  }
  if (params.wg_image == nullptr) return "no weight image for the warpgroup kernel";
  if (current_compute_capability() != 90) {
    return "the warpgroup kernel needs a compute capability 9.0 GPU";
  }
  // The larger buffers, those of fp32 rows: then either input fits.
  if (wg::wg_layout(params, 2, true).total_bytes > current_max_block_smem()) {
    return "the weights do not fit in shared memory";
  }
  return nullptr;
}

int64_t fused_wg_image_bytes(const FusedTcParams& params) {
  if (!wg::wg_shape(params) || current_compute_capability() != 90) return 0;
  return wg::wg_layout(params, 0, false).x_bytes;
}

cudaError_t fused_wg_make_image(const FusedTcParams& params, void* image, cudaStream_t stream) {
  if (!wg::wg_shape(params)) return cudaErrorInvalidValue;
  const wg::WgLayout layout = wg::wg_layout(params, 0, false);
  wg::make_image_kernel<<<static_cast<unsigned>(params.num_layers), 256, 0, stream>>>(
      params, layout, static_cast<unsigned char*>(image));
  if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  return cudaStreamSynchronize(stream);
}

bool fused_wg_takes(const FusedTcParams& params, const void* x, ElemType x_type) {
  if (reinterpret_cast<uintptr_t>(x) % 16 != 0) return false;
  const int k = params.layers[0].k;
  return (x_type == params.compute && k % 8 == 0) || (x_type == ElemType::kF32 && k % 4 == 0);
}

cudaError_t launch_fused_wg(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                            ElemType y_type, int64_t rows, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (fused_wg_ineligible(params) != nullptr || !fused_wg_takes(params, x, x_type)) {
    return cudaErrorInvalidValue;
  }
  const bool f32 = x_type == ElemType::kF32;
  if (params.compute == ElemType::kF16) {
    return f32 ? wg::launch_type<__half, true>(params, x, y, y_type, rows, stream)
               : wg::launch_type<__half, false>(params, x, y, y_type, rows, stream);
  }
  return f32 ? wg::launch_type<__nv_bfloat16, true>(params, x, y, y_type, rows, stream)
             : wg::launch_type<__nv_bfloat16, false>(params, x, y, y_type, rows, stream);
}

}  // namespace mlprt::backend::cuda
