#pragma once
// Checks the builder config's optimization profiles against the network's inputs and completes
// them: every profile ends up with a range for every input (static ones as min = opt = max).

#include <vector>

#include "ir/graph.h"
#include "mlprt/builder_config.h"
#include "mlprt/status.h"

namespace mlprt::builder {

Result<std::vector<OptimizationProfile>> resolve_profiles(const ir::Graph& graph,
                                                          const BuilderConfig& config);

/// Runs shape inference at each profile's min, opt and max shapes; errors say which.
Status check_profile_shapes(const ir::Graph& graph,
                            const std::vector<OptimizationProfile>& profiles);

}  // namespace mlprt::builder
