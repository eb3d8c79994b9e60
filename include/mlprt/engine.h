#pragma once
/// @file engine.h
/// A loaded plan. Immutable after load and safe to share between threads; each thread creates
/// its own ExecutionContext. Weights are packed for the backend once, at load.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mlprt/execution_context.h"
#include "mlprt/hardware_policy.h"
#include "mlprt/optimization_profile.h"
#include "mlprt/status.h"
#include "mlprt/tensor.h"

namespace mlprt {

struct LayerInfo {
  std::string name;
  std::string type;       ///< "Dense", "Add", "Reshape", ...
  std::string precision;  ///< the precision it runs in: "fp32", ...
  std::string detail;     ///< e.g. "784x32 +bias relu"
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  /// Accuracy-budget plans: the network's relative L2 error against float64 on the calibration
  /// data with this layer alone in its precision (fp32 layers: the all-fp32 error); -1: none.
  double measured_error = -1.0;
};

struct EngineInfo {
  uint32_t format_version = 0;
  std::string producer_version;  ///< mlprt version that built the plan
  std::string backend;           ///< "cpu", ...
  std::string hardware;          ///< what the plan was built for, e.g. "x86_64 avx512_core_bf16"
  std::string precision;         ///< "fp32", ...
  int device = -1;               ///< the GPU the engine was loaded on; -1: runs on the host
  std::string model_name;
  std::string plan_hash;         ///< hex checksum of the plan file
  uint64_t plan_bytes = 0;
  uint64_t weight_bytes = 0;
  std::vector<LayerInfo> layers;  ///< after fusion, in execution order
  /// Set when the load re-tuned the plan for this machine (HardwareMismatchPolicy): the backend
  /// and hardware the plan was built for; `backend` and `hardware` above are then this machine's.
  std::string retuned_from;
  double retune_seconds = 0.0;
  /// Accuracy-budget plans: the budget (relative L2 against float64) and the chosen mix's
  /// measured error on the calibration data; 0 and -1: built without a budget.
  double accuracy_budget = 0.0;
  double accuracy_error = -1.0;
  /// The plan's whole "accuracy" record as JSON (empty: none).
  std::string accuracy_json;
  /// Whole-network tactics the build chose or ruled out, one line each (the cuda backend's
  /// fused MLP: per profile, its time against the unfused layers, or why it was not eligible).
  std::vector<std::string> tactics;
};

/// A dense row-major float64 tensor, for reference_outputs().
struct ReferenceTensor {
  Dims dims;
  std::vector<double> values;
};

namespace detail {
struct EngineState;
}
struct PlanInfo;

class Engine {
 public:
  /// Loads a plan file. Checks magic, format version, size, checksum and backend, and says
  /// exactly what mismatched and how to rebuild. A plan built for other hardware is re-tuned
  /// here, refused, or run on another backend as `options.hardware_mismatch` says (default:
  /// re-tuned, with a warning; see mlprt/hardware_policy.h).
  static Result<std::unique_ptr<Engine>> load_file(const std::filesystem::path& path,
                                                   const EngineLoadOptions& options = {});
  static Result<std::unique_ptr<Engine>> load(std::span<const uint8_t> plan,
                                              const std::string& source_name,
                                              const EngineLoadOptions& options = {});

  explicit Engine(std::shared_ptr<const detail::EngineState> state);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  [[nodiscard]] const EngineInfo& info() const;
  /// Inputs first, then outputs, in the model's order.
  [[nodiscard]] const std::vector<TensorDesc>& io_tensors() const;
  /// nullptr if no I/O tensor has that name.
  [[nodiscard]] const TensorDesc* find_io_tensor(const std::string& name) const;

  [[nodiscard]] int num_profiles() const;
  /// Range of input `name` in `profile`; static inputs have min = opt = max.
  [[nodiscard]] Result<ShapeRange> profile_range(int profile, const std::string& name) const;
  /// The first profile whose ranges hold all of `input_shapes`; the error lists every profile's
  /// ranges.
  [[nodiscard]] Result<int> find_profile(const std::map<std::string, Dims>& input_shapes) const;

  /// The plan's bytes (TensorRT's ICudaEngine::serialize): after a Refitter's
  /// refit_cuda_engine, the refitted plan.
  [[nodiscard]] Result<std::vector<uint8_t>> serialize() const;

  /// Everything `mlprt inspect --json` prints.
  [[nodiscard]] std::string to_json() const;

  /// Float64 reference for checking this engine's outputs (`mlprt run --check`): evaluates the
  /// plan's optimized graph (the same layers and weights the backend runs) op by op in double
  /// precision with plain loops. `inputs` by name, with concrete shapes. Slow: for checks only.
  [[nodiscard]] Result<std::map<std::string, ReferenceTensor>> reference_outputs(
      const std::map<std::string, ReferenceTensor>& inputs) const;

  /// The re-tuned plan's bytes when the load re-tuned it (info().retuned_from is set), to save
  /// it and skip the re-tune next time; empty otherwise.
  [[nodiscard]] const std::vector<uint8_t>& retuned_plan() const;

  /// A new context; it keeps the engine's state alive.
  [[nodiscard]] Result<std::unique_ptr<ExecutionContext>> create_execution_context() const;

 private:
  friend class Refitter;  ///< refit_cuda_engine replaces m_state
  friend PlanInfo inspect_engine(const Engine& engine);  ///< reads the plan's profiles
  std::shared_ptr<const detail::EngineState> m_state;
};

}  // namespace mlprt
