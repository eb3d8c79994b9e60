// A LayerNorm's affine part (scale gamma, shift beta over the last axis) folded into the Dense
// layer that reads its output: Dense(LN(x) * gamma + beta) = Dense'(LN(x)) with
// W'[c, n] = gamma[c] W[c, n] and b'[n] = b[n] + sum_c beta[c] W[c, n]. The same holds through a
// ReduceMean over axes other than the last (a mean commutes with a per-channel affine map), as
// in MLP-Mixer's head: LayerNorm -> mean over tokens -> Linear. The LayerNorm then only
// normalizes (scale of ones, no shift).

#include <algorithm>

#include "ir/passes/pass_utils.h"
#include "ir/passes/passes.h"

namespace mlprt::ir {
namespace {

using passes_detail::infer_ranks;
using passes_detail::single_reader;
using passes_detail::unique_tensor_name;

// The [C] float32 constant at input i of `node`, or null.
const Constant* channel_constant(const Graph& graph, const Node& node, size_t i, int64_t c) {
  if (i >= node.inputs.size() || node.inputs[i].empty()) return nullptr;
  const Constant* k = graph.find_constant(node.inputs[i]);
  if (k == nullptr || k->dtype != DataType::kFloat32 || k->dims != Dims{c}) return nullptr;
  return k;
}

// Whether a ReduceMean of a rank-`rank` tensor keeps its last axis.
bool keeps_last_axis(const Node& mean, size_t rank) {
  const std::vector<int64_t> axes = mean.get_ints("axes");
  if (axes.empty() || mean.inputs.size() != 1) return false;  // all axes, or axes not constant
  const auto last = static_cast<int64_t>(rank) - 1;
  return std::none_of(axes.begin(), axes.end(),
                      [&](int64_t a) { return a == last || a == -1; });
}

// The Dense reading `tensor` (directly or through a ReduceMean that keeps the last axis), whose
// weights have `c` rows, or null.
Node* affine_target(Graph& graph, const std::string& tensor, size_t rank, int64_t c) {
  std::optional<size_t> reader = single_reader(graph, tensor);
  if (!reader) return nullptr;
  Node* node = &graph.nodes[*reader];
  if (node->op == "ReduceMean" && keeps_last_axis(*node, rank) && node->outputs.size() == 1) {
    reader = single_reader(graph, node->outputs[0]);
    if (!reader) return nullptr;
    node = &graph.nodes[*reader];
  }
  if (node->op != "Dense" || node->get_int("transpose_x", 0) != 0 || node->inputs.size() < 2) {
    return nullptr;
  }
  const Constant* w = graph.find_constant(node->inputs[1]);
  if (w == nullptr || w->dtype != DataType::kFloat32 || w->dims.size() != 2 || w->dims[0] != c) {
    return nullptr;
  }
  return node;
}

void fold_into(Graph& graph, Node& ln, Node& dense, int64_t c) {
  const std::vector<double> gamma = graph.find_constant(ln.inputs[1])->to_doubles();
  const Constant* shift = channel_constant(graph, ln, 2, c);
  const std::vector<double> beta = shift ? shift->to_doubles() : std::vector<double>();
  const Constant& w = *graph.find_constant(dense.inputs[1]);
  const int64_t n = w.dims[1];
  const std::vector<double> wv = w.to_doubles();
  std::vector<double> bias(static_cast<size_t>(n), 0.0);
  const bool has_bias = dense.inputs.size() > 2 && !dense.inputs[2].empty();
  if (has_bias) bias = graph.find_constant(dense.inputs[2])->to_doubles();
  std::vector<float> folded_w(wv.size());
  for (int64_t i = 0; i < c; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const auto at = static_cast<size_t>(i * n + j);
      folded_w[at] = static_cast<float>(gamma[static_cast<size_t>(i)] * wv[at]);
      if (!beta.empty()) bias[static_cast<size_t>(j)] += beta[static_cast<size_t>(i)] * wv[at];
    }
  }
  std::vector<float> folded_b(bias.begin(), bias.end());
  // New constants: the originals may be read elsewhere (tied weights).
  const std::string w_name = unique_tensor_name(graph, dense.inputs[1] + "_norm_folded");
  graph.constants[w_name] = Constant::from_floats(w.dims, folded_w);
  dense.inputs[1] = w_name;
  if (has_bias || !beta.empty()) {
    const std::string b_name = unique_tensor_name(
        graph, (has_bias ? dense.inputs[2] : dense.inputs[1]) + "_norm_bias");
    graph.constants[b_name] = Constant::from_floats(Dims{n}, folded_b);
    dense.inputs.resize(3);
    dense.inputs[2] = b_name;
  }
  const std::string ones = unique_tensor_name(graph, ln.name + "_unit_scale");
  graph.constants[ones] = Constant::from_floats(Dims{c}, std::vector<float>(static_cast<size_t>(c), 1.0f));
  ln.inputs.resize(2);
  ln.inputs[1] = ones;
}

}  // namespace

Status fold_norm_affine(Graph& graph) {
  const std::map<std::string, size_t> ranks = infer_ranks(graph);
  for (Node& ln : graph.nodes) {
    if (ln.op != "LayerNorm" || ln.outputs.size() != 1 || ln.inputs.size() < 2) {
      continue;
    }
    auto rank = ranks.find(ln.inputs[0]);
    if (rank == ranks.end() || rank->second == 0) continue;
    const auto last = static_cast<int64_t>(rank->second) - 1;
    const int64_t axis = ln.get_int("axis", -1);
    if (axis != -1 && axis != last) continue;  // normalizes more than the channel axis
    const Constant* scale = graph.find_constant(ln.inputs[1]);
    if (scale == nullptr || scale->dims.size() != 1) continue;
    const int64_t c = scale->dims[0];
    if (channel_constant(graph, ln, 1, c) == nullptr) continue;
    if (ln.inputs.size() > 2 && !ln.inputs[2].empty() && !channel_constant(graph, ln, 2, c)) {
      continue;
    }
    Node* dense = affine_target(graph, ln.outputs[0], rank->second, c);
    if (dense == nullptr) continue;
    fold_into(graph, ln, *dense, c);
  }
  return Status::ok();
}

}  // namespace mlprt::ir
