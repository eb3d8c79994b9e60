// Build-time folding of the shape computations exporters emit (Shape -> Gather -> Unsqueeze ->
// Concat -> Reshape, Slice of a Shape, ...).
//
// Shapes and small integer values are propagated symbolically: a dim is a number or a symbol
// (the input's dim_param, or "<input>:<axis>" for an unnamed dynamic dim); equal symbols are
// equal sizes. Then:
//  * an integer tensor whose value is fully known becomes a constant (fold_constants and
//    constant_shapes_to_attributes take it from there);
//  * a Reshape whose target is only known symbolically gets a constant target that is
//    equivalent for every size of the symbols: known entries as numbers, an entry equal to the
//    data input's dim at the same position as 0 ("copy"), and one remaining entry as -1.
// We chose this over a runtime shape computation: the plan keeps constant layer attributes,
// and every pattern of the supported exporters for a dynamic batch reduces to it. A target
// that cannot be written that way stays a Reshape with a computed shape input, which
// check_layer_ops reports naming the node.

#include <algorithm>
#include <set>

#include "common/check.h"
#include "ir/passes/pass_utils.h"
#include "ir/passes/passes.h"
#include "ir/split.h"

namespace mlprt::ir {
namespace {

using passes_detail::describe;
using passes_detail::is_graph_output;

struct SymValue {
  Dims dims;               // rank 0 or 1
  std::vector<Dim> items;  // one per element
};

bool known(const Dim& d) { return d.is_static(); }
bool same(const Dim& a, const Dim& b) {
  if (a.is_static() || b.is_static()) return a.value == b.value;
  return !a.symbol.empty() && a.symbol == b.symbol;
}
const Dim kUnknown{-1, {}};

class ShapeFolder {
 public:
  explicit ShapeFolder(Graph& graph) : m_graph(graph) {}

  Status run() {
    for (const TensorInfo& in : m_graph.inputs) {
      Shape s = in.shape;
      for (size_t i = 0; i < s.size(); ++i) {
        if (!s[i].is_static() && s[i].symbol.empty())
          s[i].symbol = in.name + ":" + std::to_string(i);
      }
      m_shapes[in.name] = s;
    }
    for (const auto& [name, c] : m_graph.constants) {
      m_shapes[name] = from_dims(c.dims);
      if (c.dims.size() <= 1 && (c.dtype == DataType::kInt64 || c.dtype == DataType::kInt32)) {
        SymValue v{c.dims, {}};
        for (int64_t x : c.to_int64s()) v.items.push_back(Dim{x, {}});
        m_values[name] = v;
      }
    }
    for (Node& node : m_graph.nodes) visit(node);
    replace_known_values();
    MLPRT_RETURN_IF_ERROR(rewrite_splits());
    for (Node& node : m_graph.nodes) {
      if (node.op == "Reshape") rewrite_reshape(node);
    }
    return Status::ok();
  }

 private:
  const Shape* shape(const Node& node, size_t i) const {
    if (i >= node.inputs.size() || node.inputs[i].empty()) return nullptr;
    auto it = m_shapes.find(node.inputs[i]);
    return it == m_shapes.end() ? nullptr : &it->second;
  }
  const SymValue* value(const Node& node, size_t i) const {
    if (i >= node.inputs.size() || node.inputs[i].empty()) return nullptr;
    auto it = m_values.find(node.inputs[i]);
    return it == m_values.end() ? nullptr : &it->second;
  }
  // Axes from the attribute or a constant input.
  std::optional<std::vector<int64_t>> axes(const Node& node, size_t index) const {
    if (node.has_attribute("axes")) return node.get_ints("axes");
    if (index >= node.inputs.size()) return std::vector<int64_t>{};
    const SymValue* v = value(node, index);
    if (!v) return std::nullopt;
    std::vector<int64_t> out;
    for (const Dim& d : v->items) {
      if (!known(d)) return std::nullopt;
      out.push_back(d.value);
    }
    return out;
  }
  static std::optional<size_t> norm(int64_t axis, size_t rank) {
    const auto r = static_cast<int64_t>(rank);
    if (axis < -r || axis >= r) return std::nullopt;
    return static_cast<size_t>(axis < 0 ? axis + r : axis);
  }

  static Dim broadcast(const Dim& a, const Dim& b) {
    if (known(a) && a.value == 1) return b;
    if (known(b) && b.value == 1) return a;
    if (known(a)) return a;
    if (known(b)) return b;
    return same(a, b) ? a : kUnknown;
  }
  static Dim combine(const std::string& op, const Dim& a, const Dim& b) {
    if (!known(a) || !known(b)) {
      if (op == "Mul" && known(b) && b.value == 1) return a;
      if (op == "Mul" && known(a) && a.value == 1) return b;
      return kUnknown;
    }
    // Past int64 the value is no dimension: unknown, and the shape check refuses the model.
    int64_t v = 0;
    if (op == "Add") return __builtin_add_overflow(a.value, b.value, &v) ? kUnknown : Dim{v, {}};
    if (op == "Sub") return __builtin_sub_overflow(a.value, b.value, &v) ? kUnknown : Dim{v, {}};
    if (op == "Mul") return __builtin_mul_overflow(a.value, b.value, &v) ? kUnknown : Dim{v, {}};
    if (op == "Div" && b.value != 0 && !(b.value == -1 && a.value == INT64_MIN)) {
      return Dim{a.value / b.value, {}};
    }
    return kUnknown;
  }

  std::optional<Shape> infer_shape(const Node& node) const {
    const std::string& op = node.op;
    const Shape* s0 = shape(node, 0);
    static const std::set<std::string, std::less<>> kSameShape = {"Relu",
                                                                  "LeakyRelu",
                                                                  "Sigmoid",
                                                                  "Tanh",
                                                                  "Elu",
                                                                  "Selu",
                                                                  "HardSigmoid",
                                                                  "HardSwish",
                                                                  "Softplus",
                                                                  "Gelu",
                                                                  "Erf",
                                                                  "Sqrt",
                                                                  "Exp",
                                                                  "Log",
                                                                  "Neg",
                                                                  "Abs",
                                                                  "Reciprocal",
                                                                  "Clip",
                                                                  "Softmax",
                                                                  "LayerNormalization",
                                                                  "BatchNormalization",
                                                                  "Cast",
                                                                  "Identity",
                                                                  "Dropout"};
    if (kSameShape.count(op)) return s0 ? std::optional<Shape>(*s0) : std::nullopt;
    if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Pow") {
      const Shape* s1 = shape(node, 1);
      if (!s0 || !s1) return std::nullopt;
      const size_t rank = std::max(s0->size(), s1->size());
      Shape out(rank);
      for (size_t i = 0; i < rank; ++i) {
        const Dim a = i < rank - s0->size() ? Dim{1, {}} : (*s0)[i - (rank - s0->size())];
        const Dim b = i < rank - s1->size() ? Dim{1, {}} : (*s1)[i - (rank - s1->size())];
        out[i] = broadcast(a, b);
      }
      return out;
    }
    if (op == "MatMul" || op == "Gemm") {
      const Shape* s1 = shape(node, 1);
      if (!s0 || !s1 || s1->size() != 2 || s0->empty()) return std::nullopt;
      if (op == "Gemm") {
        if (s0->size() != 2) return std::nullopt;
        const Dim m = node.get_int("transA", 0) ? (*s0)[1] : (*s0)[0];
        const Dim n = node.get_int("transB", 0) ? (*s1)[0] : (*s1)[1];
        return Shape{m, n};
      }
      if (s0->size() == 1) return Shape{(*s1)[1]};
      Shape out = *s0;
      out.back() = (*s1)[1];
      return out;
    }
    if (op == "Flatten") {
      if (!s0) return std::nullopt;
      const auto axis = node.get_int("axis", 1) < 0
                            ? node.get_int("axis", 1) + static_cast<int64_t>(s0->size())
                            : node.get_int("axis", 1);
      auto fold = [&](size_t b, size_t e) {
        if (e - b == 1) return (*s0)[b];
        Dim p{1, {}};
        for (size_t i = b; i < e; ++i) p = combine("Mul", p, (*s0)[i]);
        return p;
      };
      if (axis < 0 || axis > static_cast<int64_t>(s0->size())) return std::nullopt;
      return Shape{fold(0, static_cast<size_t>(axis)), fold(static_cast<size_t>(axis), s0->size())};
    }
    if (op == "Transpose") {
      if (!s0) return std::nullopt;
      std::vector<int64_t> perm = node.get_ints("perm");
      if (perm.empty()) {
        for (size_t i = s0->size(); i-- > 0;) perm.push_back(static_cast<int64_t>(i));
      }
      Shape out;
      for (int64_t p : perm) {
        if (p < 0 || static_cast<size_t>(p) >= s0->size()) return std::nullopt;
        out.push_back((*s0)[static_cast<size_t>(p)]);
      }
      return out;
    }
    if (op == "Squeeze" || op == "Unsqueeze") {
      const auto ax = axes(node, 1);
      if (!s0 || !ax) return std::nullopt;
      if (op == "Squeeze") {
        if (ax->empty()) return std::nullopt;  // depends on which dims are 1
        std::vector<bool> drop(s0->size(), false);
        for (int64_t a : *ax) {
          const auto i = norm(a, s0->size());
          if (!i) return std::nullopt;
          drop[*i] = true;
        }
        Shape out;
        for (size_t i = 0; i < s0->size(); ++i) {
          if (!drop[i]) out.push_back((*s0)[i]);
        }
        return out;
      }
      const size_t rank = s0->size() + ax->size();
      std::vector<bool> added(rank, false);
      for (int64_t a : *ax) {
        const auto i = norm(a, rank);
        if (!i) return std::nullopt;
        added[*i] = true;
      }
      Shape out;
      size_t next = 0;
      for (size_t i = 0; i < rank; ++i) {
        if (added[i]) {
          out.push_back(Dim{1, {}});
        } else if (next < s0->size()) {
          out.push_back((*s0)[next++]);
        } else {
          return std::nullopt;
        }
      }
      return out;
    }
    if (op == "Reshape") {
      const SymValue* target = value(node, 1);
      if (!s0 || !target || node.get_int("allowzero", 0) != 0) return std::nullopt;
      Shape out;
      for (size_t i = 0; i < target->items.size(); ++i) {
        const Dim& t = target->items[i];
        if (known(t) && t.value == 0) {
          if (i >= s0->size()) return std::nullopt;
          out.push_back((*s0)[i]);
        } else if (known(t) && t.value == -1) {
          out.push_back(kUnknown);
        } else {
          out.push_back(t);
        }
      }
      return out;
    }
    if (op == "Shape") return Shape{s0 ? Dim{static_cast<int64_t>(s0->size()), {}} : kUnknown};
    if (op == "ConstantOfShape") {
      const SymValue* v = value(node, 0);
      if (!v) return std::nullopt;
      return Shape(v->items.begin(), v->items.end());
    }
    return std::nullopt;
  }

  std::optional<SymValue> infer_value(const Node& node) const {
    const std::string& op = node.op;
    const SymValue* v0 = value(node, 0);
    if (op == "Shape") {
      const Shape* s0 = shape(node, 0);
      if (!s0) return std::nullopt;
      const auto rank = static_cast<int64_t>(s0->size());
      int64_t start = node.get_int("start", 0), end = node.get_int("end", rank);
      start = std::clamp<int64_t>(start < 0 ? start + rank : start, 0, rank);
      end = std::clamp<int64_t>(end < 0 ? end + rank : end, 0, rank);
      SymValue v{{std::max<int64_t>(0, end - start)}, {}};
      for (int64_t i = start; i < end; ++i) v.items.push_back((*s0)[static_cast<size_t>(i)]);
      return v;
    }
    if (!v0) return std::nullopt;
    if (op == "Cast") {
      const int64_t to = node.get_int("to", 1);
      if (to != 6 && to != 7) return std::nullopt;  // int32, int64
      return *v0;
    }
    if (op == "Identity") return *v0;
    if (op == "Gather") {
      const SymValue* idx = value(node, 1);
      if (!idx || node.get_int("axis", 0) != 0 || v0->dims.size() != 1) return std::nullopt;
      // A constant index is read as its integers: a negative one (-1: the last dim, as
      // h.chunk(2, dim=-1) exports) would read as an unknown Dim.
      const Constant* constant = m_graph.find_constant(node.inputs[1]);
      std::vector<int64_t> indices;
      if (constant) {
        indices = constant->to_int64s();
      } else {
        for (const Dim& i : idx->items) {
          if (!known(i)) return std::nullopt;
          indices.push_back(i.value);
        }
      }
      SymValue v{idx->dims, {}};
      for (int64_t i : indices) {
        const auto n = static_cast<int64_t>(v0->items.size());
        if (i < -n || i >= n) return std::nullopt;
        v.items.push_back(v0->items[static_cast<size_t>(i < 0 ? i + n : i)]);
      }
      return v;
    }
    if (op == "Unsqueeze") {
      if (!v0->dims.empty()) return std::nullopt;
      return SymValue{{1}, v0->items};
    }
    if (op == "Squeeze") {
      if (v0->dims != Dims{1}) return std::nullopt;
      return SymValue{{}, v0->items};
    }
    if (op == "Concat") {
      SymValue v{{0}, {}};
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        const SymValue* p = value(node, i);
        if (!p || p->dims.size() != 1) return std::nullopt;
        v.items.insert(v.items.end(), p->items.begin(), p->items.end());
      }
      v.dims[0] = static_cast<int64_t>(v.items.size());
      return v;
    }
    if (op == "Slice") {
      if (v0->dims.size() != 1 || node.has_attribute("starts")) return std::nullopt;
      const SymValue* st = value(node, 1);
      const SymValue* en = value(node, 2);
      const SymValue* ax = value(node, 3);
      const SymValue* sp = value(node, 4);
      if (!st || !en || st->items.size() != 1 || en->items.size() != 1) return std::nullopt;
      if ((ax && (ax->items.size() != 1 || !known(ax->items[0]) ||
                  (ax->items[0].value != 0 && ax->items[0].value != -1))) ||
          (sp && (sp->items.size() != 1 || !known(sp->items[0]) || sp->items[0].value != 1)) ||
          !known(st->items[0]) || !known(en->items[0])) {
        return std::nullopt;
      }
      const auto n = static_cast<int64_t>(v0->items.size());
      int64_t b = st->items[0].value, e = en->items[0].value;
      b = std::clamp<int64_t>(b < 0 ? b + n : b, 0, n);
      e = std::clamp<int64_t>(e < 0 ? e + n : e, 0, n);
      SymValue v{{std::max<int64_t>(0, e - b)}, {}};
      for (int64_t i = b; i < e; ++i) v.items.push_back(v0->items[static_cast<size_t>(i)]);
      return v;
    }
    if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
      const SymValue* v1 = value(node, 1);
      if (!v1) return std::nullopt;
      const size_t n = std::max(v0->items.size(), v1->items.size());
      if ((v0->items.size() != n && v0->items.size() != 1) ||
          (v1->items.size() != n && v1->items.size() != 1)) {
        return std::nullopt;
      }
      SymValue v{v0->dims.size() >= v1->dims.size() ? v0->dims : v1->dims, {}};
      for (size_t i = 0; i < n; ++i) {
        v.items.push_back(combine(op, v0->items[v0->items.size() == 1 ? 0 : i],
                                  v1->items[v1->items.size() == 1 ? 0 : i]));
      }
      return v;
    }
    return std::nullopt;
  }

  // Split's part sizes where they are known now (the axis' size from the symbolic shape).
  Result<std::vector<int64_t>> split_parts(const Node& node) const {
    int64_t axis_size = -1;
    if (const Shape* s0 = shape(node, 0)) {
      if (const auto axis = norm(node.get_int("axis", 0), s0->size())) {
        const Dim& d = (*s0)[*axis];
        if (known(d)) axis_size = d.value;
      } else {
        return make_error(StatusCode::kInvalidArgument, describe(m_graph, node), ": axis ",
                          node.get_int("axis", 0), " is out of range for input '",
                          node.inputs[0], "' of rank ", s0->size());
      }
    }
    std::optional<std::vector<int64_t>> given;
    if (const SymValue* v = value(node, 1)) {
      given.emplace();
      for (const Dim& d : v->items) {
        if (!known(d)) {
          given.reset();
          break;
        }
        given->push_back(d.value);
      }
    }
    auto sizes = split_sizes(node, axis_size, given);
    if (!sizes.is_ok() && !m_graph.source.empty()) {
      return sizes.status().with_context(m_graph.source);
    }
    return sizes;
  }

  // Each output's shape: the input's with the axis cut to the part's size.
  void visit_split(const Node& node) {
    const Shape* s0 = shape(node, 0);
    auto sizes = split_parts(node);
    if (!s0 || !sizes.is_ok()) return;
    const auto axis = norm(node.get_int("axis", 0), s0->size());
    for (size_t i = 0; i < node.outputs.size() && i < sizes->size(); ++i) {
      Shape out = *s0;
      out[*axis] = Dim{(*sizes)[i], {}};
      m_shapes[node.outputs[i]] = out;
    }
  }

  // Every Split -> one Slice per output; sizes that are still unknown are an error naming it.
  Status rewrite_splits() {
    std::set<std::string> names;
    for (const Node& node : m_graph.nodes) names.insert(node.name);
    std::vector<Node> nodes;
    for (Node& node : m_graph.nodes) {
      if (node.op != "Split") {
        nodes.push_back(std::move(node));
        continue;
      }
      MLPRT_ASSIGN_OR_RETURN(const std::vector<int64_t> sizes, split_parts(node));
      for (Node& slice : split_to_slices(node, sizes)) {
        std::string name = slice.name;
        for (int k = 1; names.count(name); ++k) name = slice.name + "_" + std::to_string(k);
        names.insert(name);
        slice.name = name;
        nodes.push_back(std::move(slice));
      }
    }
    m_graph.nodes = std::move(nodes);
    return Status::ok();
  }

  void visit(const Node& node) {
    if (node.op == "Split") return visit_split(node);
    if (node.outputs.empty() || node.outputs[0].empty()) return;
    if (auto s = infer_shape(node)) m_shapes[node.outputs[0]] = *s;
    if (auto v = infer_value(node)) {
      m_values[node.outputs[0]] = *v;
      if (!m_shapes.count(node.outputs[0])) m_shapes[node.outputs[0]] = from_dims(v->dims);
    }
  }

  // Integer tensors whose value is fully known become constants.
  void replace_known_values() {
    std::vector<Node> kept;
    for (Node& node : m_graph.nodes) {
      const std::string out = node.outputs.empty() ? std::string() : node.outputs[0];
      auto it = m_values.find(out);
      const bool all_known = it != m_values.end() && !m_graph.is_constant(out) &&
                             !is_graph_output(m_graph, out) && node.outputs.size() == 1 &&
                             std::all_of(it->second.items.begin(), it->second.items.end(), known);
      if (!all_known) {
        kept.push_back(std::move(node));
        continue;
      }
      std::vector<int64_t> v;
      for (const Dim& d : it->second.items) v.push_back(d.value);
      m_graph.constants[out] = Constant::from_int64s(it->second.dims, v);
    }
    m_graph.nodes = std::move(kept);
  }

  void rewrite_reshape(Node& node) {
    if (node.inputs.size() < 2 || m_graph.is_constant(node.inputs[1])) return;
    const SymValue* target = value(node, 1);
    const Shape* in = shape(node, 0);
    if (!target || !in || target->dims.size() != 1) return;
    const bool allow_zero = node.get_int("allowzero", 0) != 0;
    std::vector<int64_t> out;
    int unresolved = 0;
    bool has_minus_one = false;
    for (size_t i = 0; i < target->items.size(); ++i) {
      const Dim& t = target->items[i];
      if (known(t)) {
        if (t.value == 0 && allow_zero) return;  // a literal 0 cannot be told from "copy"
        has_minus_one = has_minus_one || t.value == -1;
        out.push_back(t.value);
      } else if (i < in->size() && same(t, (*in)[i])) {
        out.push_back(0);
      } else {
        ++unresolved;
        out.push_back(-1);
      }
    }
    if (unresolved > 1 || (unresolved == 1 && has_minus_one)) return;
    node.attributes["shape"] = out;
    node.attributes["allowzero"] = int64_t{0};
    node.inputs.resize(1);
  }

  Graph& m_graph;
  std::map<std::string, Shape> m_shapes;
  std::map<std::string, SymValue> m_values;
};

}  // namespace

Status fold_shape_computations(Graph& graph) { return ShapeFolder(graph).run(); }

}  // namespace mlprt::ir
