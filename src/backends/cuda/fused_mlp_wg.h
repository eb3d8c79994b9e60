#pragma once
// The warpgroup variant of the fused tensor-core MLP (fused_mlp_tc.h) for Hopper (compute
// capability 9.0, wgmma): chains whose every layer takes at most 64 inputs, padded to 64 inside
// (tiny-cuda-nn's 64-wide networks: 64-wide hidden layers, an output up to 64 wide):
//  * persistent blocks of warpgroups (4 warps each, one block per SM): every layer's weights
//    and biases come into shared memory once per block, in one bulk copy (cp.async.bulk) of
//    an image that make_fused_tc prepares (FusedTcParams::wg_image: the weights as the 8 x 8
//    core matrices wgmma reads);
//  * each warpgroup runs 64-row tiles through all the layers: a layer is four wgmma k-steps
//    (m64nNk16) with A, the activations, from registers and B, the weights, from shared memory;
//    the fp32 accumulators, with the bias, the residual input and the activation, are packed
//    straight into the next layer's A registers (each warp's accumulators hold its 16 rows in
//    the same layout as its A fragments), so activations never leave the registers;
//  * each warp copies its 16 rows of the next tile (cp.async) while the layers run: rows of the
//    compute type, or fp32 rows (an fp16 engine with fp32 I/O), rounded as the first layer
//    reads them; the output is written once, from the last layer's registers.
// Against the register-resident kernel (fused_mlp_rr.h), which runs 16-row mma.sync tiles, it
// was faster at every row count measured (launch_fused_tc prefers it where it is eligible).

#include <cstdint>

#include <cuda_runtime.h>

#include "backends/cuda/fused_mlp_tc.h"

namespace mlprt::backend::cuda {

/// Why launch_fused_wg cannot run `params` on this GPU (nullptr: it can): not a Hopper GPU, a
/// layer with more than 64 inputs, not fp16 / bf16, the weights beyond shared memory.
const char* fused_wg_ineligible(const FusedTcParams& params);

/// Bytes of the kernel's shared-memory image of the weights and biases (FusedTcParams::
/// wg_image); 0 when the chain is not of its shape (fp16 / bf16, every layer 64 wide, padded)
/// or the current GPU is not of compute capability 9.0 (nothing would read it).
int64_t fused_wg_image_bytes(const FusedTcParams& params);

/// Writes that image into `image` from the layers' weights and biases, and waits for it.
cudaError_t fused_wg_make_image(const FusedTcParams& params, void* image, cudaStream_t stream);

/// Whether it can read this input: 16-byte aligned rows of the compute type (k % 8 == 0) or of
/// fp32 (k % 4 == 0; rounded to the compute type as the first layer reads them).
bool fused_wg_takes(const FusedTcParams& params, const void* x, ElemType x_type);

/// Runs the chain as launch_fused_tc does; requires fused_wg_ineligible(params) == nullptr and
/// fused_wg_takes(params, x, x_type).
cudaError_t launch_fused_wg(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                            ElemType y_type, int64_t rows, cudaStream_t stream);

}  // namespace mlprt::backend::cuda
