#pragma once
// The accuracy budget (BuilderConfig::accuracy_budget, `mlprt build --accuracyBudget`): chooses
// each layer's precision so that the whole network's relative L2 error against float64 on the
// calibration inputs stays within the budget, as fast as it can.
//
// The search builds whole engines through `build` (the ordinary builder, with per-layer
// precisions under constraints 'obey') and measures them on the calibration inputs:
//  1. all fp32: its error is the floor; above the budget the build is refused, saying it;
//  2. each candidate layer (every non-view layer) alone in each allowed lower precision, the
//     others fp32: the network's error and time (a precision the backend has no kernel for in
//     that layer is skipped, said in the log);
//  3. greedy: the moves that save time, best time saved per error added first, each taken while
//     the summed added errors stay within the budget;
//  4. the mix is built and measured on the whole network; while it is over the budget the last
//     move taken is undone. The fastest measured of all fp32, the mix, and every layer in one
//     lower precision (when within the budget) is built.
// Timing runs share one timing cache, so each layer's tactics are timed once per precision.

#include <functional>
#include <string>

#include "ir/graph.h"
#include "mlprt/builder.h"
#include "mlprt/builder_config.h"
#include "mlprt/status.h"

namespace mlprt::builder {

/// Builds an engine: `config` as given, the plan's "accuracy" metadata (see
/// docs/plan-format.md) set to `accuracy_json` (empty: none).
using BuildFn =
    std::function<Result<SerializedEngine>(const BuilderConfig&, const std::string& accuracy_json)>;

/// Checks the budget and calibration inputs against `optimized` (the network after the passes)
/// before anything is built.
Status check_accuracy_request(const ir::Graph& optimized, const BuilderConfig& config);

/// Searches (see above) and builds the chosen mix: layer_precisions for every layer under
/// constraints 'obey', with the "accuracy" metadata (budget, calibration, each layer's precision
/// and measured error).
Result<SerializedEngine> build_within_budget(const ir::Graph& optimized,
                                             const BuilderConfig& config, const BuildFn& build);

}  // namespace mlprt::builder
