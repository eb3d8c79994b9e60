#pragma once
// Helpers shared by the passes (internal).

#include <map>
#include <optional>
#include <string>

#include "ir/graph.h"

namespace mlprt::ir::passes_detail {

/// "model.onnx: node 'fc1' (Gemm)" (the source is left out when unknown).
std::string describe(const Graph& graph, const Node& node);

/// Makes every node input reading `from` read `to` instead.
void replace_uses(Graph& graph, const std::string& from, const std::string& to);

/// `base`, or `base_1`, `base_2`, ... : the first name no tensor of the graph uses.
std::string unique_tensor_name(const Graph& graph, const std::string& base);

[[nodiscard]] bool is_graph_output(const Graph& graph, const std::string& tensor);

/// Index of the only node reading `tensor`, if exactly one node reads it once and it is no
/// graph output.
std::optional<size_t> single_reader(const Graph& graph, const std::string& tensor);

/// Rank of every tensor whose rank follows from the graph's inputs and constants.
std::map<std::string, size_t> infer_ranks(const Graph& graph);

}  // namespace mlprt::ir::passes_detail
