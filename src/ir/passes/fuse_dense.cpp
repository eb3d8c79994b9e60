#include <algorithm>
#include <cstring>

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

// Weights are folded one tensor at a time, element by element in double (as the float64
// reference does) and stored as float32 straight into the new constant: no whole-tensor double
// copy, and a source that nothing else reads is released at once (the wide MLP's 64 MiB layers
// made whole-graph copies the build's peak).
void store_float(Constant& c, size_t i, double v) {
  const float f = static_cast<float>(v);
  std::memcpy(c.data.data() + i * sizeof(float), &f, sizeof(float));
}

Constant float_constant(Dims dims) {
  Constant c;
  c.dtype = DataType::kFloat32;
  int64_t count = 1;
  for (int64_t d : dims) count *= d;
  c.dims = std::move(dims);
  c.data.resize(static_cast<size_t>(count) * sizeof(float));
  return c;
}

// Erases constant `name` when no node input and no graph output reads it any more.
void drop_if_unused(Graph& graph, const std::string& name) {
  if (graph.is_constant(name) && graph.use_count(name) == 0) graph.constants.erase(name);
}

// Renames constant `from` (read by nothing else) to a fresh name from `base`, without copying.
std::string rename_constant(Graph& graph, const std::string& from, const std::string& base) {
  const std::string name = unique_tensor_name(graph, base);
  auto handle = graph.constants.extract(from);
  handle.key() = name;
  graph.constants.insert(std::move(handle));
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
  const std::string b_name = node.inputs[1];
  std::string weight;
  if (!trans_b && alpha == 1.0 && b->dtype == DataType::kFloat32 && graph.use_count(b_name) == 1) {
    weight = rename_constant(graph, b_name, node.name + ".weight");
  } else {
    Constant w = float_constant({k, n});
    for (int64_t r = 0; r < k; ++r) {
      for (int64_t c = 0; c < n; ++c) {
        const double v = b->value_at(static_cast<size_t>(trans_b ? c * k + r : r * n + c));
        store_float(w, static_cast<size_t>(r * n + c), alpha * v);
      }
    }
    weight = add_constant(graph, node.name + ".weight", std::move(w));
  }
  Node dense;
  dense.name = node.name;
  dense.op = "Dense";
  dense.inputs = {node.inputs[0], weight};
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
  drop_if_unused(graph, b_name);
  if (!add) return Rewrite::kDense;
  graph.nodes.insert(graph.nodes.begin() + static_cast<std::ptrdiff_t>(index + 1),
                     std::move(*add));
  return Rewrite::kDenseWithAdd;
}

Result<Rewrite> rewrite_matmul(Graph& graph, size_t index) {
  Node& node = graph.nodes[index];
  const Constant* b = graph.find_constant(node.inputs[1]);
  if (!b || b->dims.size() != 2) return Rewrite::kNone;
  const std::string b_name = node.inputs[1];
  std::string weight;
  if (b->dtype == DataType::kFloat32 && graph.use_count(b_name) == 1) {
    weight = rename_constant(graph, b_name, node.name + ".weight");
  } else {
    Constant w = float_constant(b->dims);
    const size_t count = static_cast<size_t>(b->num_elements());
    for (size_t i = 0; i < count; ++i) store_float(w, i, b->value_at(i));
    weight = add_constant(graph, node.name + ".weight", std::move(w));
  }
  Node dense;
  dense.name = node.name;
  dense.op = "Dense";
  dense.inputs = {node.inputs[0], weight};
  dense.outputs = node.outputs;
  dense.attributes["activation"] = std::string("none");
  dense.attributes["transpose_x"] = int64_t{0};
  graph.nodes[index] = std::move(dense);
  drop_if_unused(graph, b_name);
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
  const std::string w_name = dense.inputs[1];
  const Constant& w = *graph.find_constant(w_name);
  const int64_t k = w.dims[0], n = w.dims[1];
  const std::vector<double> s = graph.find_constant(ss.inputs[1])->to_doubles();
  const std::vector<double> t = graph.find_constant(ss.inputs[2])->to_doubles();
  if (static_cast<int64_t>(s.size()) != n || static_cast<int64_t>(t.size()) != n) return;
  std::vector<double> b(static_cast<size_t>(n), 0.0);
  if (dense.inputs.size() > 2) b = graph.find_constant(dense.inputs[2])->to_doubles();
  std::vector<float> b2(b.size());
  for (size_t j = 0; j < b.size(); ++j) b2[j] = static_cast<float>(b[j] * s[j] + t[j]);
  // The weight is this Dense's own (rewrite_* made it): scaled in place under a new name.
  std::string scaled = w_name;
  if (graph.use_count(w_name) == 1 && w.dtype == DataType::kFloat32) {
    scaled = rename_constant(graph, w_name, dense.name + ".weight");
  } else {
    scaled = add_constant(graph, dense.name + ".weight", float_constant({k, n}));
    const Constant& source = *graph.find_constant(w_name);
    Constant& target = graph.constants.at(scaled);
    for (size_t i = 0; i < static_cast<size_t>(k * n); ++i) {
      store_float(target, i, source.value_at(i));
    }
  }
  Constant& w2 = graph.constants.at(scaled);
  for (size_t i = 0; i < static_cast<size_t>(k * n); ++i) {
    store_float(w2, i, w2.value_at(i) * s[i % static_cast<size_t>(n)]);
  }
  dense.inputs.resize(2);
  dense.inputs[1] = scaled;
  dense.inputs.push_back(add_constant(graph, dense.name + ".bias", Constant::from_floats({n}, b2)));
  dense.outputs = ss.outputs;
  graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(*reader));
  drop_if_unused(graph, w_name);
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
