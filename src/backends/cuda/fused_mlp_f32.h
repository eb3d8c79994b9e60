#pragma once
// The fused MLP of fp32 engines on tensor cores (mma.sync m16n8k8 in TF32). --tf32 engines take
// one TF32 product per term; fp32 engines take three (3xTF32): each operand splits into a TF32
// value and the TF32 rounding of what it left out, and hi*hi + hi*lo + lo*hi (lo*lo is below
// fp32's rounding) accumulate in fp32, which keeps fp32's accuracy on tensor cores.
// The structure is the register-resident kernel's streamed variant (fused_mlp_rr.h):
//  * persistent blocks of warps; every layer's fp32 weights and biases in shared memory;
//  * each warp runs 16-row tiles through every layer on its own: the first layer streams its
//    input through the warp's ring of fp32 chunks (fused_rr_stream.cuh), whatever its width;
//    later layers take the previous layer's accumulators (activation applied) as their A
//    fragments: m16n8k8's C layout is its A layout up to a permutation of k within each 8
//    columns, which the weight reads share;
//  * the output is written once, from the last layer's registers.
// Limits: every layer's output at most kFusedF32MaxWidth wide (the input any width), the first
// layer's weights and the rings within the block's shared memory.

#include <cstdint>

#include <cuda_runtime.h>

#include "backends/cuda/fused_mlp_tc.h"

namespace mlprt::backend::cuda {

inline constexpr int kFusedF32MaxWidth = 64;

/// Whether launch_fused_f32 can run `params` (compute kF32) on this GPU, and if not, why.
const char* fused_f32_ineligible(const FusedTcParams& params);

/// Runs the chain as launch_fused_tc does, on any input (16-byte aligned fp32 rows with k % 4 == 0
/// are copied asynchronously; anything else element by element). Requires
/// fused_f32_ineligible(params) == nullptr.
cudaError_t launch_fused_f32(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                             ElemType y_type, int64_t rows, cudaStream_t stream);

}  // namespace mlprt::backend::cuda
