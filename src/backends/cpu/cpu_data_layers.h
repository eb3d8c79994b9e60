#pragma once
// The cpu backend's data-movement and batched-product layers: Transpose / Slice (one strided
// copy), ReduceMean (over one block of adjacent axes) and MatMul of activations (batched sgemm
// with broadcast batch axes, transposed reads and writes, bias + activation epilogue). Sizes
// and offsets are computed in prepare (ir/data_ops.h); the runs never allocate.

#include <cstdint>
#include <vector>

#include "backends/cpu/cpu_layers.h"
#include "ir/data_ops.h"

namespace mlprt::backend::cpu {

/// A prepared Transpose / Slice: the copy and an odometer sized for it.
struct CopyRun {
  ir::StridedCopy copy;
  std::vector<int64_t> counter;
  int64_t total = 0;
};
void run_strided_copy(CopyRun& run, const float* x, float* y);

void run_reduce_mean(const ir::ReduceLoops& loops, const float* x, float* y);

/// y = act(op(a) @ op(b) + bias + residual) per product of `shape` (`residual`: null, or a
/// tensor of y's shape). Products, or row blocks of one product when there are fewer products
/// than `threads`, run in parallel, each a single-threaded sgemm followed by its epilogue.
void run_matmul(const ir::MatMulShape& shape, const LayerParams& params, const float* a,
                const float* b, const float* residual, float* y, int threads);

}  // namespace mlprt::backend::cpu
