#pragma once
// ONNX Split (opsets 11, 13, 18) as the Slice layers it is made of. Split is no layer op: the
// shape-folding pass (passes/fold_shapes.cpp) replaces each Split by one Slice per output once
// the part sizes are known at build time, and the reference evaluator computes it the same way.
//
// Part sizes along "axis" (default 0, negative counts from the end), first found of:
//   * the "split" attribute (opset < 13) or the constant "split" input (opset 13+): must have
//     one size per output, each >= 0, summing to the axis' size where that is known;
//   * "num_outputs" (opset 18+): ceil(size / n) per part, the last part smaller (as
//     torch.chunk; it must not come out negative);
//   * neither: equal parts, one per output (the size must divide evenly).
// Sizes computed at run time are refused, naming the input.

#include <cstdint>
#include <optional>
#include <vector>

#include "ir/graph.h"
#include "mlprt/status.h"

namespace mlprt::ir {

/// Split's part sizes. `axis_size`: the size of the split axis, -1 where it is not known at
/// build time; `given`: the values of the "split" input where it has one and they are known
/// (nullopt where the input is computed at run time).
Result<std::vector<int64_t>> split_sizes(const Node& node, int64_t axis_size,
                                         const std::optional<std::vector<int64_t>>& given);

/// One single-input Slice node per output of `split`, cutting `sizes` along its axis; the
/// i-th is named `split.name + "_" + i` (the caller makes names unique).
std::vector<Node> split_to_slices(const Node& split, const std::vector<int64_t>& sizes);

}  // namespace mlprt::ir
