// The register-resident fused MLP kernel (fused_rr_kernel.cuh) for __half weights.
#include "backends/cuda/fused_rr_kernel.cuh"

namespace mlprt::backend::cuda::rr {

cudaError_t launch_half(const FusedTcParams& params, const void* x, ElemType x_type, void* y,
                        ElemType y_type, int64_t rows, cudaStream_t stream) {
  return launch_width<__half>(params, x, x_type, y, y_type, rows, stream);
}

}  // namespace mlprt::backend::cuda::rr
