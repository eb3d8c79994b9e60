#pragma once
// Whether a graph's rows are independent: every op maps row i of its inputs (index i of axis 0,
// the batch axis) to row i of its outputs, so that a batch may run in chunks of rows whose
// outputs are concatenated (ExecutionContext::set_split_batch). The builder proves it on the
// optimized graph and records the result in the plan ("row_independence", plan-format.md).

#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/shape_inference.h"

namespace mlprt::ir {

struct RowIndependence {
  bool independent = false;
  /// When not independent: the layer (node name) that mixes rows, or "" where the graph's
  /// inputs or outputs are the reason; and why, in words.
  std::string layer;
  std::string reason;
  friend bool operator==(const RowIndependence&, const RowIndependence&) = default;
};

/// Proves row independence for the shapes in `samples` (one map per sample, each giving every
/// graph input's shape, e.g. each profile's opt shapes): every graph input has a dynamic axis 0
/// and every graph output depends on the inputs with that axis 0 as its own. Each sample is
/// checked at two batch sizes (its axis 0 replaced), so that a shape that only fits one size is
/// caught. Op rules: Dense (not transpose_x), element-wise ops and activations, Add / Binary
/// with operands broadcast along the trailing axes only, Softmax / LayerNorm / ScaleShift over a
/// non-batch axis, and the views (Reshape, Flatten, Squeeze, Unsqueeze) where the output's axis
/// 0 is the batch at both sizes (row-major views then keep each row's elements together).
/// Transpose keeping axis 0 first, Slice / ReduceMean not touching axis 0, and MatMul where
/// axis 0 of the batched operand is a batch axis of the product the other operand does not vary
/// along (or the rows of an untransposed 2-D product). Anything else is reported as not proven,
/// naming the layer.
RowIndependence analyze_row_independence(const Graph& graph, const std::vector<ShapeMap>& samples);

}  // namespace mlprt::ir
