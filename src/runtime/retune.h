#pragma once
// Re-tuning a plan for this machine (mlprt/hardware_policy.h): decides, under the load's
// hardware-mismatch policy, whether a plan runs as it is, is re-tuned on its own backend, runs
// on another backend, or is refused; and does the re-tune from the plan's graph and its recorded
// build settings.

#include <string>
#include <vector>

#include "backends/backend.h"
#include "mlprt/builder_config.h"
#include "mlprt/hardware_policy.h"
#include "mlprt/status.h"
#include "plan/plan.h"

namespace mlprt::detail {

/// The build settings the plan records (build_config_json) as a BuilderConfig for a re-tune:
/// precisions, constraints, layer precisions, threads, optimization level; profiles are the
/// plan's resolved ones (passed to compile separately). No timing cache: a re-tune never reads
/// or writes one. A plan that lacks a setting fails with a message saying to rebuild it.
Result<BuilderConfig> recorded_build_config(const plan::Plan& plan, const std::string& source);

struct Resolution {
  const backend::Backend* backend = nullptr;  ///< the backend that runs the (re-tuned) plan
  bool retuned = false;        ///< `plan` was replaced by its re-tune for this machine
  std::vector<uint8_t> bytes;  ///< the re-tuned plan's bytes (when retuned)
  double seconds = 0.0;        ///< the re-tune's time
  std::string from_backend;    ///< backend and hardware of the plan as given
  std::string from_hardware;
};

/// Checks `plan` against this machine under `policy` and, where it says so, re-tunes `plan` in
/// place (backend, hardware and blob replaced; graph, weights and profiles kept). `always`
/// re-tunes even a plan built for this machine (mlprt retune). Logs a WARNING with the reason and
/// the time, and one per layer whose precision degraded.
Result<Resolution> resolve_for_this_machine(plan::Plan& plan, const std::string& source,
                                            HardwareMismatchPolicy policy, bool always = false);

}  // namespace mlprt::detail
