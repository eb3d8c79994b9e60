#include "backends/cuda/cuda_dense.h"

#include <optional>

#include "common/check.h"

namespace mlprt::backend::cuda {
namespace {

cudaDataType_t data_type(Precision precision) {
  switch (precision) {
    case Precision::kFp16: return CUDA_R_16F;
    case Precision::kBf16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
  }
}

cublasComputeType_t compute_type(Precision precision) {
  return precision == Precision::kTf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

cublasLtEpilogue_t epilogue(const DenseSpec& spec) {
  if (spec.lt_activation && spec.act.kind == ActKind::kRelu) {
    return spec.has_bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
  }
  if (spec.lt_activation &&
      (spec.act.kind == ActKind::kGeluTanh || spec.gelu_tanh_epilogue)) {
    return spec.has_bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
  }
  return spec.has_bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
}

}  // namespace


static_assert(static_cast<int>(ActKind::kClip) == static_cast<int>(ir::ActivationKind::kClip) &&
                  static_cast<int>(ActKind::kGeluErf) ==
                      static_cast<int>(ir::ActivationKind::kGeluErf) &&
                  static_cast<int>(ActKind::kErf) == static_cast<int>(ir::ActivationKind::kErf),
              "ActKind must number the kinds as ir::ActivationKind does");

ActParams act_params(const ir::ActivationSpec& spec) {
  ActParams p;
  p.kind = static_cast<ActKind>(static_cast<int>(spec.kind));
  p.alpha = static_cast<float>(spec.alpha);
  p.beta = static_cast<float>(spec.beta);
  return p;
}

bool gelu_tanh_tactic_allowed(const DenseSpec& spec, Precision precision) {
  return spec.act.kind == ActKind::kGeluErf &&
         (precision == Precision::kFp16 || precision == Precision::kBf16);
}

std::string describe_epilogue(const DenseSpec& spec) {
  if (spec.out_f32) {
    DenseSpec plain = spec;
    plain.out_f32 = false;
    return describe_epilogue(plain) + ", writing fp32";
  }
  const std::string bias = spec.has_bias ? "bias" : "";
  if (spec.gelu_tanh_epilogue) {
    return "cublasLt " + bias + (spec.has_bias ? "+" : "") + "gelu_tanh epilogue (for gelu_erf)";
  }
  if (spec.lt_activation && spec.act.kind != ActKind::kNone) {
    return "cublasLt " + bias + (spec.has_bias ? "+" : "") + spec.activation + " epilogue";
  }
  const std::string matmul = spec.has_bias ? "cublasLt bias epilogue" : "cublasLt default epilogue";
  if (spec.act.kind == ActKind::kNone) return matmul;
  return matmul + " + kernel:" + spec.activation;
}

bool weights_nk_tactic_allowed(Precision precision) {
  return precision == Precision::kTf32 || precision == Precision::kFp16 ||
         precision == Precision::kBf16;
}

std::vector<float> transposed_weights(std::span<const float> w, int64_t k, int64_t n) {
  std::vector<float> t(w.size());
  for (int64_t r = 0; r < k; ++r) {
    for (int64_t c = 0; c < n; ++c) t[static_cast<size_t>(c * k + r)] = w[static_cast<size_t>(r * n + c)];
  }
  return t;
}

std::string describe(const ir::Node& node) { return "node '" + node.name + "' (" + node.op + ")"; }

Result<DenseSpec> dense_spec(const ir::Graph& graph, const ir::Node& node, bool with_data) {
  if (node.inputs.size() < 2 || node.outputs.size() != 1) {
    return make_error(StatusCode::kInvalidArgument, "cuda backend: ", describe(node),
                      ": needs inputs {X, W, [B]} and one output, has ", node.inputs.size(),
                      " inputs and ", node.outputs.size(), " outputs");
  }
  const ir::Constant* w = graph.find_constant(node.inputs[1]);
  if (w == nullptr || w->dtype != DataType::kFloat32 || w->dims.size() != 2 || w->dims[0] <= 0 ||
      w->dims[1] <= 0 ||
      (with_data &&
       w->data.size() != static_cast<size_t>(w->dims[0] * w->dims[1]) * sizeof(float))) {
    return make_error(StatusCode::kUnsupported, "cuda backend: ", describe(node), ": weight '",
                      node.inputs[1], "' must be a non-empty float32 [K, N] constant",
                      w ? " (found " + std::string(to_string(w->dtype)) + " " + to_string(w->dims) + ")"
                        : std::string(" (it is not a constant)"));
  }
  DenseSpec spec;
  spec.k = w->dims[0];
  spec.n = w->dims[1];
  if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
    const ir::Constant* b = graph.find_constant(node.inputs[2]);
    const bool ok = b != nullptr && b->dtype == DataType::kFloat32 &&
                    (with_data ? b->data.size() == static_cast<size_t>(spec.n) * sizeof(float)
                               : b->num_elements() == spec.n);
    if (!ok) {
      return make_error(StatusCode::kUnsupported, "cuda backend: ", describe(node), ": bias '",
                        node.inputs[2], "' must be a float32 constant of ", spec.n, " values");
    }
    spec.has_bias = true;
  }
  spec.activation = node.get_string("activation", "none");
  const std::optional<ir::ActivationKind> kind = ir::parse_activation(spec.activation);
  if (!kind) {
    return make_error(StatusCode::kUnsupported, "cuda backend: ", describe(node), ": activation '",
                      spec.activation, "'; allowed: ", ir::kActivationKinds);
  }
  ir::ActivationSpec act;
  act.kind = *kind;
  act.alpha = node.get_float("alpha", 0.0);
  act.beta = node.get_float("beta", 0.0);
  spec.act = act_params(act);
  spec.lt_activation = *kind == ir::ActivationKind::kNone || *kind == ir::ActivationKind::kRelu ||
                       *kind == ir::ActivationKind::kGeluTanh;
  const int64_t transpose_x = node.get_int("transpose_x", 0);
  if (transpose_x != 0 && transpose_x != 1) {
    return make_error(StatusCode::kUnsupported, "cuda backend: ", describe(node),
                      ": transpose_x = ", transpose_x, "; allowed: 0, 1");
  }
  spec.transpose_x = transpose_x == 1;
  return spec;
}

MatmulPlan::~MatmulPlan() { release(); }

MatmulPlan::MatmulPlan(MatmulPlan&& other) noexcept { *this = std::move(other); }

MatmulPlan& MatmulPlan::operator=(MatmulPlan&& other) noexcept {
  if (this != &other) {
    release();
    m_desc = std::exchange(other.m_desc, nullptr);
    m_a = std::exchange(other.m_a, nullptr);
    m_b = std::exchange(other.m_b, nullptr);
    m_d = std::exchange(other.m_d, nullptr);
    m_m = other.m_m;
  }
  return *this;
}

void MatmulPlan::release() noexcept {
  if (m_desc) cublasLtMatmulDescDestroy(m_desc);
  if (m_a) cublasLtMatrixLayoutDestroy(m_a);
  if (m_b) cublasLtMatrixLayoutDestroy(m_b);
  if (m_d) cublasLtMatrixLayoutDestroy(m_d);
  m_desc = nullptr;
  m_a = m_b = m_d = nullptr;
}

Result<MatmulPlan> MatmulPlan::create(const DenseSpec& spec, Precision precision, int64_t m,
                                      const void* bias) {
  MatmulPlan plan;
  plan.m_m = m;
  const cudaDataType_t type = data_type(precision);
  const cudaDataType_t out_type = spec.out_f32 ? CUDA_R_32F : type;
  MLPRT_CUBLAS_TRY(cublasLtMatmulDescCreate(&plan.m_desc, compute_type(precision), CUDA_R_32F),
                   "cublasLtMatmulDescCreate");
  const cublasOperation_t op_b = spec.transpose_x ? CUBLAS_OP_T : CUBLAS_OP_N;
  MLPRT_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(plan.m_desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b,
                                                  sizeof(op_b)),
                   "set TRANSB");
  const cublasLtEpilogue_t epi = epilogue(spec);
  MLPRT_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(plan.m_desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                                  sizeof(epi)),
                   "set EPILOGUE");
  if (spec.has_bias) {
    MLPRT_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(plan.m_desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                    &bias, sizeof(bias)),
                     "set BIAS_POINTER");
    MLPRT_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(plan.m_desc,
                                                    CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &out_type,
                                                    sizeof(out_type)),
                     "set BIAS_DATA_TYPE");
  }
  const auto k = static_cast<uint64_t>(spec.k);
  const auto n = static_cast<uint64_t>(spec.n);
  const auto rows = static_cast<uint64_t>(m);
  if (spec.weights_nk) {
    const cublasOperation_t op_a = CUBLAS_OP_T;
    MLPRT_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(plan.m_desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                                    &op_a, sizeof(op_a)),
                     "set TRANSA");
    MLPRT_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&plan.m_a, type, k, n, static_cast<int64_t>(k)),
                     "layout of W [N, K]");
  } else {
    MLPRT_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&plan.m_a, type, n, k, static_cast<int64_t>(n)),
                     "layout of W");
  }
  if (spec.transpose_x) {
    MLPRT_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&plan.m_b, type, rows, k, m), "layout of X");
  } else {
    MLPRT_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&plan.m_b, type, k, rows, spec.k), "layout of X");
  }
  MLPRT_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&plan.m_d, out_type, n, rows, spec.n), "layout of Y");
  return plan;
}

Result<std::vector<cublasLtMatmulAlgo_t>> MatmulPlan::candidates(cublasLtHandle_t handle,
                                                                 size_t workspace,
                                                                 int count) const {
  cublasLtMatmulPreference_t pref = nullptr;
  MLPRT_CUBLAS_TRY(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(count));
  int found = 0;
  cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace));
  if (st == CUBLAS_STATUS_SUCCESS) {
    st = cublasLtMatmulAlgoGetHeuristic(handle, m_desc, m_a, m_b, m_d, m_d, pref, count,
                                        results.data(), &found);
  }
  cublasLtMatmulPreferenceDestroy(pref);
  MLPRT_CUBLAS_TRY(st, "cublasLtMatmulAlgoGetHeuristic for M=" + std::to_string(m_m));
  std::vector<cublasLtMatmulAlgo_t> algos;
  for (int i = 0; i < found; ++i) {
    if (results[static_cast<size_t>(i)].state == CUBLAS_STATUS_SUCCESS) {
      algos.push_back(results[static_cast<size_t>(i)].algo);
    }
  }
  if (algos.empty()) {
    return make_error(StatusCode::kUnsupported, "cuda backend: cuBLASLt has no algorithm for M=",
                      m_m, " with ", workspace, " bytes of workspace");
  }
  return algos;
}

Status MatmulPlan::check(cublasLtHandle_t handle, const cublasLtMatmulAlgo_t& algo,
                         size_t workspace) const {
  cublasLtMatmulHeuristicResult_t result{};
  MLPRT_CUBLAS_TRY(cublasLtMatmulAlgoCheck(handle, m_desc, m_a, m_b, m_d, m_d, &algo, &result),
                   "cublasLtMatmulAlgoCheck for M=" + std::to_string(m_m));
  if (result.workspaceSize > workspace) {
    return make_error(StatusCode::kUnsupported, "cuda backend: algorithm needs ",
                      result.workspaceSize, " bytes of workspace, ", workspace, " available");
  }
  return Status::ok();
}

cublasStatus_t MatmulPlan::run(cublasLtHandle_t handle, const cublasLtMatmulAlgo_t& algo,
                               const void* x, const void* w, void* y, void* workspace,
                               size_t workspace_bytes, cudaStream_t stream,
                               const void* residual) const {
  const float alpha = 1.0f;
  // A residual is C with beta = 1 in D's layout (Y row-major [M, N]); the layer has no
  // activation (ir::fuse_residual_adds), so bias + C is the whole epilogue and exact.
  const float beta = residual != nullptr ? 1.0f : 0.0f;
  return cublasLtMatmul(handle, m_desc, &alpha, w, m_a, x, m_b, &beta,
                        residual != nullptr ? residual : y, m_d, y, m_d, &algo, workspace,
                        workspace_bytes, stream);
}

std::string describe_algo(const cublasLtMatmulAlgo_t& algo) {
  auto get = [&](cublasLtMatmulAlgoConfigAttributes_t attr) {
    int32_t value = -1;
    size_t written = 0;
    cublasLtMatmulAlgoConfigGetAttribute(&algo, attr, &value, sizeof(value), &written);
    return value;
  };
  return "cublasLt algo " + std::to_string(get(CUBLASLT_ALGO_CONFIG_ID)) + " tile " +
         std::to_string(get(CUBLASLT_ALGO_CONFIG_TILE_ID)) + " splitk " +
         std::to_string(get(CUBLASLT_ALGO_CONFIG_SPLITK_NUM));
}

}  // namespace mlprt::backend::cuda
