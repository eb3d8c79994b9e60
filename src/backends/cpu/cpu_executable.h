#pragma once
// The cpu backend's loaded engine (immutable, shared by threads) and its per-caller context.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_amx_mlp.h"
#include "backends/cpu/cpu_dense.h"
#include "backends/cpu/cpu_layers.h"
#include "backends/tensor_table.h"

namespace mlprt::backend::cpu {

enum class LayerKind {
  kDense, kAdd, kRelu, kView, kActivation, kSoftmax, kLayerNorm, kScaleShift,
  kCopy,        ///< Transpose, Slice: a strided copy (cpu_data_layers.h)
  kReduceMean,
  kMatMul       ///< batched product of activations / N-D constants
};

struct Layer {
  std::string name;
  std::string op;
  LayerKind kind = LayerKind::kView;
  std::vector<size_t> inputs;  ///< tensor ids of the data inputs (Dense: X; MatMul: A, B),
                               ///< then the residual when `residual`
  bool residual = false;       ///< Dense / MatMul: y += the last input (ir::has_residual)
  size_t output = 0;           ///< tensor id
  DenseLayer dense;            ///< kDense only
  LayerParams params;          ///< the other kinds (kAdd: params.binary; kMatMul: activation,
                               ///< shift = bias)
  ir::Node node;               ///< kCopy, kReduceMean, kMatMul: attributes read at prepare
};

class CpuExecutable final : public Executable {
 public:
  /// `tactics`: per Dense node name, its runtime-M tactic then its fixed-M ones; a Dense node
  /// missing there runs on an fp32 runtime-M primitive.
  /// `threads` (0: OpenMP's default): the count the plan was built and tuned for; primitives
  /// are created for it and contexts run with it unless told otherwise.
  /// `chain_rows`: batch row counts at which the whole graph runs row-split in one OpenMP
  /// region (cpu_chain.h) when it is row-wise there.
  /// `describe_only`: an Executable for layer_precisions() only (inspect): no weights read,
  /// packed or copied (the graph may be a plan's metadata, constants without data), no
  /// primitives; it cannot create contexts.
  /// `amx_rows`: batch row counts at which the whole chain runs on the AMX chain kernel
  /// (cpu_amx_mlp.h); an error if the graph is no such chain or the machine has no AMX.
  static Result<std::unique_ptr<CpuExecutable>> create(
      const ir::Graph& graph, const std::map<std::string, std::vector<DenseTactic>>& tactics,
      int threads, std::vector<int64_t> chain_rows = {}, bool describe_only = false,
      std::vector<int64_t> amx_rows = {});
  /// Why `graph` cannot run on the AMX chain kernel (empty: it can): it must be input ->
  /// Dense (ReLU or no activation, no residual) -> ... -> output, views between them allowed,
  /// within the kernel's widths.
  static std::string amx_chain_ineligible(const ir::Graph& graph);
  /// Generates oneDNN's lazily made f32 gemm kernels now (once per process), not in the first
  /// inference.
  static void warm_up_gemm_kernels();

  Result<std::unique_ptr<BackendContext>> create_context() const override;
  std::vector<std::string> layer_precisions() const override;

  [[nodiscard]] const dnnl::engine& engine() const noexcept { return m_engine; }
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
  /// The Executable's copy of kConstant tensor `id`.
  [[nodiscard]] const float* constant(size_t id) const noexcept { return m_constants[id].data(); }
  /// Types of the caller's input and output memory, per input_ids() / output_ids() entry; the
  /// layers compute in float32 (or bf16 inside a Dense) whatever these are.
  [[nodiscard]] const std::vector<DataType>& input_dtypes() const noexcept {
    return m_input_dtypes;
  }
  [[nodiscard]] const std::vector<DataType>& output_dtypes() const noexcept {
    return m_output_dtypes;
  }
  /// Largest oneDNN scratchpad of any primitive, in bytes.
  [[nodiscard]] size_t scratchpad_bytes() const noexcept { return m_scratchpad_bytes; }
  /// Threads the plan was built for (0: OpenMP's default).
  [[nodiscard]] int threads() const noexcept { return m_threads; }
  [[nodiscard]] const std::vector<int64_t>& chain_rows() const noexcept { return m_chain_rows; }
  [[nodiscard]] const std::vector<int64_t>& amx_rows() const noexcept { return m_amx_rows; }
  /// The packed AMX chain, when amx_rows() is not empty (and not describe-only).
  [[nodiscard]] const AmxMlp* amx() const noexcept { return m_amx ? &*m_amx : nullptr; }

 private:
  CpuExecutable();
  static Result<std::unique_ptr<CpuExecutable>> create_impl(
      const ir::Graph& graph, const std::map<std::string, std::vector<DenseTactic>>& tactics,
      bool describe_only);
  Status load_constant(const ir::Node& user, const std::string& name, const ir::Constant& constant,
                       size_t id);
  [[nodiscard]] std::string chain_note() const;
  Status make_amx(const ir::Graph& graph, bool describe_only);

  dnnl::engine m_engine;
  std::vector<Layer> m_layers;
  TensorTable m_tensors;
  std::vector<DataType> m_input_dtypes;
  std::vector<DataType> m_output_dtypes;
  std::vector<std::vector<float>> m_constants;  ///< by tensor id; read by Add or graph outputs
  size_t m_scratchpad_bytes = 0;
  int m_threads = 0;
  std::vector<int64_t> m_chain_rows;
  std::vector<int64_t> m_amx_rows;
  std::optional<AmxMlp> m_amx;
  bool m_describe_only = false;
};

/// Makes a context for `executable` (which must outlive it).
Result<std::unique_ptr<BackendContext>> make_cpu_context(const CpuExecutable& executable);

}  // namespace mlprt::backend::cpu
