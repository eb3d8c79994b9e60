#include "backends/cuda/cuda_matmul.h"

#include <utility>

#include "common/check.h"

namespace mlprt::backend::cuda {
namespace {

cudaDataType_t lt_type(Precision precision) {
  switch (precision) {
    case Precision::kFp16: return CUDA_R_16F;
    case Precision::kBf16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
  }
}

// A stored row-major matrix as cuBLASLt sees it: column-major [cols, rows], ld = cols.
struct Stored {
  uint64_t rows = 0;  // column-major rows (= the row-major matrix's columns)
  uint64_t cols = 0;
  int64_t ld = 0;
};
Stored column_major(int64_t row_major_rows, int64_t row_major_cols) {
  return Stored{static_cast<uint64_t>(row_major_cols), static_cast<uint64_t>(row_major_rows),
                std::max<int64_t>(row_major_cols, 1)};
}

}  // namespace

BatchedMatmulPlan::~BatchedMatmulPlan() { release(); }

BatchedMatmulPlan::BatchedMatmulPlan(BatchedMatmulPlan&& other) noexcept { *this = std::move(other); }

BatchedMatmulPlan& BatchedMatmulPlan::operator=(BatchedMatmulPlan&& other) noexcept {
  if (this != &other) {
    release();
    m_desc = std::exchange(other.m_desc, nullptr);
    m_first = std::exchange(other.m_first, nullptr);
    m_second = std::exchange(other.m_second, nullptr);
    m_d = std::exchange(other.m_d, nullptr);
    m_algo = other.m_algo;
    m_swap = other.m_swap;
    m_batched = other.m_batched;
    m_products = std::exchange(other.m_products, 0);
    m_y_step = other.m_y_step;
    m_elem = other.m_elem;
    m_shape = std::move(other.m_shape);
  }
  return *this;
}

void BatchedMatmulPlan::release() noexcept {
  if (m_desc) cublasLtMatmulDescDestroy(m_desc);
  if (m_first) cublasLtMatrixLayoutDestroy(m_first);
  if (m_second) cublasLtMatrixLayoutDestroy(m_second);
  if (m_d) cublasLtMatrixLayoutDestroy(m_d);
  m_desc = nullptr;
  m_first = m_second = m_d = nullptr;
}

Result<BatchedMatmulPlan> BatchedMatmulPlan::create(const ir::MatMulShape& s, Precision precision,
                                                    cublasLtHandle_t handle, size_t workspace) {
  BatchedMatmulPlan plan;
  plan.m_products = s.m > 0 && s.n > 0 ? s.count : 0;
  if (plan.m_products == 0 || s.k == 0) {
    const bool refused = s.k == 0 && plan.m_products > 0;
    plan.m_products = 0;  // nothing to multiply (an empty batch); k = 0 is refused
    if (refused) {
      return make_error(StatusCode::kUnsupported,
                        "cuda backend: MatMul with an empty inner dimension (k = 0)");
    }
    return plan;
  }
  plan.m_elem = storage_size(precision);
  plan.m_y_step = s.m * s.n;
  plan.m_swap = !s.transpose_y;
  plan.m_batched = s.uniform && plan.m_products > 1;
  plan.m_shape = s;
  const cudaDataType_t type = lt_type(precision);
  const cublasComputeType_t compute =
      precision == Precision::kTf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  MLPRT_CUBLAS_TRY(cublasLtMatmulDescCreate(&plan.m_desc, compute, CUDA_R_32F),
                   "cublasLtMatmulDescCreate (MatMul)");
  // Storage of A and B (row-major, before their op) in cuBLASLt's column-major terms.
  const Stored a = s.transpose_a ? column_major(s.k, s.m) : column_major(s.m, s.k);
  const Stored b = s.transpose_b ? column_major(s.n, s.k) : column_major(s.k, s.n);
  // Column-major A storage is op_A(A)' (k x m) untransposed, B storage op_B(B)' (n x k).
  // No transposed write: D' (n x m) = op(B)' op(A)': first = B with op N when stored [k, n]
  // (column-major n x k), T when stored [n, k]; second = A with N when stored [m, k].
  // Transposed write: D'' (m x n) = op(A) op(B): first = A (T when stored [m, k]), second = B
  // (T when stored [k, n]).
  cublasOperation_t op_first, op_second;
  if (plan.m_swap) {
    op_first = s.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    op_second = s.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  } else {
    op_first = s.transpose_a ? CUBLAS_OP_N : CUBLAS_OP_T;
    op_second = s.transpose_b ? CUBLAS_OP_N : CUBLAS_OP_T;
  }
  MLPRT_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(plan.m_desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                                  &op_first, sizeof(op_first)),
                   "set TRANSA (MatMul)");
  MLPRT_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(plan.m_desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                                  &op_second, sizeof(op_second)),
                   "set TRANSB (MatMul)");
  const Stored& first = plan.m_swap ? b : a;
  const Stored& second = plan.m_swap ? a : b;
  MLPRT_CUBLAS_TRY(
      cublasLtMatrixLayoutCreate(&plan.m_first, type, first.rows, first.cols, first.ld),
      "layout of MatMul operand");
  MLPRT_CUBLAS_TRY(
      cublasLtMatrixLayoutCreate(&plan.m_second, type, second.rows, second.cols, second.ld),
      "layout of MatMul operand");
  const Stored d = s.transpose_y ? column_major(s.n, s.m) : column_major(s.m, s.n);
  MLPRT_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&plan.m_d, type, d.rows, d.cols, d.ld),
                   "layout of MatMul output");
  if (plan.m_batched) {
    const auto count = static_cast<int32_t>(plan.m_products);
    const int64_t first_stride = plan.m_swap ? s.b_stride : s.a_stride;
    const int64_t second_stride = plan.m_swap ? s.a_stride : s.b_stride;
    const int64_t d_stride = plan.m_y_step;
    const std::pair<cublasLtMatrixLayout_t, int64_t> layouts[] = {
        {plan.m_first, first_stride}, {plan.m_second, second_stride}, {plan.m_d, d_stride}};
    for (const auto& [layout, stride] : layouts) {
      MLPRT_CUBLAS_TRY(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                        &count, sizeof(count)),
                       "set BATCH_COUNT (MatMul)");
      MLPRT_CUBLAS_TRY(
          cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                           &stride, sizeof(stride)),
          "set STRIDED_BATCH_OFFSET (MatMul)");
    }
  }
  cublasLtMatmulPreference_t pref = nullptr;
  MLPRT_CUBLAS_TRY(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace));
  if (st == CUBLAS_STATUS_SUCCESS) {
    st = cublasLtMatmulAlgoGetHeuristic(handle, plan.m_desc, plan.m_first, plan.m_second,
                                        plan.m_d, plan.m_d, pref, 1, &result, &found);
  }
  cublasLtMatmulPreferenceDestroy(pref);
  MLPRT_CUBLAS_TRY(st, "cublasLtMatmulAlgoGetHeuristic (MatMul)");
  if (found == 0 || result.state != CUBLAS_STATUS_SUCCESS) {
    return make_error(StatusCode::kUnsupported, "cuda backend: cuBLASLt has no algorithm for a ",
                      s.m, "x", s.k, " by ", s.k, "x", s.n, " MatMul (", plan.m_products,
                      " products)");
  }
  plan.m_algo = result.algo;
  return plan;
}

cublasStatus_t BatchedMatmulPlan::run(cublasLtHandle_t handle, const void* a, const void* b,
                                      void* y, void* workspace, size_t workspace_bytes,
                                      cudaStream_t stream, const void* residual) const {
  const float alpha = 1.0f;
  // A residual is C with beta = 1, laid out as D (also for the transposed write: R has the
  // stored output's shape, so m_d, batch stride included, describes it too).
  const float beta = residual != nullptr ? 1.0f : 0.0f;
  const auto* pr = static_cast<const char*>(residual);
  const auto* pa = static_cast<const char*>(a);
  const auto* pb = static_cast<const char*>(b);
  auto* py = static_cast<char*>(y);
  const int64_t calls = m_batched ? 1 : m_products;
  for (int64_t p = 0; p < calls; ++p) {
    const char* at = pa + static_cast<size_t>(m_shape.a_at(p)) * m_elem;
    const char* bt = pb + static_cast<size_t>(m_shape.b_at(p)) * m_elem;
    void* yt = py + static_cast<size_t>(p * m_y_step) * m_elem;
    const void* ct = pr != nullptr ? pr + static_cast<size_t>(p * m_y_step) * m_elem : yt;
    const cublasStatus_t st =
        cublasLtMatmul(handle, m_desc, &alpha, m_swap ? bt : at, m_first, m_swap ? at : bt,
                       m_second, &beta, ct, m_d, yt, m_d, &m_algo, workspace, workspace_bytes,
                       stream);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
  }
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace mlprt::backend::cuda
