#pragma once
// Per-layer precisions of a cuda engine. A build runs every layer in one precision (the base:
// the most reduced one its flags allow) unless --layerPrecisions with constraints 'prefer' or
// 'obey' asks for others; then each layer runs in its own (the cuda backend has a kernel for
// every layer op in fp32, tf32, fp16 and bf16, so 'prefer' and 'obey' agree here).
//
// Casts between layers of different precisions: a 16-bit Dense layer whose consumers all run in
// fp32 / tf32 writes fp32 from its matmul's epilogue (cuBLASLt reads fp16/bf16 A and B and
// writes an fp32 D); every other type change is a cast kernel in front of the layer that needs
// it. A single-precision engine has no casts (and keeps the plan's cuda blob version 2).

#include <map>
#include <string>

#include "backends/cuda/cuda_common.h"
#include "ir/graph.h"
#include "mlprt/builder_config.h"

namespace mlprt::backend::cuda {

struct LayerPrecisions {
  Precision base = Precision::kFp32;
  /// Empty: every layer runs in `base`. Else every non-view layer's precision, by node name.
  std::map<std::string, Precision> by_node;

  [[nodiscard]] bool mixed() const noexcept { return !by_node.empty(); }
  [[nodiscard]] Precision of(const std::string& node) const {
    auto it = by_node.find(node);
    return it == by_node.end() ? base : it->second;
  }
};

/// Reshape, Flatten, Squeeze, Unsqueeze: they alias their input and have no precision.
bool is_view_op(const std::string& op);

/// The precisions a build runs its layers in: `base` from the builder flags, then the
/// config's layer precisions (name or "*") where constraints are 'prefer' or 'obey'. A request
/// that names one precision for every layer makes a single-precision engine in it.
Result<LayerPrecisions> resolve_layer_precisions(const ir::Graph& graph,
                                                 const BuilderConfig& config, Precision base);

/// Whether the 16-bit Dense layer `node` of a mixed engine writes fp32 from its epilogue: every
/// consumer of its output is a non-view layer in fp32 or tf32 and the output is no graph output.
bool dense_writes_f32(const ir::Graph& graph, const ir::Node& node, const LayerPrecisions& p);

}  // namespace mlprt::backend::cuda
