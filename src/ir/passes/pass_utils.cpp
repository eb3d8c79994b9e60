#include "ir/passes/pass_utils.h"

#include <algorithm>

#include "ir/shape_inference.h"

namespace mlprt::ir::passes_detail {

std::string describe(const Graph& graph, const Node& node) {
  std::string out = graph.source.empty() ? std::string() : graph.source + ": ";
  return out + "node '" + node.name + "' (" + node.op + ")";
}

void replace_uses(Graph& graph, const std::string& from, const std::string& to) {
  for (Node& node : graph.nodes) {
    std::replace(node.inputs.begin(), node.inputs.end(), from, to);
  }
}

bool is_graph_output(const Graph& graph, const std::string& tensor) {
  return std::any_of(graph.outputs.begin(), graph.outputs.end(),
                     [&](const TensorInfo& t) { return t.name == tensor; });
}

std::string unique_tensor_name(const Graph& graph, const std::string& base) {
  auto taken = [&](const std::string& name) {
    return graph.is_constant(name) || graph.find_input(name) != nullptr ||
           graph.producer_of(name).has_value() || is_graph_output(graph, name) ||
           graph.use_count(name) != 0;
  };
  std::string name = base;
  for (int k = 1; taken(name); ++k) name = base + "_" + std::to_string(k);
  return name;
}

std::optional<size_t> single_reader(const Graph& graph, const std::string& tensor) {
  if (is_graph_output(graph, tensor) || graph.use_count(tensor) != 1) return std::nullopt;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const auto& in = graph.nodes[i].inputs;
    if (std::find(in.begin(), in.end(), tensor) != in.end()) return i;
  }
  return std::nullopt;
}

std::map<std::string, size_t> infer_ranks(const Graph& graph) {
  std::map<std::string, size_t> rank;
  for (const TensorInfo& in : graph.inputs) rank[in.name] = in.shape.size();
  for (const auto& [name, c] : graph.constants) rank[name] = c.dims.size();
  for (const Node& node : graph.nodes) {
    auto rank_of = [&](size_t i) -> std::optional<size_t> {
      if (i >= node.inputs.size()) return std::nullopt;
      auto it = rank.find(node.inputs[i]);
      return it == rank.end() ? std::nullopt : std::optional<size_t>(it->second);
    };
    const auto r0 = rank_of(0), r1 = rank_of(1);
    std::optional<size_t> out;
    if (node.op == "Gemm" || node.op == "Flatten") {
      out = 2;
    } else if (node.op == "Dense") {
      out = node.get_int("transpose_x", 0) != 0 ? std::optional<size_t>(2) : r0;
    } else if (node.op == "MatMul") {
      if (r0 && r1 && *r0 > 0 && *r1 > 0) out = matmul_output_rank(*r0, *r1);
    } else if (node.op == "Add" || node.op == "Binary") {
      if (r0 && r1) out = std::max(*r0, *r1);
    } else if (node.op == "ReduceMean" && node.get_int("keepdims", 1) == 0) {
      const size_t axes = node.get_ints("axes").size();
      if (r0 && node.inputs.size() == 1) out = axes == 0 ? 0 : *r0 - std::min(axes, *r0);
    } else if (node.op == "Reshape") {
      if (node.has_attribute("shape")) {
        out = node.get_ints("shape").size();
      } else if (node.inputs.size() > 1) {
        if (const Constant* c = graph.find_constant(node.inputs[1])) {
          out = static_cast<size_t>(c->num_elements());
        }
      }
    } else {
      out = r0;
    }
    if (!out) continue;
    for (const std::string& o : node.outputs) {
      if (!o.empty()) rank[o] = *out;
    }
  }
  return rank;
}

}  // namespace mlprt::ir::passes_detail
