#include "ir/shape_inference.h"

#include <algorithm>
#include <set>

#include "common/check.h"
#include "ir/data_ops.h"

namespace mlprt::ir {
namespace {

std::string describe(const Node& node) { return "node '" + node.name + "' (" + node.op + ")"; }

// Rows x features of a matrix product; X is [..., K] (or [K, M] with transpose_x), W is [K, N].
Result<Dims> matmul_shape(const Node& node, const Dims& x, const Dims& w, bool transpose_x) {
  if (w.size() != 2) {
    return make_error(StatusCode::kUnsupported, describe(node), ": weight has shape ",
                      to_string(w), "; only 2-D weights are supported");
  }
  if (x.empty()) {
    return make_error(StatusCode::kInvalidArgument, describe(node),
                      ": input is a scalar; a matrix product needs at least 1 dimension");
  }
  if (transpose_x && x.size() != 2) {
    return make_error(StatusCode::kUnsupported, describe(node), ": transposed input of shape ",
                      to_string(x), " must be 2-D");
  }
  const int64_t k = transpose_x ? x[0] : x.back();
  if (k != w[0]) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": input '", node.inputs[0],
                      "' has shape ", to_string(x), " but the weight '", node.inputs[1],
                      "' of shape ", to_string(w), " expects ", w[0], " features");
  }
  if (transpose_x) return Dims{x[1], w[1]};
  Dims out = x;
  if (x.size() == 1) return Dims{w[1]};
  out.back() = w[1];
  return out;
}

Result<Dims> reshape_shape(const Node& node, const Dims& in, const std::vector<int64_t>& target,
                           bool allow_zero) {
  MLPRT_ASSIGN_OR_RETURN(int64_t total, volume(in));
  Dims out(target.size());
  int64_t known = 1;
  int infer_at = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t t = target[i];
    if (t == 0 && !allow_zero) {
      if (i >= in.size()) {
        return make_error(StatusCode::kInvalidArgument, describe(node), ": target shape entry ",
                          i, " is 0 (copy the input's dim) but the input ", to_string(in),
                          " has only ", in.size(), " dims");
      }
      t = in[i];
    }
    if (t == -1) {
      if (infer_at >= 0) {
        return make_error(StatusCode::kInvalidArgument, describe(node),
                          ": target shape has more than one -1");
      }
      infer_at = static_cast<int>(i);
      continue;
    }
    if (t < -1) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": target shape entry ", i,
                        " is ", t, "; allowed: >= 0 or -1");
    }
    out[i] = t;
    // Checked: a target from a plan file may hold any int64 (found by the plan fuzzer).
    if (__builtin_mul_overflow(known, t, &known)) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": target shape ",
                        to_string(target), " has more elements than an int64 can count");
    }
  }
  if (infer_at >= 0) {
    if (known == 0 || total % known != 0) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": cannot reshape ",
                        to_string(in), " (", total, " elements) with -1 in the target");
    }
    out[infer_at] = total / known;
  } else if (known != total) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": cannot reshape ",
                      to_string(in), " (", total, " elements) to ", to_string(out), " (", known,
                      " elements)");
  }
  return out;
}

Result<Dims> flatten_shape(const Node& node, const Dims& in) {
  int64_t axis = node.get_int("axis", 1);
  const auto rank = static_cast<int64_t>(in.size());
  if (axis < 0) axis += rank;
  if (axis < 0 || axis > rank) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": axis ",
                      node.get_int("axis", 1), " is out of range for input of rank ", rank);
  }
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < rank; ++i) (i < axis ? outer : inner) *= in[i];
  return Dims{outer, inner};
}

Result<Dims> squeeze_shape(const Node& node, const Dims& in) {
  const std::vector<int64_t> axes = node.get_ints("axes");
  const bool un = node.op == "Unsqueeze";
  const size_t rank = un ? in.size() + axes.size() : in.size();
  std::vector<bool> marked(rank, false);
  for (int64_t a : axes) {
    const auto r = static_cast<int64_t>(rank);
    if (a < -r || a >= r || marked[static_cast<size_t>(a < 0 ? a + r : a)]) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": axis ", a,
                        " is out of range or repeated for ", un ? "output" : "input",
                        " rank ", rank);
    }
    marked[static_cast<size_t>(a < 0 ? a + r : a)] = true;
  }
  Dims out;
  if (un) {
    size_t next = 0;
    for (size_t i = 0; i < rank; ++i) out.push_back(marked[i] ? 1 : in[next++]);
    return out;
  }
  for (size_t i = 0; i < rank; ++i) {
    if (marked[i] && in[i] != 1) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": cannot squeeze axis ",
                        i, " of shape ", to_string(in), " (size is not 1)");
    }
    if (!(marked[i] || (axes.empty() && in[i] == 1))) out.push_back(in[i]);
  }
  return out;
}

Result<Dims> infer_node(const Graph& graph, const Node& node, const std::vector<Dims>& in) {
  const std::string& op = node.op;
  auto need = [&](size_t n) -> Status {
    if (in.size() < n) {
      return make_error(StatusCode::kInvalidArgument, describe(node), " needs ", n,
                        " inputs, has ", in.size());
    }
    return Status::ok();
  };
  static const std::set<std::string, std::less<>> kSameShape = {
      "Relu", "Identity", "Dropout", "Activation", "LeakyRelu", "Sigmoid", "Tanh", "Elu",
      "Selu", "HardSigmoid", "HardSwish", "Softplus", "Gelu", "Erf", "Sqrt", "Clip", "Cast",
      "BatchNormalization", "Exp", "Log", "Neg", "Abs", "Reciprocal"};
  if (kSameShape.count(op)) {
    MLPRT_RETURN_IF_ERROR(need(1));
    return in[0];
  }
  if (op == "Softmax" || op == "LayerNorm" || op == "LayerNormalization" || op == "ScaleShift") {
    MLPRT_RETURN_IF_ERROR(need(1));
    const auto rank = static_cast<int64_t>(in[0].size());
    const int64_t axis = node.get_int("axis", op == "ScaleShift" ? 1 : -1);
    if (axis < -rank || axis >= rank) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": axis ", axis,
                        " is out of range for input of shape ", to_string(in[0]));
    }
    if (op == "ScaleShift" && in.size() > 1 && volume(in[1]).is_ok() &&
        *volume(in[1]) != in[0][static_cast<size_t>(axis < 0 ? axis + rank : axis)]) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": input of shape ",
                        to_string(in[0]), " has not ", *volume(in[1]), " channels at axis ",
                        axis);
    }
    return in[0];
  }
  if (op == "Squeeze" || op == "Unsqueeze") {
    MLPRT_RETURN_IF_ERROR(need(1));
    return squeeze_shape(node, in[0]);
  }
  if (op == "Add" || op == "Binary" || op == "Sub" || op == "Mul" || op == "Div" ||
      op == "Pow" || op == "Greater" || op == "Less" || op == "Equal" ||
      op == "GreaterOrEqual" || op == "LessOrEqual") {
    MLPRT_RETURN_IF_ERROR(need(2));
    return broadcast_dims(node, in[0], in[1]);
  }
  if (op == "Where") {
    MLPRT_RETURN_IF_ERROR(need(3));
    MLPRT_ASSIGN_OR_RETURN(Dims cx, broadcast_dims(node, in[0], in[1]));
    return broadcast_dims(node, cx, in[2]);
  }
  if (op == "Expand") {
    MLPRT_RETURN_IF_ERROR(need(2));
    const Constant* target = graph.find_constant(node.inputs[1]);
    if (!target) {
      return make_error(StatusCode::kUnsupported, describe(node),
                        ": the target shape must be a constant");
    }
    const std::vector<int64_t> dims = target->to_int64s();
    for (int64_t d : dims) {
      if (d < 0) {
        return make_error(StatusCode::kInvalidArgument, describe(node), ": target shape ",
                          to_string(dims), " has a negative dim");
      }
    }
    return broadcast_dims(node, in[0], dims);
  }
  if (op == "Dense") {
    MLPRT_RETURN_IF_ERROR(need(2));
    return matmul_shape(node, in[0], in[1], node.get_int("transpose_x", 0) != 0);
  }
  if (op == "MatMul") {
    MLPRT_RETURN_IF_ERROR(need(2));
    MLPRT_ASSIGN_OR_RETURN(const MatMulShape s, matmul_layer_shape(node, in[0], in[1]));
    return s.out;
  }
  if (op == "Transpose" || (op == "Slice" && node.inputs.size() == 1)) {
    MLPRT_RETURN_IF_ERROR(need(1));
    MLPRT_ASSIGN_OR_RETURN(const StridedCopy copy, strided_copy_of(node, in[0]));
    return copy.out;
  }
  if (op == "ReduceMean" && node.inputs.size() == 1) {
    MLPRT_RETURN_IF_ERROR(need(1));
    return reduce_mean_shape(node, in[0]);
  }
  if (op == "Gemm") {
    MLPRT_RETURN_IF_ERROR(need(2));
    if (in[0].size() != 2 || in[1].size() != 2) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": inputs ",
                        to_string(in[0]), " and ", to_string(in[1]), " must both be 2-D");
    }
    Dims w = in[1];
    if (node.get_int("transB", 0)) std::swap(w[0], w[1]);
    MLPRT_ASSIGN_OR_RETURN(Dims y, matmul_shape(node, in[0], w, node.get_int("transA", 0) != 0));
    if (in.size() > 2 && !node.inputs[2].empty()) {
      MLPRT_ASSIGN_OR_RETURN(Dims c, broadcast_dims(node, y, in[2]));
      if (c != y) {
        return make_error(StatusCode::kInvalidArgument, describe(node), ": C of shape ",
                          to_string(in[2]), " does not broadcast to the output ", to_string(y));
      }
    }
    return y;
  }
  if (op == "Reshape") {
    MLPRT_RETURN_IF_ERROR(need(1));
    std::vector<int64_t> target;
    if (node.has_attribute("shape")) {
      target = node.get_ints("shape");
    } else if (node.inputs.size() > 1 && graph.is_constant(node.inputs[1])) {
      target = graph.find_constant(node.inputs[1])->to_int64s();
    } else {
      return make_error(StatusCode::kUnsupported, describe(node),
                        ": the target shape must be a constant");
    }
    return reshape_shape(node, in[0], target, node.get_int("allowzero", 0) != 0);
  }
  if (op == "Flatten") {
    MLPRT_RETURN_IF_ERROR(need(1));
    return flatten_shape(node, in[0]);
  }
  return make_error(StatusCode::kUnsupported, describe(node),
                    ": no shape inference for this op");
}

}  // namespace

Result<Dims> broadcast_dims(const Node& node, const Dims& a, const Dims& b) {
  const size_t rank = std::max(a.size(), b.size());
  Dims out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": shapes ", to_string(a),
                        " and ", to_string(b), " cannot be broadcast together");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

size_t matmul_output_rank(size_t r0, size_t r1) {
  if (r0 == 1 && r1 == 1) return 0;
  if (r0 == 1) return r1 - 1;
  if (r1 == 1) return r0 - 1;
  return std::max(r0, r1);
}

Result<ShapeMap> infer_shapes(const Graph& graph, const ShapeMap& input_shapes) {
  ShapeMap shapes;
  for (const TensorInfo& input : graph.inputs) {
    auto it = input_shapes.find(input.name);
    if (it == input_shapes.end()) {
      return make_error(StatusCode::kInvalidArgument, "no shape given for input '", input.name,
                        "'");
    }
    const Dims& dims = it->second;
    if (dims.size() != input.shape.size()) {
      return make_error(StatusCode::kInvalidArgument, "input '", input.name, "' has rank ",
                        input.shape.size(), " (", to_string(input.shape), ") but shape ",
                        to_string(dims), " was given");
    }
    for (size_t i = 0; i < dims.size(); ++i) {
      if (dims[i] < 0 || (input.shape[i].is_static() && dims[i] != input.shape[i].value)) {
        return make_error(StatusCode::kInvalidArgument, "input '", input.name, "' has shape ",
                          to_string(input.shape), "; shape ", to_string(dims),
                          " does not match it at dimension ", i);
      }
    }
    shapes[input.name] = dims;
  }
  for (const auto& [name, constant] : graph.constants) shapes[name] = constant.dims;
  for (const Node& node : graph.nodes) {
    std::vector<Dims> in;
    for (const std::string& name : node.inputs) {
      if (name.empty()) {
        in.emplace_back();
        continue;
      }
      auto it = shapes.find(name);
      if (it == shapes.end()) {
        return make_error(StatusCode::kInvalidArgument, describe(node), ": input '", name,
                          "' is produced by no earlier node, graph input or initializer");
      }
      in.push_back(it->second);
    }
    MLPRT_ASSIGN_OR_RETURN(Dims out, infer_node(graph, node, in));
    MLPRT_RETURN_IF_ERROR(volume(out).status().with_context(describe(node)));
    for (const std::string& name : node.outputs) {
      if (!name.empty()) shapes[name] = out;
    }
  }
  for (const TensorInfo& output : graph.outputs) {
    if (!shapes.count(output.name)) {
      return make_error(StatusCode::kInvalidArgument, "graph output '", output.name,
                        "' is produced by no node");
    }
  }
  return shapes;
}

}  // namespace mlprt::ir
