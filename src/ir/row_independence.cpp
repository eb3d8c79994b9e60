#include "ir/row_independence.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "ir/data_ops.h"

namespace mlprt::ir {
namespace {

// Two batch sizes unlikely to equal a model's static dims; a shape rule that holds at both is
// taken to hold at every size (each checked op's output dims are affine in the batch).
constexpr int64_t kBatchA = 5;
constexpr int64_t kBatchB = 7;

RowIndependence mixes(const Node& node, const std::string& why) {
  return {false, node.name, "layer '" + node.name + "' (" + node.op + ") " + why};
}

int64_t normalized_axis(int64_t axis, size_t rank) {
  return axis < 0 ? axis + static_cast<int64_t>(rank) : axis;
}

// Rules that do not depend on shapes: which ops and axes keep rows apart.
RowIndependence check_op(const Node& node, const std::set<std::string>& batched,
                         const ShapeMap& shapes) {
  const auto is_batched = [&](size_t i) {
    return i < node.inputs.size() && batched.count(node.inputs[i]) != 0;
  };
  const std::string& op = node.op;
  const size_t rank = shapes.count(node.inputs[0]) ? shapes.at(node.inputs[0]).size() : 0;
  if (op == "Relu" || op == "Activation") return {true, "", ""};
  if (op == "Dense") {
    if (!is_batched(0)) return mixes(node, "computes its weights from the batch");
    if (node.get_int("transpose_x", 0) != 0) {
      return mixes(node,
                   "reads its input transposed (Gemm transA=1): axis 0 is its features, so "
                   "every output row depends on every input row");
    }
    if (is_batched(1) || is_batched(2)) {
      return mixes(node, "takes its weights or bias from the batch");
    }
    return {true, "", ""};
  }
  if (op == "Add" || op == "Binary") {
    for (size_t i = 0; i < 2 && i < node.inputs.size(); ++i) {
      if (is_batched(i)) continue;
      const Dims& c = shapes.at(node.inputs[i]);
      const Dims& out = shapes.at(node.outputs[0]);
      if (c.size() == out.size() && !c.empty() && c[0] != 1) {
        std::ostringstream os;
        os << "combines the batch with '" << node.inputs[i] << "' of shape " << to_string(c)
           << ", whose axis 0 is not 1: row i would meet the constant's slice i";
        return mixes(node, os.str());
      }
    }
    return {true, "", ""};
  }
  if (op == "Softmax" || op == "LayerNorm" || op == "ScaleShift") {
    const int64_t axis = normalized_axis(node.get_int("axis", op == "ScaleShift" ? 1 : -1), rank);
    for (size_t i = 1; i < node.inputs.size(); ++i) {
      if (is_batched(i)) return mixes(node, "takes its scale or shift from the batch");
    }
    if (axis == 0) {
      if (op == "ScaleShift") {
        return mixes(node,
                     "scales along axis 0, the batch: row i would take the scale of "
                     "channel i");
      }
      return mixes(node,
                   "normalizes over axis 0, the batch: every output row depends on "
                   "every input row");
    }
    return {true, "", ""};
  }
  if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze") {
    return {true, "", ""};  // views: the shape rule in analyze decides
  }
  if (op == "Transpose") {
    const Result<std::vector<int64_t>> perm = transpose_perm(node, rank);
    if (!perm.is_ok() || perm->empty() || (*perm)[0] != 0) {
      return mixes(node, "moves axis 0, the batch, to another position");
    }
    return {true, "", ""};
  }
  if (op == "Slice") {
    std::vector<int64_t> axes = node.get_ints("axes");
    if (axes.empty() && !node.get_ints("starts").empty()) axes.push_back(0);  // default 0..n-1
    for (int64_t a : axes) {
      if (normalized_axis(a, rank) == 0) return mixes(node, "slices axis 0, the batch");
    }
    return {true, "", ""};
  }
  if (op == "ReduceMean") {
    const std::vector<int64_t> axes = node.get_ints("axes");
    if (axes.empty() && node.get_int("noop_with_empty_axes", 0) == 0) {
      return mixes(node, "averages over every axis, the batch included");
    }
    for (int64_t a : axes) {
      if (normalized_axis(a, rank) == 0) return mixes(node, "averages over axis 0, the batch");
    }
    return {true, "", ""};
  }
  if (op == "MatMul") {
    // Rows stay apart when axis 0 of the batched operand is a batch axis of the product that
    // the other operand does not vary along, or the rows of a plain (untransposed) 2-D product.
    const bool a_batched = is_batched(0), b_batched = is_batched(1);
    if (node.inputs.size() > 2 && is_batched(2)) return mixes(node, "takes its bias from the batch");
    const size_t ra = rank;
    const size_t rb = shapes.count(node.inputs[1]) ? shapes.at(node.inputs[1]).size() : 0;
    if (a_batched && !b_batched) {
      const Dims& b = shapes.at(node.inputs[1]);
      if (ra == 2 && node.get_int("transpose_a", 0) == 0 && node.get_int("transpose_y", 0) == 0) {
        return {true, "", ""};
      }
      if (ra >= 3 && (rb < ra || b[0] == 1)) return {true, "", ""};
      return mixes(node, "multiplies the batch axis into the product (it is a matrix axis or "
                         "meets the other operand's slices)");
    }
    if (a_batched && b_batched && ra >= 3 && rb == ra) return {true, "", ""};
    if (!a_batched && b_batched && rb >= 3) {
      const Dims& a = shapes.at(node.inputs[0]);
      if (ra < rb || a[0] == 1) return {true, "", ""};
    }
    return mixes(node, "multiplies the batch axis into the product (it is a matrix axis)");
  }
  return mixes(node, "is not an op known to keep rows independent");
}

bool batch_axis_kept(const Dims& a, const Dims& b) {
  return !a.empty() && a.size() == b.size() && a[0] == kBatchA && b[0] == kBatchB &&
         std::equal(a.begin() + 1, a.end(), b.begin() + 1);
}

}  // namespace

RowIndependence analyze_row_independence(const Graph& graph, const std::vector<ShapeMap>& samples) {
  if (graph.inputs.empty()) return {false, "", "the graph has no inputs, so no batch to split"};
  for (const TensorInfo& input : graph.inputs) {
    if (input.shape.empty()) {
      return {false, "", "input '" + input.name + "' is a scalar: it has no batch axis"};
    }
    if (input.shape[0].is_static()) {
      return {false, "",
              "input '" + input.name + "' has a static axis 0 (" +
                  std::to_string(input.shape[0].value) +
                  "): there is no batch to split (export the model with a dynamic batch axis)"};
    }
  }
  if (samples.empty()) return {false, "", "no input shapes to check the graph at"};
  for (const ShapeMap& sample : samples) {
    ShapeMap at_a = sample;
    ShapeMap at_b = sample;
    for (const TensorInfo& input : graph.inputs) {
      auto it = sample.find(input.name);
      if (it == sample.end() || it->second.empty()) {
        return {false, "", "no sample shape for input '" + input.name + "'"};
      }
      at_a[input.name][0] = kBatchA;
      at_b[input.name][0] = kBatchB;
    }
    auto shapes_a = infer_shapes(graph, at_a);
    auto shapes_b = infer_shapes(graph, at_b);
    for (const auto* shapes : {&shapes_a, &shapes_b}) {
      if (!shapes->is_ok()) {
        return {false, "",
                "the graph's shapes do not follow the batch (checked at batch sizes " +
                    std::to_string(kBatchA) + " and " + std::to_string(kBatchB) +
                    "): " + shapes->status().message()};
      }
    }
    const ShapeMap& sa = *shapes_a;
    const ShapeMap& sb = *shapes_b;
    std::set<std::string> batched;
    for (const TensorInfo& input : graph.inputs) batched.insert(input.name);
    for (const Node& node : graph.nodes) {
      bool reads_batch = false;
      for (const std::string& in : node.inputs) reads_batch = reads_batch || batched.count(in) != 0;
      if (!reads_batch) continue;  // a function of constants: the same for every row
      RowIndependence op_rule = check_op(node, batched, sa);
      if (!op_rule.independent) return op_rule;
      for (const std::string& out : node.outputs) {
        if (out.empty()) continue;
        const Dims& a = sa.at(out);
        const Dims& b = sb.at(out);
        if (!batch_axis_kept(a, b)) {
          std::ostringstream os;
          os << "gives '" << out << "' the shape " << to_string(a) << " at batch " << kBatchA
             << " and " << to_string(b) << " at batch " << kBatchB
             << ": its axis 0 is not the batch (the layer folds the batch into other axes or "
                "moves it), so rows mix";
          return mixes(node, os.str());
        }
        batched.insert(out);
      }
    }
    for (const TensorInfo& output : graph.outputs) {
      if (!batched.count(output.name)) {
        return {false, "",
                "output '" + output.name +
                    "' does not depend on the inputs: it has no rows to "
                    "split"};
      }
      if (!batch_axis_kept(sa.at(output.name), sb.at(output.name))) {
        return {false, "", "output '" + output.name + "' does not keep the batch as axis 0"};
      }
    }
  }
  return {true, "", ""};
}

}  // namespace mlprt::ir
