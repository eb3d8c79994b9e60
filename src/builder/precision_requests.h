#pragma once
// Checks the builder config's precision requests against the optimized graph before any backend
// sees them: the constraint mode, each --layerPrecisions value and layer name (and warns that
// constraints 'none' ignore layer precisions). What a backend can honour is its own check.

#include "ir/graph.h"
#include "mlprt/builder_config.h"
#include "mlprt/status.h"

namespace mlprt::builder {

Status check_precision_requests(const ir::Graph& graph, const BuilderConfig& config);

}  // namespace mlprt::builder
