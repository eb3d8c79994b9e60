#include <algorithm>

#include "common/check.h"
#include "ir/passes/pass_utils.h"
#include "ir/passes/passes.h"

namespace mlprt::ir {
namespace {

using passes_detail::describe;
using passes_detail::is_graph_output;

std::optional<size_t> rank_of(const Graph& graph, const std::string& tensor) {
  if (const TensorInfo* in = graph.find_input(tensor)) return in->shape.size();
  if (const Constant* c = graph.find_constant(tensor)) return c->dims.size();
  for (const TensorInfo& out : graph.outputs) {
    if (out.name == tensor && !out.shape.empty()) return out.shape.size();
  }
  auto ranks = passes_detail::infer_ranks(graph);
  auto it = ranks.find(tensor);
  return it == ranks.end() ? std::nullopt : std::optional<size_t>(it->second);
}

}  // namespace

Status remove_identities(Graph& graph) {
  for (size_t i = 0; i < graph.nodes.size();) {
    Node& node = graph.nodes[i];
    // Casts between float types: runtime tensors are float in the layer precision the build
    // picks (integer tensors are constants, folded). ONNX: 1 float, 10 float16, 16 bfloat16.
    const int64_t to = node.op == "Cast" ? node.get_int("to", 0) : 0;
    const bool is_float_cast = to == 1 || to == 10 || to == 16;
    if (node.op != "Identity" && node.op != "Dropout" && !is_float_cast) {
      ++i;
      continue;
    }
    if (node.inputs.empty() || node.outputs.empty()) {
      return make_error(StatusCode::kInvalidArgument, describe(graph, node),
                        ": needs one input and one output");
    }
    if (node.outputs.size() > 1 && !node.outputs[1].empty() &&
        graph.use_count(node.outputs[1]) != 0) {
      return make_error(StatusCode::kUnsupported, describe(graph, node), ": its mask output '",
                        node.outputs[1], "' is used; only inference-mode Dropout is supported");
    }
    const std::string x = node.inputs[0];
    const std::string y = node.outputs[0];
    if (!is_graph_output(graph, y)) {
      passes_detail::replace_uses(graph, y, x);
      graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    // y must keep its name. If x comes from a node (and is no graph output itself), that node
    // can produce y directly.
    const auto producer = graph.producer_of(x);
    if (producer && !is_graph_output(graph, x)) {
      for (std::string& out : graph.nodes[*producer].outputs) {
        if (out == x) out = y;
      }
      passes_detail::replace_uses(graph, x, y);
      graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    // x is a graph input, a constant or another graph output: keep a copy as a Reshape that
    // copies every dimension (target 0 = "same as input"), which is a layer op.
    const auto rank = rank_of(graph, x);
    if (!rank) {
      return make_error(StatusCode::kUnsupported, describe(graph, node),
                        ": copies '", x, "' to graph output '", y,
                        "' but the rank of '", x, "' is unknown");
    }
    Node copy;
    copy.name = node.name;
    copy.op = "Reshape";
    copy.inputs = {x};
    copy.outputs = {y};
    copy.attributes["shape"] = std::vector<int64_t>(*rank, 0);
    copy.attributes["allowzero"] = int64_t{0};
    graph.nodes[i] = std::move(copy);
    ++i;
  }
  return Status::ok();
}

}  // namespace mlprt::ir
