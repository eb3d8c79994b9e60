#pragma once
/// @file refitter.h
/// Replaces an engine's weights without rebuilding it (TensorRT's IRefitter). The tactics (the
/// backend blob) are kept, so the refitted engine is as fast as before, and its plan is
/// byte-identical to a fresh build of the same model with the new weights and the same timing
/// cache.
///
/// Weights are named as users name them: the ONNX initializer names, and the torch parameter
/// names they came from (a torch 1.x MatMul export's "onnx::MatMul_12" is also "fc1.weight", in
/// torch's [out, in] layout). Every weight must be given: the plan keeps only the values derived
/// by fusion (a BatchNorm folded into a Dense layer), which are re-derived from the new ones.
///
/// @code
///   auto engine = mlprt::Engine::load_file("a.plan").value();
///   auto refitter = mlprt::Refitter::create(*engine).value();
///   if (auto s = refitter->set_weights_from_file("new.pth"); !s.is_ok()) ...  // lists every problem
///   if (auto s = refitter->refit_cuda_engine(); !s.is_ok()) ...
///   // engine->create_execution_context() now runs with the new weights
/// @endcode
///
/// Not thread-safe; the engine must not run (no context enqueuing) during refit_cuda_engine.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mlprt/engine.h"
#include "mlprt/status.h"
#include "mlprt/tensor.h"

namespace mlprt {

/// A weight's values (TensorRT's Weights, with dims for the shape check). Copied by
/// set_named_weights; the caller keeps ownership.
struct Weights {
  DataType type = DataType::kFloat32;
  const void* values = nullptr;
  int64_t count = 0;  ///< elements; must equal the product of dims
  Dims dims;
};

namespace refit {
class PlanRefitter;
}

class Refitter {
 public:
  /// For a loaded engine; refit_cuda_engine() then replaces its weights. kUnsupported for a plan
  /// built without a refit record (rebuild it with this mlprt).
  static Result<std::unique_ptr<Refitter>> create(Engine& engine);
  /// For a plan's bytes: no engine is loaded (no GPU needed for a cuda plan); refit_serialized()
  /// returns the new plan.
  static Result<std::unique_ptr<Refitter>> create_for_plan(std::span<const uint8_t> plan,
                                                           const std::string& source_name);
  ~Refitter();
  Refitter(const Refitter&) = delete;
  Refitter& operator=(const Refitter&) = delete;

  /// One weight by ONNX or torch name. kInvalidArgument names an unknown name or a dtype /
  /// shape that differs from the engine's.
  Status set_named_weights(const std::string& name, const Weights& weights);
  /// Every weight from a file: .onnx (same graph, new initializers), .pth (torch.save of a
  /// state_dict, zip format) or .safetensors. The error lists every missing, unknown and
  /// mismatched name; nothing is set then.
  Status set_weights_from_file(const std::filesystem::path& path);
  /// ONNX names of the weights not set yet (all of them at first).
  [[nodiscard]] std::vector<std::string> get_missing_weights() const;
  /// ONNX names of every refittable weight.
  [[nodiscard]] std::vector<std::string> get_all_weights() const;
  /// Torch names accepted besides the ONNX names: {torch name, ONNX name}.
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> get_weight_aliases() const;

  /// Re-derives the engine's constants and loads them: contexts created from then on run with
  /// the new weights. Contexts that exist already keep the weights they were created with (they
  /// own them) until they are destroyed: create new ones. References returned by the engine's
  /// info() / io_tensors() before the call are invalid after it. Error (engine unchanged) if
  /// weights are missing or the new weights change the optimized graph.
  Status refit_cuda_engine();
  /// The refitted plan's bytes (the engine, if any, is not changed).
  Result<std::vector<uint8_t>> refit_serialized();

 private:
  Refitter(std::unique_ptr<refit::PlanRefitter> impl, Engine* engine);
  std::unique_ptr<refit::PlanRefitter> m_impl;
  Engine* m_engine = nullptr;
};

}  // namespace mlprt
