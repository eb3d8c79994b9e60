#pragma once
// Dense layers on cuBLASLt: Y[M,N] = act(X[M,K] @ W[K,N] + B) with the bias and activation
// fused into the matmul's epilogue.
//
// Row-major Y = X W is column-major Y' = W' X', so cuBLASLt sees A = W as a column-major [N, K]
// matrix (ld N), B = X as [K, M] (ld K; transpose_x: X stored [K, M] is B = op_T of [M, K]) and
// D = Y as [N, M] (ld N); the bias runs along D's rows, which is N.

#include <cstdint>
#include <string>
#include <vector>

#include "backends/cuda/cuda_common.h"
#include "ir/activation.h"
#include "ir/graph.h"

namespace mlprt::backend::cuda {

std::string describe(const ir::Node& node);

struct DenseSpec {
  int64_t k = 0;
  int64_t n = 0;
  bool transpose_x = false;
  bool has_bias = false;
  std::string activation = "none";  ///< any ir::ActivationKind name
  ActParams act;                     ///< the same, for the kernels
  /// cuBLASLt's epilogue computes the activation (relu; gelu_tanh, its GELU); otherwise our
  /// activation kernel runs on Y after the matmul (with the bias still in the epilogue).
  bool lt_activation = true;
};

/// ir activation spec -> kernel parameters.
/// The kernel parameters of an activation; kUnsupported for kinds our kernels do not have yet
/// (those added to ir::ActivationKind after kClip), naming `node`.
Result<ActParams> act_params(const ir::Node& node, const ir::ActivationSpec& spec);

Result<DenseSpec> dense_spec(const ir::Graph& graph, const ir::Node& node);

/// cuBLASLt descriptors for one Dense layer at one row count M. Owns them.
class MatmulPlan {
 public:
  MatmulPlan() = default;
  ~MatmulPlan();
  MatmulPlan(MatmulPlan&& other) noexcept;
  MatmulPlan& operator=(MatmulPlan&& other) noexcept;
  MatmulPlan(const MatmulPlan&) = delete;
  MatmulPlan& operator=(const MatmulPlan&) = delete;

  /// `bias` is the device address of the layer's bias (may be null when it has none).
  static Result<MatmulPlan> create(const DenseSpec& spec, Precision precision, int64_t m,
                                   const void* bias);
  /// Up to `count` candidates from cuBLASLt's heuristics, best first.
  Result<std::vector<cublasLtMatmulAlgo_t>> candidates(cublasLtHandle_t handle, size_t workspace,
                                                       int count) const;
  /// Whether `algo` runs this problem with `workspace` bytes.
  Status check(cublasLtHandle_t handle, const cublasLtMatmulAlgo_t& algo, size_t workspace) const;
  cublasStatus_t run(cublasLtHandle_t handle, const cublasLtMatmulAlgo_t& algo, const void* x,
                     const void* w, void* y, void* workspace, size_t workspace_bytes,
                     cudaStream_t stream) const;
  [[nodiscard]] int64_t m() const noexcept { return m_m; }

 private:
  void release() noexcept;
  cublasLtMatmulDesc_t m_desc = nullptr;
  cublasLtMatrixLayout_t m_a = nullptr;
  cublasLtMatrixLayout_t m_b = nullptr;
  cublasLtMatrixLayout_t m_d = nullptr;
  int64_t m_m = 0;
};

/// "algo 21 tile 15 stages 8 splitk 1"
std::string describe_algo(const cublasLtMatmulAlgo_t& algo);

}  // namespace mlprt::backend::cuda
