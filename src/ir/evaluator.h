#pragma once
// Float64 reference evaluator: plain loops, one op at a time, no fusion. Used by constant
// folding, and as the reference that backends and the runtime are compared with.

#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "mlprt/status.h"
#include "mlprt/tensor.h"

namespace mlprt::ir {

/// A dense row-major tensor of doubles. An omitted optional input is {{}, {}} (no values);
/// a scalar is {{}, {v}}.
struct RefTensor {
  Dims dims;
  std::vector<double> values;
};

RefTensor to_ref_tensor(const Constant& constant);
/// Converts to a Constant of `dtype` (float16 / bfloat16 are stored as float32).
Constant to_constant(const RefTensor& tensor, DataType dtype);

/// Evaluates one node (ONNX ops Gemm, MatMul, Add, Relu, Flatten, Reshape, Identity, Dropout
/// and the layer ops Dense, Add, Relu, Reshape, Flatten). `inputs` follow node.inputs.
Result<std::vector<RefTensor>> evaluate_node(const Graph& graph, const Node& node,
                                             const std::vector<RefTensor>& inputs);

/// Evaluates the whole graph; returns every tensor: inputs, constants and node outputs.
Result<std::map<std::string, RefTensor>> evaluate_graph(
    const Graph& graph, const std::map<std::string, RefTensor>& inputs);

}  // namespace mlprt::ir
