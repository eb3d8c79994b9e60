#include "backends/cuda/fused_mlp_rr.h"

#include "backends/cuda/fused_rr_kernel.cuh"

namespace mlprt::backend::cuda {

using rr::block_smem;
using rr::chain_width;
using rr::input_rows;
using rr::InputRows;
using rr::kMmaRows;
using rr::streams_input;
using rr::template_width_of;

const char* fused_rr_ineligible(const FusedTcParams& params) {
  if (params.num_layers < 1) return "no layers";
  if (chain_width(params) > kFusedRrMaxWidth) return "a layer is wider than 128";
  if (streams_input(params)) {
    for (int l = 0; l < params.num_layers; ++l) {
      if (params.layers[l].residual) {
        return "a residual layer in a chain whose input is wider than its layers (streamed)";
      }
    }
  }
  if (block_smem(params, kMmaRows) > current_max_block_smem()) {
    return "the weights do not fit in shared memory";
  }
  return nullptr;
}

bool fused_rr_streams_input(int64_t input_k, int64_t widest) {
  const int k_pad = fused_tc_pad(input_k);
  return k_pad > template_width_of(k_pad, fused_tc_pad(widest));
}

bool fused_rr_takes(const FusedTcParams& params, const void* x, ElemType x_type) {
  if (!streams_input(params)) return true;
  const InputRows in = input_rows(params, x, x_type);
  return in.of_t || in.of_f32;
}

cudaError_t launch_fused_rr(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                            ElemType y_type, int64_t rows, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (fused_rr_ineligible(params) != nullptr || !fused_rr_takes(params, x, x_type)) {
    return cudaErrorInvalidValue;
  }
  switch (params.compute) {
    case ElemType::kF16: return rr::launch_half(params, x, x_type, y, y_type, rows, stream);
    case ElemType::kBF16: return rr::launch_bf16(params, x, x_type, y, y_type, rows, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace mlprt::backend::cuda
