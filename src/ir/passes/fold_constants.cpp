#include "common/check.h"
#include "ir/evaluator.h"
#include "ir/passes/pass_utils.h"
#include "ir/passes/passes.h"

namespace mlprt::ir {

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
    const DataType dtype = graph.find_constant(node.inputs[0])->dtype;
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
