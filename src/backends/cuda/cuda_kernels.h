#pragma once
// Our own small CUDA kernels (elementwise ops, casts, the fused small-batch MLP). Launchers
// return the launch's cudaError_t; the caller turns it into a Status.

#include <cstdint>

#include <cuda_runtime.h>

namespace mlprt::backend::cuda {

enum class ElemType : uint8_t { kF32, kF16, kBF16 };

inline constexpr int kMaxRank = 8;

/// y = a + b with numpy broadcasting, as element strides (0 on broadcast dims) per output dim.
struct BroadcastShape {
  int rank = 0;
  int64_t dims[kMaxRank] = {};
  int64_t stride_a[kMaxRank] = {};
  int64_t stride_b[kMaxRank] = {};
};

cudaError_t launch_cast(const void* in, ElemType in_type, void* out, ElemType out_type, int64_t n,
                        cudaStream_t stream);
cudaError_t launch_relu(const void* in, void* out, ElemType type, int64_t n, cudaStream_t stream);
cudaError_t launch_add(const void* a, const void* b, void* y, ElemType type,
                       const BroadcastShape& shape, int64_t n, cudaStream_t stream);
/// Deterministic values in [-1, 1) (tactic timing must not run on zeros).
cudaError_t launch_fill_pattern(void* out, ElemType type, int64_t n, uint32_t seed,
                                cudaStream_t stream);

/// A chain of Dense layers (fp32 weights, row-major [K, N], optional bias, relu or none) that
/// the fused kernel runs in one launch: one block per row, every intermediate in shared memory.
inline constexpr int kFusedMaxLayers = 8;
inline constexpr int kFusedMaxWidth = 1024;
struct FusedMlpLayer {
  const float* weights = nullptr;
  const float* bias = nullptr;
  int k = 0;
  int n = 0;
  int relu = 0;
};
struct FusedMlpParams {
  int num_layers = 0;
  FusedMlpLayer layers[kFusedMaxLayers];
};
cudaError_t launch_fused_mlp(const FusedMlpParams& params, const float* x, float* y, int64_t rows,
                             cudaStream_t stream);

}  // namespace mlprt::backend::cuda
