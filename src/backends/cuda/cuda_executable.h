#pragma once
// The cuda backend's loaded engine: weights on the device (uploaded once at load, shared by all
// contexts), the layer list, the tactics the plan chose and the cuBLASLt handle.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cuda/cuda_common.h"
#include "backends/cuda/cuda_dense.h"
#include "backends/cuda/fused_tc_plan.h"
#include "backends/tensor_table.h"

namespace mlprt::backend::cuda {

inline constexpr const char* kCudaOps =
    "Dense, Add, Binary, Relu, Activation, Softmax, LayerNorm, ScaleShift, Reshape, Flatten, "
    "Squeeze, Unsqueeze, Transpose, Slice, ReduceMean, MatMul";

/// A tactic chosen at build time for one Dense layer at one row count.
struct TunedAlgo {
  int64_t m = 0;
  cublasLtMatmulAlgo_t algo{};
  double us = 0.0;
  int candidates = 0;
};

/// What the plan's backend blob holds.
struct BlobInfo {
  Precision precision = Precision::kFp32;
  size_t workspace_bytes = 0;
  /// Row counts up to which the fused whole-MLP kernel won at build time (0: never).
  int64_t fused_max_rows = 0;
  std::map<std::string, std::vector<TunedAlgo>> tuned;  ///< by Dense node name
  /// gelu_erf Dense layers whose build chose cuBLASLt's tanh-GELU epilogue (fp16 / bf16).
  std::set<std::string> gelu_tanh_layers;
  /// Dense layers whose W is stored [N, K] (blob layer key "weights": "nk", version 4).
  std::set<std::string> weights_nk_layers;
  /// Mixed engines (blob version 3): every non-view layer's precision; empty: all `precision`.
  std::map<std::string, Precision> layer_precision;
  /// The fused tensor-core MLP's per-profile choice (blob key "fused_tc"; absent: never).
  FusedTcChoice fused_tc;
  /// Dense layers the build timed alone on the fused kernel (layer keys "kernel", "fused_us",
  /// "cublaslt_us"), chosen or not.
  std::map<std::string, FusedLayerChoice> fused_layers;
};

/// A tensor converted to another type before a layer that reads it in that type (mixed
/// engines only; see cuda_precisions.h).
struct CastSlot {
  size_t tensor = 0;
  ElemType type = ElemType::kF32;
};

enum class LayerKind {
  kDense, kBinary, kActivation, kSoftmax, kLayerNorm, kScaleShift, kView,
  kCopy,        ///< Transpose, Slice: one strided gather (cuda_data_kernels.h)
  kReduceMean,
  kMatMul       ///< batched product of activations / N-D constants (cuda_matmul.h)
};

struct Layer {
  std::string name;
  std::string op;
  LayerKind kind = LayerKind::kView;
  std::vector<size_t> inputs;  ///< tensor ids of the data inputs (Dense: X; MatMul: A, B),
                               ///< then the residual when `residual`
  bool residual = false;       ///< Dense / MatMul: cuBLASLt's C = the last input, beta = 1
  size_t output = 0;
  Precision precision = Precision::kFp32;  ///< what the layer computes in
  ElemType in_type = ElemType::kF32;       ///< the type it reads its data inputs in
  ElemType out_type = ElemType::kF32;      ///< the type it writes
  /// Per data input: the CastSlot index converting it to in_type first, or -1 (none).
  std::vector<int> casts;
  DenseSpec spec;              ///< kDense
  DeviceBuffer weights;        ///< kDense: [K, N] in the plan's precision
  DeviceBuffer bias;           ///< kDense with bias: [N] in the plan's precision
  BinaryOp binary = BinaryOp::kAdd;  ///< kBinary
  ActParams act;                     ///< kActivation
  int64_t axis = 0;                  ///< kSoftmax, kLayerNorm, kScaleShift (may be negative)
  bool log = false;                  ///< kSoftmax
  bool coerce_2d = false;            ///< kSoftmax
  float epsilon = 1e-5f;             ///< kLayerNorm
  DeviceBuffer scale;                ///< kLayerNorm, kScaleShift: fp32
  DeviceBuffer shift;                ///< kLayerNorm (bias), kScaleShift: fp32
  int64_t scale_count = 0;
  int64_t shift_count = 0;
  std::vector<TunedAlgo> tuned;
  /// kDense: the build chose the fused kernel for this layer alone (BlobInfo::fused_layers).
  bool fused_tc = false;
  FusedTcParams fused_params;
  std::vector<DeviceBuffer> fused_buffers;
  ir::Node node;  ///< kCopy, kReduceMean, kMatMul: attributes read at prepare
  DeviceBuffer matmul_bias;  ///< kMatMul with bias: fp32 [N] (count in shift_count)
};

class CudaExecutable final : public Executable {
 public:
  /// `describe_only`: for layer_precisions() and tactic_notes() only (inspect): no device used,
  /// no weights read or uploaded (the graph may be a plan's metadata); it cannot run.
  static Result<std::unique_ptr<CudaExecutable>> create(const ir::Graph& graph,
                                                        const BlobInfo& blob,
                                                        bool describe_only = false);
  ~CudaExecutable() override;

  Result<std::unique_ptr<BackendContext>> create_context() const override;
  std::vector<std::string> layer_precisions() const override;
  std::vector<std::string> tactic_notes() const override;

  [[nodiscard]] int device() const noexcept override { return m_device; }
  /// Shared by all contexts: see LtHandle.
  [[nodiscard]] cublasLtHandle_t lt_handle() const noexcept { return m_lt.get(); }
  [[nodiscard]] const BlobInfo& blob() const noexcept { return m_blob; }
  [[nodiscard]] const std::vector<Layer>& layers() const noexcept { return m_layers; }
  [[nodiscard]] const std::vector<TensorSlot>& tensors() const noexcept {
    return m_tensors.slots();
  }
  [[nodiscard]] const std::vector<size_t>& input_ids() const noexcept {
    return m_tensors.input_ids();
  }
  [[nodiscard]] const std::vector<size_t>& output_ids() const noexcept {
    return m_tensors.output_ids();
  }
  /// Device copy of kConstant tensor `id`, in the plan's precision.
  [[nodiscard]] void* constant(size_t id) const noexcept { return m_constants[id].get(); }
  /// Types of the caller's input / output memory, per input_ids() / output_ids() entry.
  [[nodiscard]] const std::vector<ElemType>& input_types() const noexcept { return m_input_types; }
  [[nodiscard]] const std::vector<ElemType>& output_types() const noexcept { return m_output_types; }
  /// The element type tensor `id` is stored in (views: their input's).
  [[nodiscard]] ElemType tensor_type(size_t id) const noexcept { return m_tensor_types[id]; }
  /// Conversions in front of layers of a mixed engine (empty for a single-precision one).
  [[nodiscard]] const std::vector<CastSlot>& cast_slots() const noexcept { return m_cast_slots; }
  /// The whole graph as one fused kernel, when it is a chain of small fp32-able Dense layers.
  [[nodiscard]] bool fusable() const noexcept { return m_fusable; }
  [[nodiscard]] const FusedMlpParams& fused() const noexcept { return m_fused; }
  /// The fused tensor-core MLP, loaded when the build chose it for some profile.
  [[nodiscard]] bool fused_tc_ready() const noexcept { return m_fused_tc_ready; }
  [[nodiscard]] const FusedTcParams& fused_tc() const noexcept { return m_fused_tc; }

 private:
  CudaExecutable();
  Status load_constant(const ir::Node& user, const std::string& name,
                       const ir::Constant& constant, size_t id);
  void find_fusable_chain(const ir::Graph& graph);
  Status upload_fused_weights(const ir::Graph& graph);

  int m_device = 0;
  LtHandle m_lt;
  BlobInfo m_blob;
  std::vector<Layer> m_layers;
  TensorTable m_tensors;
  std::vector<DeviceBuffer> m_constants;  ///< by tensor id: kConstant tensors
  std::vector<ElemType> m_tensor_types;  ///< by tensor id
  std::vector<CastSlot> m_cast_slots;
  std::vector<ElemType> m_input_types;
  std::vector<ElemType> m_output_types;
  bool m_fusable = false;
  FusedMlpParams m_fused;
  std::vector<DeviceBuffer> m_fused_buffers;  ///< fp32 weights and biases of the fused kernel
  bool m_fused_tc_ready = false;
  bool m_describe_only = false;
  FusedTcParams m_fused_tc;
  std::vector<DeviceBuffer> m_fused_tc_buffers;
};

/// Copies float32 `values` to the device converted to `precision`'s storage type.
Status upload(const std::vector<float>& values, Precision precision, DeviceBuffer& out,
              const std::string& what);

/// The kernels' element type for an I/O DataType (float32, float16, bfloat16); else an error.
Result<ElemType> io_elem_type(DataType type, const std::string& what);

/// Whether the graph (after the passes) can run as the fused kernel, and its layers if so.
bool fusable_chain(const ir::Graph& graph, std::vector<const ir::Node*>& dense_nodes);

Result<std::unique_ptr<BackendContext>> make_cuda_context(const CudaExecutable& executable);

}  // namespace mlprt::backend::cuda
