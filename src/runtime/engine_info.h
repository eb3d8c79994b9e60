#pragma once
// What Engine::info() and inspect_plan_file() say of a plan, from its graph and metadata and the
// backend's per-layer lines: one place, so that a loaded engine and a plan read without loading
// are described the same way.

#include <string>
#include <vector>

#include "mlprt/engine.h"
#include "plan/plan.h"

namespace mlprt::detail {

/// Fills `info` from `plan` (its constants may hold no data: sizes come from their dims),
/// `precisions` (Executable::layer_precisions or Backend::describe_blob, per node; missing
/// entries: the plan's precision) and `tactics` (whole-network tactic lines). Leaves device,
/// plan_hash, plan_bytes and the re-tune fields as they are.
void fill_engine_info(const plan::Plan& plan, const std::vector<std::string>& precisions,
                      std::vector<std::string> tactics, EngineInfo& info);

/// The graph's inputs, then its outputs.
std::vector<TensorDesc> make_io_tensors(const ir::Graph& graph);

}  // namespace mlprt::detail
