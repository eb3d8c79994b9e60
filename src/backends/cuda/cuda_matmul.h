#pragma once
// The MatMul layer on cuBLASLt: batched products of activations (or N-D constants) with
// numpy broadcasting of the batch axes, transposed reads (transpose_a / transpose_b) and a
// transposed write (transpose_y) expressed as cuBLASLt operand ops, not copies.
//
// Row-major Y[m, n] = op(A) op(B) is column-major Y' = op(B)' op(A)': cuBLASLt's first operand
// is B's storage and its second A's. A transposed write (Y stored [n, m]) is column-major
// Y = op(A) op(B): the operands stay in order and each op flips. Products whose batch offsets
// step uniformly (a stride 0 broadcasts one operand, e.g. the token-mixing weight) are one
// strided-batched call; others (a broadcast middle batch axis) one call per product.

#include <cstdint>
#include <vector>

#include "backends/cuda/cuda_common.h"
#include "ir/data_ops.h"

namespace mlprt::backend::cuda {

class BatchedMatmulPlan {
 public:
  BatchedMatmulPlan() = default;
  ~BatchedMatmulPlan();
  BatchedMatmulPlan(BatchedMatmulPlan&& other) noexcept;
  BatchedMatmulPlan& operator=(BatchedMatmulPlan&& other) noexcept;
  BatchedMatmulPlan(const BatchedMatmulPlan&) = delete;
  BatchedMatmulPlan& operator=(const BatchedMatmulPlan&) = delete;

  /// Descriptors for `shape` in `precision` and cuBLASLt's first heuristic algorithm that
  /// fits `workspace` bytes. May allocate (prepare time).
  static Result<BatchedMatmulPlan> create(const ir::MatMulShape& shape, Precision precision,
                                          cublasLtHandle_t handle, size_t workspace);
  /// Y = op(A) op(B) (+ R) for every product; `a`, `b`, `y`, `residual` in the precision's
  /// storage type; `residual` (null: none) has the stored Y's layout and is read as C, beta 1.
  cublasStatus_t run(cublasLtHandle_t handle, const void* a, const void* b, void* y,
                     void* workspace, size_t workspace_bytes, cudaStream_t stream,
                     const void* residual = nullptr) const;
  [[nodiscard]] bool empty() const noexcept { return m_products == 0; }

 private:
  void release() noexcept;
  cublasLtMatmulDesc_t m_desc = nullptr;
  cublasLtMatrixLayout_t m_first = nullptr;   ///< cuBLASLt's A
  cublasLtMatrixLayout_t m_second = nullptr;  ///< cuBLASLt's B
  cublasLtMatrixLayout_t m_d = nullptr;
  cublasLtMatmulAlgo_t m_algo{};
  bool m_swap = true;     ///< first operand is B's storage (no transpose_y)
  bool m_batched = false; ///< one strided-batched call
  int64_t m_products = 0;
  int64_t m_y_step = 0;   ///< elements per product in Y
  size_t m_elem = 4;      ///< bytes per element
  ir::MatMulShape m_shape;  ///< per-product offsets when not one batched call
};

}  // namespace mlprt::backend::cuda
