#pragma once
// Dense layers on cuBLASLt: Y[M,N] = act(X[M,K] @ W[K,N] + B) with the bias and activation
// fused into the matmul's epilogue.
//
// Row-major Y = X W is column-major Y' = W' X', so cuBLASLt sees A = W as a column-major [N, K]
// matrix (ld N), B = X as [K, M] (ld K; transpose_x: X stored [K, M] is B = op_T of [M, K]) and
// D = Y as [N, M] (ld N); the bias runs along D's rows, which is N.

#include <cstdint>
#include <span>
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
  /// cuBLASLt's epilogue computes the activation (none, relu, gelu_tanh: exactly ours);
  /// otherwise our activation kernel runs on Y after the matmul (with the bias still in the
  /// epilogue).
  bool lt_activation = true;
  /// gelu_erf approximated by cuBLASLt's GELU (tanh) epilogue: a tactic of fp16 / bf16 layers
  /// only (see gelu_tanh_tactic_allowed); lt_activation is then true.
  bool gelu_tanh_epilogue = false;
  /// A 16-bit layer writing Y (and reading its bias) in fp32 for fp32 consumers: the cast
  /// between the precisions fused into the epilogue (see cuda_precisions.h).
  bool out_f32 = false;
  /// W stored transposed on the device, [N, K] (K-major), read with op T: a tactic. Tensor-core
  /// kernels read both operands along K; cuBLASLt's tf32 kernels for the [K, N] layout were
  /// 1.5x slower on an H200 (a 12544x512x2048 product: 119 us against 80).
  bool weights_nk = false;
};

/// The kernel parameters of an activation (every ir::ActivationKind has a kernel).
ActParams act_params(const ir::ActivationSpec& spec);

/// `with_data` false: from the constants' dims and dtypes only (a plan's metadata, no bytes).
Result<DenseSpec> dense_spec(const ir::Graph& graph, const ir::Node& node, bool with_data = true);

/// Whether the builder times W stored [N, K] (DenseSpec::weights_nk) for layers in `precision`
/// (the tensor-core precisions).
bool weights_nk_tactic_allowed(Precision precision);
/// W [K, N] row-major -> [N, K] row-major.
std::vector<float> transposed_weights(std::span<const float> w, int64_t k, int64_t n);

/// Whether the gelu_erf layer `spec` may run cuBLASLt's tanh-GELU epilogue in `precision`.
///
/// Why it is allowed in fp16 / bf16: |gelu_tanh(x) - gelu_erf(x)| <= 4.74e-4 for every x and
/// is below 0.63 of half an fp16 ulp of x itself (worst near x = -1; the CPU test
/// GeluTanhBound checks both on a dense grid). The unfused path rounds the matmul's x to fp16
/// before our erf kernel, so the approximation is smaller than the rounding fp16 storage puts
/// on x, and 8x smaller than bf16's. For x >= 0 it is also below half an fp16 ulp of the
/// result. It is NOT below half an ulp of the result in the negative tail (x < -0.9, where
/// gelu(x) tends to 0: 5.5e-5 at x = -4 is 900 fp16 ulps of gelu = -1.2e-4); there it is small
/// only relative to the layer's scale. Never for fp32 / tf32 layers, where 4.7e-4 is visible.
bool gelu_tanh_tactic_allowed(const DenseSpec& spec, Precision precision);

/// How the layer's bias and activation run, for inspect: "cublasLt bias+relu epilogue",
/// "cublasLt bias epilogue + kernel:sigmoid", "cublasLt bias+gelu_tanh epilogue (for gelu_erf)".
std::string describe_epilogue(const DenseSpec& spec);

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
                     cudaStream_t stream, const void* residual = nullptr) const;
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
