// Recognizes the decomposed GELU and LayerNorm subgraphs of the exporters and replaces each
// with one op ("Activation" gelu_erf / gelu_tanh, "LayerNorm").
//
// GELU, exact: x * 0.5 * (1 + erf(x / sqrt 2)), in every association of the two products, with
// x / 1.41421 or x * 0.70711 (torch 1.x TorchScript and torch 2.x dynamo decompositions).
// GELU, tanh: 0.5 * x * (1 + tanh(0.79788 * (x + 0.044715 * x^3))), x^3 as Pow(x, 3) or
// x * (x * x). LayerNorm: ReduceMean / Sub / Pow (or Mul) / ReduceMean / Add eps / Sqrt / Div,
// then optionally Mul gamma and Add beta (torch 1.x below opset 17). Softplus with beta and
// threshold (torch 2.x dynamo): s = x [* beta]; Where(Greater(s, threshold), x,
// Softplus(s) [/ beta or * (1 / beta)]), Softplus(s) also as Log(Exp(s) + 1), the comparison also
// as Less(threshold, s).
// Every intermediate must be read only inside the pattern and be no graph output.

#include <algorithm>
#include <cmath>
#include <set>

#include "common/check.h"
#include "ir/passes/pass_utils.h"
#include "ir/passes/passes.h"

namespace mlprt::ir {
namespace {

using passes_detail::infer_ranks;
using passes_detail::single_reader;

class Matcher {
 public:
  explicit Matcher(Graph& graph) : m_graph(graph) {}

  size_t fuse_all() {
    size_t fused = 0;
    for (size_t i = 0; i < m_graph.nodes.size();) {
      const std::string op = m_graph.nodes[i].op;
      bool done = false;
      if (op == "Erf")
        done = fuse_gelu_erf(i);
      else if (op == "Tanh")
        done = fuse_gelu_tanh(i);
      else if (op == "Div")
        done = fuse_layer_norm(i);
      else if (op == "Where")
        done = fuse_softplus_threshold(i);
      if (done) {
        ++fused;
        i = 0;  // indices moved; rescan (graphs are small)
      } else {
        ++i;
      }
    }
    return fused;
  }

 private:
  const Node* producer(const std::string& tensor) const {
    const auto i = m_graph.producer_of(tensor);
    return i ? &m_graph.nodes[*i] : nullptr;
  }
  // The only node reading `tensor` (once), if it has `op`.
  const Node* only_reader(const std::string& tensor, const std::string& op) const {
    const auto i = single_reader(m_graph, tensor);
    if (!i || m_graph.nodes[*i].op != op) return nullptr;
    return &m_graph.nodes[*i];
  }
  bool is_scalar(const std::string& tensor, double value) const {
    const Constant* c = m_graph.find_constant(tensor);
    if (!c || c->num_elements() != 1) return false;
    const double v = c->to_doubles()[0];
    return std::abs(v - value) <= scalar_tolerance() * std::abs(value);
  }
  // A strongly typed model's constants were rounded to its type (2^-11 relative for float16,
  // 2^-8 for bfloat16): a pattern's constants match within that.
  double scalar_tolerance() const {
    switch (m_graph.model_precision) {
      case DataType::kFloat16: return 1e-3;
      case DataType::kBFloat16: return 8e-3;
      default: return 1e-4;
    }
  }
  // For a binary node with `known` as one input, the other input ("" if none).
  static std::string other_input(const Node& node, const std::string& known) {
    if (node.inputs.size() != 2) return {};
    if (node.inputs[0] == known) return node.inputs[1];
    if (node.inputs[1] == known) return node.inputs[0];
    return {};
  }
  // The non-constant input of a binary node whose other input is the scalar `value`.
  std::string input_besides_scalar(const Node& node, double value) const {
    if (node.inputs.size() != 2) return {};
    if (is_scalar(node.inputs[1], value)) return node.inputs[0];
    if (is_scalar(node.inputs[0], value)) return node.inputs[1];
    return {};
  }

  // h = 1 + f(x): matches x * 0.5 * h in any association. Returns the final node's name and
  // appends the tail's nodes to `nodes`.
  const Node* match_half_x_times(const std::string& x, const std::string& h,
                                 std::vector<const Node*>& nodes) const {
    const Node* r = only_reader(h, "Mul");
    if (!r) return nullptr;
    nodes.push_back(r);
    const std::string other = other_input(*r, h);
    if (other == x) {  // (x * h) * 0.5
      const Node* r2 = only_reader(r->outputs[0], "Mul");
      if (!r2 || input_besides_scalar(*r2, 0.5) != r->outputs[0]) return nullptr;
      nodes.push_back(r2);
      return r2;
    }
    if (is_scalar(other, 0.5)) {  // (0.5 * h) * x
      const Node* r2 = only_reader(r->outputs[0], "Mul");
      if (!r2 || other_input(*r2, r->outputs[0]) != x) return nullptr;
      nodes.push_back(r2);
      return r2;
    }
    const Node* q = producer(other);  // (x * 0.5) * h
    if (!q || q->op != "Mul" || input_besides_scalar(*q, 0.5) != x ||
        !single_reader(m_graph, other)) {
      return nullptr;
    }
    nodes.push_back(q);
    return r;
  }

  // 1 + t, with t read only by that Add.
  const Node* match_plus_one(const std::string& t) const {
    const Node* a = only_reader(t, "Add");
    if (!a || !is_scalar(other_input(*a, t), 1.0)) return nullptr;
    return a;
  }

  bool fuse_gelu_erf(size_t index) {
    const Node& erf = m_graph.nodes[index];
    const Node* scale = producer(erf.inputs[0]);
    if (!scale || !single_reader(m_graph, erf.inputs[0])) return false;
    std::string x;
    if (scale->op == "Div" && is_scalar(scale->inputs[1], std::sqrt(2.0))) x = scale->inputs[0];
    if (scale->op == "Mul") x = input_besides_scalar(*scale, std::sqrt(0.5));
    if (x.empty()) return false;
    const Node* plus = match_plus_one(erf.outputs[0]);
    if (!plus) return false;
    std::vector<const Node*> nodes = {scale, &erf, plus};
    const Node* last = match_half_x_times(x, plus->outputs[0], nodes);
    if (!last) return false;
    replace(nodes, last, x, "gelu_erf");
    return true;
  }

  // x^3 as Pow(x, 3), x * (x * x) or (x * x) * x; returns x.
  std::string match_cube(const std::string& tensor, std::vector<const Node*>& nodes) const {
    const Node* p = producer(tensor);
    if (!p || !single_reader(m_graph, tensor)) return {};
    if (p->op == "Pow" && is_scalar(p->inputs[1], 3.0)) {
      nodes.push_back(p);
      return p->inputs[0];
    }
    if (p->op != "Mul") return {};
    for (size_t k = 0; k < 2; ++k) {
      const Node* sq = producer(p->inputs[k]);
      const std::string& x = p->inputs[1 - k];
      if (sq && sq->op == "Mul" && sq->inputs[0] == x && sq->inputs[1] == x &&
          single_reader(m_graph, p->inputs[k])) {
        nodes.push_back(p);
        nodes.push_back(sq);
        return x;
      }
    }
    return {};
  }

  bool fuse_gelu_tanh(size_t index) {
    const Node& tanh = m_graph.nodes[index];
    std::vector<const Node*> nodes = {&tanh};
    const Node* scale = producer(tanh.inputs[0]);
    if (!scale || scale->op != "Mul" || !single_reader(m_graph, tanh.inputs[0])) return false;
    const std::string sum = input_besides_scalar(*scale, std::sqrt(2.0 / M_PI));
    const Node* add = sum.empty() ? nullptr : producer(sum);
    if (!add || add->op != "Add" || !single_reader(m_graph, sum)) return false;
    nodes.push_back(scale);
    nodes.push_back(add);
    std::string x;
    for (size_t k = 0; k < 2 && x.empty(); ++k) {
      const Node* kc = producer(add->inputs[k]);
      if (!kc || kc->op != "Mul" || !single_reader(m_graph, add->inputs[k])) continue;
      const std::string cube = input_besides_scalar(*kc, 0.044715);
      if (cube.empty()) continue;
      std::vector<const Node*> cube_nodes;
      const std::string base = match_cube(cube, cube_nodes);
      if (base.empty() || base != add->inputs[1 - k]) continue;
      x = base;
      nodes.push_back(kc);
      nodes.insert(nodes.end(), cube_nodes.begin(), cube_nodes.end());
    }
    if (x.empty()) return false;
    const Node* plus = match_plus_one(tanh.outputs[0]);
    if (!plus) return false;
    nodes.push_back(plus);
    const Node* last = match_half_x_times(x, plus->outputs[0], nodes);
    if (!last) return false;
    replace(nodes, last, x, "gelu_tanh");
    return true;
  }

  // Trailing axes only: returns the first normalized axis, or nullopt.
  static std::optional<int64_t> trailing_axis(std::vector<int64_t> axes, size_t rank) {
    const auto r = static_cast<int64_t>(rank);
    for (int64_t& a : axes) a = a < 0 ? a + r : a;
    std::sort(axes.begin(), axes.end());
    if (axes.empty()) return std::nullopt;
    for (size_t i = 0; i < axes.size(); ++i) {
      if (axes[i] != r - static_cast<int64_t>(axes.size() - i)) return std::nullopt;
    }
    return axes.front();
  }
  static bool keeps_dims(const Node& n) { return n.get_int("keepdims", 1) != 0; }

  bool fuse_layer_norm(size_t index) {
    const Node& div = m_graph.nodes[index];
    if (div.inputs.size() != 2) return false;
    const Node* sub = producer(div.inputs[0]);
    const Node* sqrt = producer(div.inputs[1]);
    if (!sub || sub->op != "Sub" || !sqrt || sqrt->op != "Sqrt") return false;
    const std::string& x = sub->inputs[0];
    const std::string& d = sub->outputs[0];
    const Node* mean = producer(sub->inputs[1]);
    if (!mean || mean->op != "ReduceMean" || mean->inputs[0] != x || !keeps_dims(*mean) ||
        !single_reader(m_graph, mean->outputs[0])) {
      return false;
    }
    const Node* add_eps = producer(sqrt->inputs[0]);
    if (!add_eps || add_eps->op != "Add" || !single_reader(m_graph, sqrt->inputs[0]) ||
        !single_reader(m_graph, div.inputs[1])) {
      return false;
    }
    std::string var_name;
    double eps = 0.0;
    for (size_t k = 0; k < 2 && var_name.empty(); ++k) {
      const Constant* c = m_graph.find_constant(add_eps->inputs[k]);
      if (c && c->num_elements() == 1) {
        eps = c->to_doubles()[0];
        var_name = add_eps->inputs[1 - k];
      }
    }
    const Node* var = var_name.empty() ? nullptr : producer(var_name);
    if (!var || var->op != "ReduceMean" || !keeps_dims(*var) || !single_reader(m_graph, var_name) ||
        var->get_ints("axes") != mean->get_ints("axes") || var->inputs.size() != 1 ||
        mean->inputs.size() != 1) {
      return false;
    }
    const Node* sq = producer(var->inputs[0]);
    const bool is_square =
        sq && ((sq->op == "Pow" && sq->inputs[0] == d && is_scalar(sq->inputs[1], 2.0)) ||
               (sq->op == "Mul" && sq->inputs[0] == d && sq->inputs[1] == d));
    if (!is_square || !single_reader(m_graph, var->inputs[0]) ||
        m_graph.use_count(d) != (sq->op == "Mul" ? 3u : 2u) ||
        passes_detail::is_graph_output(m_graph, d)) {
      return false;
    }
    const auto ranks = infer_ranks(m_graph);
    const auto rank = ranks.find(x);
    if (rank == ranks.end()) return false;
    const auto axis = trailing_axis(mean->get_ints("axes"), rank->second);
    if (!axis) return false;
    std::vector<const Node*> nodes = {mean, sub, sq, var, add_eps, sqrt, &div};
    const Node* last = &div;
    std::string scale, bias;
    if (const Node* mul = only_reader(div.outputs[0], "Mul")) {
      const std::string g = other_input(*mul, div.outputs[0]);
      if (m_graph.is_constant(g)) {
        scale = g;
        nodes.push_back(mul);
        last = mul;
      }
    }
    if (const Node* add = only_reader(last->outputs[0], "Add")) {
      const std::string b = other_input(*add, last->outputs[0]);
      if (m_graph.is_constant(b)) {
        bias = b;
        nodes.push_back(add);
        last = add;
      }
    }
    Node ln;
    ln.name = last->name;
    ln.op = "LayerNorm";
    ln.inputs = {x, scale, bias};
    while (!ln.inputs.empty() && ln.inputs.back().empty()) ln.inputs.pop_back();
    ln.outputs = last->outputs;
    ln.attributes["axis"] = *axis;
    ln.attributes["epsilon"] = eps;
    replace_with(nodes, last, std::move(ln));
    return true;
  }

  std::optional<double> scalar_value(const std::string& tensor) const {
    const Constant* c = m_graph.find_constant(tensor);
    if (!c || c->num_elements() != 1) return std::nullopt;
    return c->to_doubles()[0];
  }
  static bool close(double a, double b) { return std::abs(a - b) <= 1e-6 * std::abs(b); }

  // softplus(s) as Softplus(s) or Log(Exp(s) + 1); appends its nodes.
  bool match_softplus_of(const std::string& tensor, const std::string& s,
                         std::vector<const Node*>& nodes) const {
    const Node* p = producer(tensor);
    if (!p || !single_reader(m_graph, tensor)) return false;
    if (p->op == "Softplus") {
      nodes.push_back(p);
      return p->inputs[0] == s;
    }
    if (p->op != "Log") return false;
    const Node* add = producer(p->inputs[0]);
    if (!add || add->op != "Add" || !single_reader(m_graph, p->inputs[0])) return false;
    for (size_t k = 0; k < 2; ++k) {
      const Node* e = producer(add->inputs[k]);
      if (e && e->op == "Exp" && e->inputs[0] == s && single_reader(m_graph, add->inputs[k]) &&
          is_scalar(add->inputs[1 - k], 1.0)) {
        nodes.insert(nodes.end(), {p, add, e});
        return true;
      }
    }
    return false;
  }

  bool fuse_softplus_threshold(size_t index) {
    const Node& where = m_graph.nodes[index];
    if (where.inputs.size() != 3) return false;
    const Node* cmp = producer(where.inputs[0]);
    if (!cmp || !single_reader(m_graph, where.inputs[0]) || cmp->inputs.size() != 2) return false;
    std::string s, threshold_name;
    if (cmp->op == "Greater") {
      s = cmp->inputs[0];
      threshold_name = cmp->inputs[1];
    } else if (cmp->op == "Less") {
      s = cmp->inputs[1];
      threshold_name = cmp->inputs[0];
    } else {
      return false;
    }
    const std::optional<double> threshold = scalar_value(threshold_name);
    if (!threshold) return false;
    const std::string& x = where.inputs[1];
    std::vector<const Node*> nodes = {cmp};
    double beta = 1.0;
    if (s != x) {  // s = x * beta, read only by the comparison and the softplus
      const Node* mul = producer(s);
      if (!mul || mul->op != "Mul" || m_graph.use_count(s) != 2 ||
          passes_detail::is_graph_output(m_graph, s)) {
        return false;
      }
      const std::optional<double> b = scalar_value(other_input(*mul, x));
      if (!b || *b == 0.0) return false;
      beta = *b;
      nodes.push_back(mul);
    }
    std::string sp = where.inputs[2];
    if (const Node* scale = producer(sp); scale && (scale->op == "Div" || scale->op == "Mul")) {
      // softplus(s) / beta or softplus(s) * (1 / beta)
      if (!single_reader(m_graph, sp) || scale->inputs.size() != 2) return false;
      const bool div = scale->op == "Div";
      const size_t ki = !div && scalar_value(scale->inputs[0]) ? 0 : 1;
      const std::optional<double> k = scalar_value(scale->inputs[ki]);
      if (!k || !close(div ? *k : 1.0 / *k, beta)) return false;
      sp = scale->inputs[1 - ki];
      nodes.push_back(scale);
    } else if (beta != 1.0) {
      return false;
    }
    if (!match_softplus_of(sp, s, nodes)) return false;
    nodes.push_back(&where);
    Node act;
    act.name = where.name;
    act.op = "Activation";
    act.inputs = {x};
    act.outputs = where.outputs;
    act.attributes["kind"] = std::string("softplus_threshold");
    act.attributes["alpha"] = beta;
    act.attributes["beta"] = *threshold;
    replace_with(nodes, &where, std::move(act));
    return true;
  }

  void replace(const std::vector<const Node*>& nodes, const Node* last, const std::string& x,
               const std::string& kind) {
    Node act;
    act.name = last->name;
    act.op = "Activation";
    act.inputs = {x};
    act.outputs = last->outputs;
    act.attributes["kind"] = kind;
    act.attributes["alpha"] = 0.0;
    act.attributes["beta"] = 0.0;
    replace_with(nodes, last, std::move(act));
  }

  // Puts `fused` where `last` is (its inputs are all produced earlier, as `last`'s were) and
  // drops the other matched nodes.
  void replace_with(const std::vector<const Node*>& nodes, const Node* last, Node fused) {
    std::set<const Node*> drop(nodes.begin(), nodes.end());
    std::vector<Node> kept;
    kept.reserve(m_graph.nodes.size());
    for (Node& node : m_graph.nodes) {
      if (&node == last) {
        kept.push_back(std::move(fused));
      } else if (!drop.count(&node)) {
        kept.push_back(std::move(node));
      }
    }
    m_graph.nodes = std::move(kept);
  }

  Graph& m_graph;
};

}  // namespace

Status fuse_patterns(Graph& graph) {
  Matcher(graph).fuse_all();
  return Status::ok();
}

}  // namespace mlprt::ir
