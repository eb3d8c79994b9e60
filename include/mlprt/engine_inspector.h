#pragma once
/// @file engine_inspector.h
/// A plan described without loading it (what TensorRT's IEngineInspector tells of an engine):
/// `mlprt inspect` reads the plan file's header, metadata and backend blob, verifies the
/// checksum by streaming the file, and asks the backend to describe its blob. No weight is
/// held, no device is touched, nothing is packed or run.
///
/// @code
///   mlprt::Result<mlprt::PlanInfo> info = mlprt::inspect_plan_file("mlp.plan");
///   if (info) std::cout << info->to_json();
/// @endcode

#include <filesystem>
#include <string>
#include <vector>

#include "mlprt/engine.h"
#include "mlprt/hardware_policy.h"
#include "mlprt/optimization_profile.h"
#include "mlprt/status.h"
#include "mlprt/tensor.h"

namespace mlprt {

/// Everything `mlprt inspect` shows of a plan.
struct PlanInfo {
  EngineInfo info;                     ///< as Engine::info() says it (device -1 when not loaded)
  std::vector<TensorDesc> io_tensors;  ///< inputs first, then outputs, in the model's order
  std::vector<OptimizationProfile> profiles;
  std::string build_config_json;  ///< the build settings the plan records (JSON text)
  /// True: read from the plan file's metadata only. False: this describes a loaded engine (the
  /// plan did not run here as built and was re-tuned or run on another backend, as the load's
  /// hardware-mismatch policy said; info.retuned_from names what it was built for).
  bool metadata_only = false;

  /// What `mlprt inspect --json` prints (Engine::to_json's text for the same plan).
  [[nodiscard]] std::string to_json() const;
};

/// Describes the plan file at `path`. A plan that runs here as built (its backend available,
/// built for this machine's hardware) is read without loading: header, metadata and backend
/// blob, the checksum verified by streaming the file in 4 MiB steps. Otherwise the plan is
/// loaded under `options` (re-tuned, refused or run on another backend, as for
/// Engine::load_file) and the loaded engine is described. Errors as Engine::load_file's.
[[nodiscard]] Result<PlanInfo> inspect_plan_file(const std::filesystem::path& path,
                                                 const EngineLoadOptions& options = {});

/// A loaded engine's description.
[[nodiscard]] PlanInfo inspect_engine(const Engine& engine);

}  // namespace mlprt
