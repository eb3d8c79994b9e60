#include "common/check.h"
#include "ir/evaluator.h"
#include "ir/passes/pass_utils.h"
#include "ir/passes/passes.h"

namespace mlprt::ir {
namespace {

DataType onnx_to_dtype(int64_t onnx_type) {
  switch (onnx_type) {
    case 2: return DataType::kUInt8;
    case 3: return DataType::kInt8;
    case 6: return DataType::kInt32;
    case 7: return DataType::kInt64;
    case 9: return DataType::kBool;
    case 10: return DataType::kFloat16;
    case 11: return DataType::kFloat64;
    case 16: return DataType::kBFloat16;
    default: return DataType::kFloat32;
  }
}

// Ops whose result type is not their first input's.
DataType result_dtype(const Graph& graph, const Node& node) {
  if (node.op == "Shape") return DataType::kInt64;
  if (node.op == "Greater" || node.op == "Less" || node.op == "Equal" ||
      node.op == "GreaterOrEqual" || node.op == "LessOrEqual") {
    return DataType::kBool;
  }
  if (node.op == "Where") return graph.find_constant(node.inputs[1])->dtype;
  if (node.op == "Cast") return onnx_to_dtype(node.get_int("to", 1));
  if (node.op == "ConstantOfShape") {
    auto it = node.attributes.find("value");
    if (it != node.attributes.end() && std::holds_alternative<Constant>(it->second)) {
      return std::get<Constant>(it->second).dtype;
    }
    return DataType::kFloat32;
  }
  return graph.find_constant(node.inputs[0])->dtype;
}

}  // namespace

Status fold_constants(Graph& graph) {
  using passes_detail::is_graph_output;
  std::vector<Node> kept;
  kept.reserve(graph.nodes.size());
  for (Node& node : graph.nodes) {
    bool foldable = !node.inputs.empty();
    for (const std::string& in : node.inputs) foldable = foldable && (in.empty() || graph.is_constant(in));
    // A graph output must keep a producing node: the runtime reads outputs from layers.
    for (const std::string& out : node.outputs) foldable = foldable && !is_graph_output(graph, out);
    if (!foldable || node.inputs[0].empty()) {
      kept.push_back(std::move(node));
      continue;
    }
    std::vector<RefTensor> inputs;
    for (const std::string& in : node.inputs) {
      inputs.push_back(in.empty() ? RefTensor{} : to_ref_tensor(*graph.find_constant(in)));
    }
    auto outputs = evaluate_node(graph, node, inputs);
    if (!outputs.is_ok()) {
      return outputs.status().with_context(graph.source.empty() ? "constant folding"
                                                                : graph.source);
    }
    // Results keep the data input's dtype (float32 weights stay float32, int64 shapes int64);
    // Dropout's mask is bool.
    const DataType dtype = result_dtype(graph, node);
    for (size_t i = 0; i < node.outputs.size() && i < outputs->size(); ++i) {
      if (node.outputs[i].empty()) continue;
      const DataType out_dtype = node.op == "Dropout" && i == 1 ? DataType::kBool : dtype;
      graph.constants[node.outputs[i]] = to_constant((*outputs)[i], out_dtype);
    }
  }
  graph.nodes = std::move(kept);
  return Status::ok();
}

}  // namespace mlprt::ir
