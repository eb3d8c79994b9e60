#pragma once
// Concrete shape propagation over a graph, for build-time validation (at each profile's
// min/opt/max) and for the runtime (at the shapes the caller sets).

#include <map>
#include <string>

#include "ir/graph.h"
#include "mlprt/status.h"
#include "mlprt/tensor.h"

namespace mlprt::ir {

using ShapeMap = std::map<std::string, Dims>;

/// Numpy broadcasting of two shapes; the error names `node`.
Result<Dims> broadcast_dims(const Node& node, const Dims& a, const Dims& b);

/// Rank of MatMul's output for inputs of ranks r0, r1 >= 1 (numpy matmul: 1-D operands lose
/// their dim, the rest broadcast).
size_t matmul_output_rank(size_t r0, size_t r1);

/// Shapes of every tensor (inputs, constants, node outputs) given concrete input shapes.
/// Errors name the node and the shapes that do not fit, e.g.
/// "node 'fc1' (Dense): input 'x' has shape 8x700 but the weight expects 784 features".
Result<ShapeMap> infer_shapes(const Graph& graph, const ShapeMap& input_shapes);

}  // namespace mlprt::ir
