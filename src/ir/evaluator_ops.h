#pragma once
// The evaluator's ops beyond the core matrix products and views (internal to src/ir).

#include <vector>

#include "ir/evaluator.h"
#include "ir/shape_inference.h"

namespace mlprt::ir {
namespace evaluator_detail {

std::string describe(const Node& node);
size_t count_of(const Dims& dims);
using ir::broadcast_dims;  // from shape_inference.h
/// For every element of `out` (row-major), the flat index of the element of `in` it reads.
std::vector<size_t> broadcast_offsets(const Dims& in, const Dims& out);
Status need_inputs(const Node& node, const std::vector<RefTensor>& in, size_t n);
bool present(const std::vector<RefTensor>& in, size_t i);

}  // namespace evaluator_detail

/// Element-wise, normalization, softmax and shape-computation ops (ONNX and layer ops).
/// kUnsupported for anything else.
Result<std::vector<RefTensor>> evaluate_more_ops(const Node& node,
                                                 const std::vector<RefTensor>& inputs);

}  // namespace mlprt::ir
