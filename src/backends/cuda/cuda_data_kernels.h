#pragma once
// CUDA kernels of the data-movement layers (Transpose / Slice as one strided gather,
// ReduceMean) and the MatMul layer's bias + activation epilogue. Same conventions as cuda_kernels.h:
// launchers return the launch's cudaError_t, element types as ElemType, fp32 math.

#include <cstdint>

#include <cuda_runtime.h>

#include "backends/cuda/cuda_kernels.h"

namespace mlprt::backend::cuda {

/// y[i] (row-major over `dims`) = x[offset + sum_d index_d * stride[d]]; Transpose and Slice.
struct GatherShape {
  int rank = 0;
  int64_t dims[kMaxRank] = {};
  int64_t stride[kMaxRank] = {};
  int64_t offset = 0;
};
cudaError_t launch_strided_copy(const void* x, void* y, ElemType type, const GatherShape& shape,
                                int64_t n, cudaStream_t stream);

/// Mean over the reduced axes: output o averages the `count` inputs at
/// base(o) + sum_d index_d * reduced_stride[d]; base(o) = sum_d index_d * kept_stride[d] over
/// the kept dims (row-major order of the output). Blocks of 32 outputs x 32 slices of the reduced elements, fp32
/// accumulation.
struct ReduceShape {
  int kept_rank = 0;
  int64_t kept_dims[kMaxRank] = {};
  int64_t kept_stride[kMaxRank] = {};
  int reduced_rank = 0;
  int64_t reduced_dims[kMaxRank] = {};
  int64_t reduced_stride[kMaxRank] = {};
  int64_t count = 0;  ///< product of reduced_dims
};
cudaError_t launch_reduce_mean(const void* x, void* y, ElemType type, const ReduceShape& shape,
                               int64_t outputs, cudaStream_t stream);

/// y[i] = act(y[i] + bias[(i / every) % n]) for i < total (fp32 bias; nullptr: none): every = 1
/// adds along rows of n columns, every = m along a transposed product's [n, m] rows. The MatMul
/// layer's epilogue, one pass over y.
cudaError_t launch_bias_activation(void* y, ElemType type, const float* bias, int64_t n,
                                   int64_t every, int64_t total, const ActParams& act,
                                   cudaStream_t stream);

}  // namespace mlprt::backend::cuda
