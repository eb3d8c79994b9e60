#pragma once
// The register-resident variant of the fused tensor-core MLP (fused_mlp_tc.h), for chains whose
// every layer is at most kFusedRrMaxWidth wide, input included (tiny-cuda-nn's shapes):
//  * persistent blocks: every layer's weights and biases are copied into shared memory once per
//    block, and the block's warps then loop over tiles of rows;
//  * each warp runs its rows (32, or 16 at width 128) through all the layers on its own, with
//    no block barrier: a layer's fp32 accumulators (bias and activation applied) go straight
//    into the next layer's A fragments, because mma.sync m16n8k16's C layout is its A layout
//    for 16-column pairs, so activations never leave the registers between layers;
//  * the next tile's input rows are copied (cp.async) into the warp's second staging buffer while
//    the current tile computes; the output is written once, from the last layer's registers.

#include <cstdint>

#include <cuda_runtime.h>

#include "backends/cuda/fused_mlp_tc.h"

namespace mlprt::backend::cuda {

inline constexpr int kFusedRrMaxWidth = 128;

/// Whether launch_fused_rr can run `params` on this GPU (widths, shared memory), and if not, why.
const char* fused_rr_ineligible(const FusedTcParams& params);

/// Runs the chain as launch_fused_tc does; requires fused_rr_ineligible(params) == nullptr.
cudaError_t launch_fused_rr(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                            ElemType y_type, int64_t rows, cudaStream_t stream);

}  // namespace mlprt::backend::cuda
