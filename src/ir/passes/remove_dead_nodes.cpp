#include <set>

#include "ir/passes/passes.h"

namespace mlprt::ir {

Status remove_dead_nodes(Graph& graph) {
  std::set<std::string> live;
  for (const TensorInfo& out : graph.outputs) live.insert(out.name);
  std::vector<bool> keep(graph.nodes.size(), false);
  for (size_t i = graph.nodes.size(); i-- > 0;) {
    const Node& node = graph.nodes[i];
    for (const std::string& out : node.outputs) keep[i] = keep[i] || live.count(out) != 0;
    if (keep[i]) live.insert(node.inputs.begin(), node.inputs.end());
  }
  std::vector<Node> kept;
  kept.reserve(graph.nodes.size());
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (keep[i]) kept.push_back(std::move(graph.nodes[i]));
  }
  graph.nodes = std::move(kept);
  std::erase_if(graph.constants, [&](const auto& entry) { return !live.count(entry.first); });
  return Status::ok();
}

}  // namespace mlprt::ir
