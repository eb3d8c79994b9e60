#pragma once
// The register-resident variant of the fused tensor-core MLP (fused_mlp_tc.h), for chains whose
// every layer is at most kFusedRrMaxWidth wide (tiny-cuda-nn's shapes; the input may be wider,
// as the tutorial's 784, and then the first layer streams it, see below):
//  * persistent blocks, as many as are resident at once (registers and shared memory both
//    bound them): every layer's weights and biases are copied into shared memory once per
//    block, and the block's warps then loop over tiles of rows; small batches get blocks of
//    fewer warps, so that their tiles spread over every SM;
//  * each warp runs its rows (one 16-row mma tile, or two at large batches, which share each
//    weight fragment) through all the layers on its own, with no block barrier: a layer's fp32
//    accumulators (started from the bias, activation applied) go straight into the next layer's
//    A fragments, because mma.sync m16n8k16's C layout is its A layout for 16-column pairs, so
//    activations never leave the registers between layers. A layer runs 16 output columns at a
//    time, so few accumulators are live; full-width layers run with compile-time bounds;
//  * once a tile's rows are in registers, the next tile's are copied (cp.async) into the warp's
//    staging buffer while the layers run (fp32 rows are converted as they are read into the
//    first layer's fragments); the output is written once, from the last layer's registers;
//  * an input wider than the chain is not staged: the first layer streams it through a per-warp
//    ring of cp.async chunks (fused_rr_stream.cuh), its weights held in shared memory like the
//    others';
//  * a residual layer (y = act(x W + b + x)) adds its input fragments, still in registers, to its
//    accumulators: they share the C / A layout. Its chain must not stream its input.

#include <cstdint>

#include <cuda_runtime.h>

#include "backends/cuda/fused_mlp_tc.h"

namespace mlprt::backend::cuda {

inline constexpr int kFusedRrMaxWidth = 128;

/// Whether launch_fused_rr can run `params` on this GPU (widths, shared memory, a residual layer
/// in a chain that streams its input), and if not, why.
const char* fused_rr_ineligible(const FusedTcParams& params);

/// Whether it streams an input `input_k` wide through the first layer of a chain whose widest
/// layer has `widest` outputs (an input wider than the kernel's 64- or 128-wide template).
bool fused_rr_streams_input(int64_t input_k, int64_t widest);

/// Whether it can read this input: any, except that an input wider than the chain (streamed by
/// the first layer) must be 16-byte aligned rows of the compute type (k % 8 == 0) or of fp32
/// (k % 4 == 0); launch_fused_tc runs other such inputs with the staged kernel.
bool fused_rr_takes(const FusedTcParams& params, const void* x, ElemType x_type);

/// Runs the chain as launch_fused_tc does; requires fused_rr_ineligible(params) == nullptr and
/// fused_rr_takes(params, x, x_type).
cudaError_t launch_fused_rr(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                            ElemType y_type, int64_t rows, cudaStream_t stream);

}  // namespace mlprt::backend::cuda
