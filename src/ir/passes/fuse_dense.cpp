#include <algorithm>

#include "common/check.h"
#include "ir/activation.h"
#include "ir/passes/pass_utils.h"
#include "ir/passes/passes.h"

namespace mlprt::ir {
namespace {

using passes_detail::describe;
using passes_detail::single_reader;
using passes_detail::unique_tensor_name;

// True when adding a constant of `dims` to a [..., n] tensor of rank `y_rank` (if known) is a
// per-feature bias: every dim is 1 except possibly the last, which is n, and the result keeps
// y's shape.
bool is_bias_shape(const Dims& dims, int64_t n, std::optional<size_t> y_rank) {
  if (dims.size() > 1 && (!y_rank || dims.size() > *y_rank)) return false;
  for (size_t i = 0; i + 1 < dims.size(); ++i) {
    if (dims[i] != 1) return false;
  }
  return dims.empty() || dims.back() == 1 || dims.back() == n;
}

std::vector<float> bias_values(const Constant& c, int64_t n, double scale) {
  const std::vector<double> v = c.to_doubles();
  std::vector<float> out(static_cast<size_t>(n));
  for (size_t j = 0; j < out.size(); ++j) {
    out[j] = static_cast<float>(scale * (v.size() == 1 ? v[0] : v[j]));
  }
  return out;
}

std::string add_constant(Graph& graph, const std::string& base, Constant c) {
  const std::string name = unique_tensor_name(graph, base);
  graph.constants.emplace(name, std::move(c));
  return name;
}

enum class Rewrite { kNone, kDense, kDenseWithAdd };

// Gemm -> Dense (+ a separate Add when C is not a per-feature bias). kNone when the node
// cannot become a Dense (check_layer_ops reports it).
Result<Rewrite> rewrite_gemm(Graph& graph, size_t index) {
  Node& node = graph.nodes[index];
  const Constant* b = graph.find_constant(node.inputs[1]);
  if (!b || b->dims.size() != 2) return Rewrite::kNone;
  const bool trans_b = node.get_int("transB", 0) != 0;
  const double alpha = node.get_float("alpha", 1.0);
  const double beta = node.get_float("beta", 1.0);
  const int64_t k = trans_b ? b->dims[1] : b->dims[0];
  const int64_t n = trans_b ? b->dims[0] : b->dims[1];
  const std::vector<double> bv = b->to_doubles();
  std::vector<float> w(static_cast<size_t>(k * n));
  for (int64_t r = 0; r < k; ++r) {
    for (int64_t c = 0; c < n; ++c) {
      const double v = trans_b ? bv[static_cast<size_t>(c * k + r)] : bv[static_cast<size_t>(r * n + c)];
      w[static_cast<size_t>(r * n + c)] = static_cast<float>(alpha * v);
    }
  }
  Node dense;
  dense.name = node.name;
  dense.op = "Dense";
  dense.inputs = {node.inputs[0], add_constant(graph, node.name + ".weight",
                                               Constant::from_floats({k, n}, w))};
  dense.outputs = node.outputs;
  dense.attributes["activation"] = std::string("none");
  dense.attributes["transpose_x"] = int64_t{node.get_int("transA", 0) != 0 ? 1 : 0};

  std::optional<Node> add;
  const std::string c_name = node.inputs.size() > 2 ? node.inputs[2] : std::string();
  if (!c_name.empty() && beta != 0.0) {
    const Constant* c = graph.find_constant(c_name);
    if (c && is_bias_shape(c->dims, n, 2)) {
      dense.inputs.push_back(add_constant(graph, node.name + ".bias",
                                          Constant::from_floats({n}, bias_values(*c, n, beta))));
    } else {
      std::string addend = c_name;
      if (c && beta != 1.0) {
        std::vector<double> cv = c->to_doubles();
        std::vector<float> scaled(cv.size());
        for (size_t i = 0; i < cv.size(); ++i) scaled[i] = static_cast<float>(beta * cv[i]);
        addend = add_constant(graph, node.name + ".c", Constant::from_floats(c->dims, scaled));
      } else if (!c && beta != 1.0) {
        return make_error(StatusCode::kUnsupported, describe(graph, node), ": beta = ", beta,
                          " with a non-constant C '", c_name, "'; only beta = 1 is supported then");
      }
      add = Node{};
      add->name = node.name + "_c";
      add->op = "Add";
      add->outputs = dense.outputs;
      dense.outputs = {unique_tensor_name(graph, node.outputs[0] + "_gemm")};
      add->inputs = {dense.outputs[0], addend};
    }
  }
  graph.nodes[index] = std::move(dense);
  if (!add) return Rewrite::kDense;
  graph.nodes.insert(graph.nodes.begin() + static_cast<std::ptrdiff_t>(index + 1),
                     std::move(*add));
  return Rewrite::kDenseWithAdd;
}

Result<Rewrite> rewrite_matmul(Graph& graph, size_t index) {
  Node& node = graph.nodes[index];
  const Constant* b = graph.find_constant(node.inputs[1]);
  if (!b || b->dims.size() != 2) return Rewrite::kNone;
  const std::vector<double> bv = b->to_doubles();
  Node dense;
  dense.name = node.name;
  dense.op = "Dense";
  dense.inputs = {node.inputs[0],
                  add_constant(graph, node.name + ".weight",
                               Constant::from_floats(b->dims, std::vector<float>(bv.begin(), bv.end())))};
  dense.outputs = node.outputs;
  dense.attributes["activation"] = std::string("none");
  dense.attributes["transpose_x"] = int64_t{0};
  graph.nodes[index] = std::move(dense);
  return Rewrite::kDense;
}

// A ScaleShift on the last axis of a 2-D Dense output (BatchNorm1d after Linear) folds into
// the weights and bias: (x W + b) * s + t = x (W * s) + (b * s + t).
void absorb_scale_shift(Graph& graph, size_t index, std::optional<size_t> y_rank) {
  const auto reader = single_reader(graph, graph.nodes[index].outputs[0]);
  if (!reader || graph.nodes[*reader].op != "ScaleShift" || y_rank != size_t{2} ||
      graph.nodes[*reader].get_int("axis", 1) != 1 ||
      graph.nodes[*reader].inputs[0] != graph.nodes[index].outputs[0]) {
    return;
  }
  const Node& ss = graph.nodes[*reader];
  Node& dense = graph.nodes[index];
  const Constant& w = *graph.find_constant(dense.inputs[1]);
  const int64_t k = w.dims[0], n = w.dims[1];
  const std::vector<double> s = graph.find_constant(ss.inputs[1])->to_doubles();
  const std::vector<double> t = graph.find_constant(ss.inputs[2])->to_doubles();
  if (static_cast<int64_t>(s.size()) != n || static_cast<int64_t>(t.size()) != n) return;
  const std::vector<double> wv = w.to_doubles();
  std::vector<float> w2(wv.size());
  for (size_t i = 0; i < wv.size(); ++i) {
    w2[i] = static_cast<float>(wv[i] * s[i % static_cast<size_t>(n)]);
  }
  std::vector<double> b(static_cast<size_t>(n), 0.0);
  if (dense.inputs.size() > 2) b = graph.find_constant(dense.inputs[2])->to_doubles();
  std::vector<float> b2(b.size());
  for (size_t j = 0; j < b.size(); ++j) b2[j] = static_cast<float>(b[j] * s[j] + t[j]);
  dense.inputs.resize(2);
  dense.inputs[1] = add_constant(graph, dense.name + ".weight", Constant::from_floats({k, n}, w2));
  dense.inputs.push_back(add_constant(graph, dense.name + ".bias", Constant::from_floats({n}, b2)));
  dense.outputs = ss.outputs;
  graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(*reader));
}

// Folds a following Add of a per-feature constant into the bias, then a following Relu into
// the activation. The intermediate tensors must have no other reader and be no graph output.
void absorb_epilogue(Graph& graph, size_t index, const std::map<std::string, size_t>& ranks) {
  const int64_t n = graph.find_constant(graph.nodes[index].inputs[1])->dims[1];
  std::optional<size_t> y_rank;
  if (auto it = ranks.find(graph.nodes[index].outputs[0]); it != ranks.end()) y_rank = it->second;

  if (graph.nodes[index].inputs.size() == 2) {
    const auto reader = single_reader(graph, graph.nodes[index].outputs[0]);
    if (reader && graph.nodes[*reader].op == "Add") {
      const Node& add = graph.nodes[*reader];
      const std::string& other = add.inputs[0] == graph.nodes[index].outputs[0] ? add.inputs[1]
                                                                                : add.inputs[0];
      const Constant* c = graph.find_constant(other);
      if (c && is_bias_shape(c->dims, n, y_rank)) {
        const std::string bias = add_constant(graph, graph.nodes[index].name + ".bias",
                                              Constant::from_floats({n}, bias_values(*c, n, 1.0)));
        graph.nodes[index].inputs.push_back(bias);
        graph.nodes[index].outputs = add.outputs;
        graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(*reader));
      }
    }
  }
  absorb_scale_shift(graph, index, y_rank);
  const auto reader = single_reader(graph, graph.nodes[index].outputs[0]);
  if (!reader) return;
  const Node& next = graph.nodes[*reader];
  std::optional<ActivationSpec> act;
  if (next.op == "Relu") act = ActivationSpec{ActivationKind::kRelu, 0.0, 0.0};
  if (next.op == "Activation") act = activation_of(next);
  if (!act || !dense_fusable(act->kind)) return;
  Node& dense = graph.nodes[index];
  dense.attributes["activation"] = std::string(activation_name(act->kind));
  dense.attributes["alpha"] = act->alpha;
  dense.attributes["beta"] = act->beta;
  dense.outputs = next.outputs;
  graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(*reader));
}

}  // namespace

Status fuse_dense(Graph& graph) {
  const std::map<std::string, size_t> ranks = passes_detail::infer_ranks(graph);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const std::string op = graph.nodes[i].op;
    if ((op != "Gemm" && op != "MatMul") || graph.nodes[i].inputs.size() < 2) continue;
    MLPRT_ASSIGN_OR_RETURN(Rewrite kind,
                           op == "Gemm" ? rewrite_gemm(graph, i) : rewrite_matmul(graph, i));
    if (kind == Rewrite::kDense) absorb_epilogue(graph, i, ranks);
  }
  return Status::ok();
}

}  // namespace mlprt::ir
