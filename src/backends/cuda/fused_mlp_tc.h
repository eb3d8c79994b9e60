#pragma once
// The whole-network fused MLP forward on tensor cores (fp16 / bf16 with fp32 accumulation):
// one launch for a chain of Dense layers. A block owns 128 rows (32 for small batches); their
// activations stay in shared memory between layers (fp16 / bf16, as the unfused path stores
// them), the input is read once and the output written once. Each layer's weights are staged in shared memory in
// chunks of 64 input columns, the next chunk copied (cp.async) while the tensor cores
// (mma.sync m16n8k16) work on the current one. Warps tile the block as 4 (or 1) along the rows
// x width / 64 along the columns; a warp holds a 32 x 64 tile of fp32 accumulators.
//
// Chains at most 128 wide run the register-resident variant (fused_mlp_rr.h) instead, and
// 64-wide chains on Hopper its warpgroup variant (fused_mlp_wg.h); fp32 and tf32 engines run
// fused_mlp_f32.h's TF32 kernel (compute kF32).
//
// Limits: hidden and output widths up to kFusedTcMaxWidth (padded to 16 inside, never in the
// user's data), any input width (streamed in chunks), any row count, up to kFusedTcMaxLayers
// layers, every ActKind applied in fp32 on the accumulator plus the bias. A layer that adds its
// own input to its output (residual) runs on the register-resident kernel only (fused_mlp_rr.h).

#include <cstdint>

#include <cuda_runtime.h>

#include "backends/cuda/cuda_kernels.h"

namespace mlprt::backend::cuda {

inline constexpr int kFusedTcMaxLayers = 16;
inline constexpr int kFusedTcMaxWidth = 256;
inline constexpr int kFusedTcChunk = 64;  ///< input columns of a layer staged at a time

struct FusedTcLayer {
  /// W transposed and padded: [n_pad][k_pad] in the compute type (k contiguous), zeros past
  /// [n][k]; 16-byte aligned.
  const void* weights = nullptr;
  /// [n_pad] fp32, zeros past n; never null.
  const float* bias = nullptr;
  int k = 0;
  int n = 0;
  int k_pad = 0;  ///< k rounded up to 16
  int n_pad = 0;  ///< n rounded up to 16
  ActParams act;
  /// y = act(x W + b + x): the layer adds its own input (k == n) before the activation.
  bool residual = false;
};

struct FusedTcParams {
  /// kF16 or kBF16; kF32: fp32 weights on TF32 tensor cores (fused_mlp_f32.h)
  ElemType compute = ElemType::kF16;
  /// compute kF32: each product as three TF32 ones, for fp32's accuracy (else one, TF32's)
  bool split_tf32 = false;
  int num_layers = 0;
  int width_pad = 0;  ///< the largest n_pad (sizes the shared memory and the warps)
  FusedTcLayer layers[kFusedTcMaxLayers];
  /// The warpgroup kernel's shared-memory image of every layer's weights and biases, copied in
  /// whole (fused_mlp_wg.h); null when the chain is not of its shape.
  const void* wg_image = nullptr;
};

inline int fused_tc_pad(int64_t n) { return static_cast<int>((n + 15) / 16 * 16); }

/// Runs the chain on `rows` rows of `x` (x_type, row-major [rows, layers[0].k]) into `y`
/// (y_type, [rows, layers[last].n]). cudaErrorInvalidValue for parameters outside the limits.
cudaError_t launch_fused_tc(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                            ElemType y_type, int64_t rows, cudaStream_t stream);

}  // namespace mlprt::backend::cuda
