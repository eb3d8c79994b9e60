// Transposes that only swap the two axes a GEMM reads or writes are folded into the
// neighbouring matrix product as a transposed (strided) read or write: the token-mixing MLP of
// MLP-Mixer / gMLP / ResMLP (x.transpose(1, 2) -> Linear -> ... -> Linear -> transpose back)
// becomes batched GEMMs with no copy between them.

#include <algorithm>

#include "ir/passes/pass_utils.h"
#include "ir/passes/passes.h"

namespace mlprt::ir {
namespace {

using passes_detail::infer_ranks;
using passes_detail::single_reader;

// Whether `node` is a Transpose that swaps the last two of its `rank` axes and nothing else.
bool swaps_last_two(const Node& node, const std::map<std::string, size_t>& ranks) {
  if (node.op != "Transpose" || node.inputs.size() != 1) return false;
  auto it = ranks.find(node.inputs[0]);
  if (it == ranks.end() || it->second < 2) return false;
  const size_t rank = it->second;
  std::vector<int64_t> perm = node.get_ints("perm");
  if (perm.empty()) return rank == 2;
  if (perm.size() != rank) return false;
  for (size_t i = 0; i + 2 < rank; ++i) {
    if (perm[i] != static_cast<int64_t>(i)) return false;
  }
  return perm[rank - 2] == static_cast<int64_t>(rank - 1) &&
         perm[rank - 1] == static_cast<int64_t>(rank - 2);
}

// A Dense layer as the equivalent MatMul layer (same inputs and epilogue).
void dense_to_matmul(Node& node) {
  node.op = "MatMul";
  node.attributes.erase("transpose_x");
}

bool is_plain_dense(const Node& node) {
  return node.op == "Dense" && node.get_int("transpose_x", 0) == 0;
}

bool is_matmul_layer(const Node& node) { return node.op == "MatMul" || is_plain_dense(node); }

}  // namespace

Status fuse_transposes(Graph& graph) {
  bool changed = true;
  while (changed) {
    changed = false;
    const std::map<std::string, size_t> ranks = infer_ranks(graph);
    for (size_t t = 0; t < graph.nodes.size() && !changed; ++t) {
      Node& tr = graph.nodes[t];
      if (!swaps_last_two(tr, ranks)) continue;
      // Read side: Transpose -> Dense / MatMul operand A.
      if (auto reader = single_reader(graph, tr.outputs[0])) {
        Node& mm = graph.nodes[*reader];
        const bool as_a = is_matmul_layer(mm) && mm.inputs[0] == tr.outputs[0] &&
                          (mm.inputs.size() < 2 || mm.inputs[1] != tr.outputs[0]);
        const bool as_b = mm.op == "MatMul" && mm.inputs.size() > 1 &&
                          mm.inputs[1] == tr.outputs[0] && mm.inputs[0] != tr.outputs[0];
        if (as_a || as_b) {
          if (mm.op == "Dense") dense_to_matmul(mm);
          const char* key = as_a ? "transpose_a" : "transpose_b";
          mm.attributes[key] = int64_t{mm.get_int(key, 0) == 0 ? 1 : 0};
          mm.inputs[as_a ? 0 : 1] = tr.inputs[0];
          tr.outputs[0].clear();  // dead now; remove_dead_nodes drops it
          graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(t));
          changed = true;
          continue;
        }
      }
      // Write side: Dense / MatMul -> Transpose (the product's only reader).
      auto producer = graph.producer_of(tr.inputs[0]);
      if (!producer) continue;
      Node& mm = graph.nodes[*producer];
      if (!is_matmul_layer(mm) || !single_reader(graph, tr.inputs[0])) continue;
      if (ranks.count(mm.inputs[0]) == 0 || ranks.at(mm.inputs[0]) < 2) continue;
      if (mm.op == "MatMul" && (mm.inputs.size() < 2 || ranks.count(mm.inputs[1]) == 0 ||
                                ranks.at(mm.inputs[1]) < 2)) {
        continue;
      }
      if (mm.op == "Dense") dense_to_matmul(mm);
      mm.attributes["transpose_y"] = int64_t{mm.get_int("transpose_y", 0) == 0 ? 1 : 0};
      mm.outputs[0] = tr.outputs[0];
      graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(t));
      changed = true;
    }
  }
  return Status::ok();
}

}  // namespace mlprt::ir
