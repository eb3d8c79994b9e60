#pragma once
// Shared by the backends' compile(): the concrete input shapes a profile is tuned for.

#include <cstddef>

#include "ir/graph.h"
#include "ir/shape_inference.h"
#include "mlprt/optimization_profile.h"
#include "mlprt/status.h"

namespace mlprt::backend {

/// Every graph input at profile `index`'s opt shape (static inputs need no range); an error if
/// a dynamic input has no range in the profile.
Result<ir::ShapeMap> opt_input_shapes(const ir::Graph& graph, const OptimizationProfile& profile,
                                      size_t index);

}  // namespace mlprt::backend
