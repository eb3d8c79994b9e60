// Residual Add folded into the epilogue of the matrix product before it:
//   Add(Dense_or_MatMul(X, ...), R) -> Dense_or_MatMul(X, ..., R): y = X W + b + R.
// The product's epilogue then reads R once while its output is in cache, and the Add's pass
// over memory (and its intermediate tensor) is gone (the residual connections of MLP-Mixer,
// gMLP, ResMLP).
//
// Only where every backend computes exactly that: the product has no activation (bias, then R,
// then nothing: cuBLASLt's C input with beta = 1 is exact), its output has no other reader and
// is no graph output, R is an activation (no constant) and has the product's output shape (no broadcast: R is read with the
// output's layout). Shapes are compared by shape inference at two assignments of the dynamic
// input dims (small and large primes, one per symbol), so that a dim equal only by coincidence
// of sizes (a Slice clamped at a dynamic dim) is not taken for equal; backends still check the
// shapes at prepare and refuse a mismatch with an error.

#include <array>

#include "ir/passes/pass_utils.h"
#include "ir/passes/passes.h"
#include "ir/shape_inference.h"

namespace mlprt::ir {
namespace {

using passes_detail::single_reader;

// Shapes of every tensor with the dynamic dims of the inputs set to `sizes` (one per symbol
// or unnamed dim, in order of appearance), or nothing where inference fails.
std::optional<ShapeMap> shapes_at(const Graph& graph, const std::array<int64_t, 12>& sizes) {
  std::map<std::string, int64_t> by_symbol;
  size_t next = 0;
  ShapeMap inputs;
  for (const TensorInfo& in : graph.inputs) {
    Dims dims;
    for (const Dim& d : in.shape) {
      if (d.is_static()) {
        dims.push_back(d.value);
        continue;
      }
      if (!d.symbol.empty() && by_symbol.count(d.symbol)) {
        dims.push_back(by_symbol[d.symbol]);
        continue;
      }
      if (next == sizes.size()) return std::nullopt;  // too many dynamic dims to tell apart
      const int64_t size = sizes[next++];
      if (!d.symbol.empty()) by_symbol[d.symbol] = size;
      dims.push_back(size);
    }
    inputs[in.name] = dims;
  }
  Result<ShapeMap> shapes = infer_shapes(graph, inputs);
  if (!shapes.is_ok()) return std::nullopt;
  return std::move(*shapes);
}

bool fusable_product(const Node& node) {
  if (node.op != "Dense" && node.op != "MatMul") return false;
  if (node.outputs.size() != 1 || node.inputs.size() < 2 || node.inputs.size() > 3) return false;
  if (node.get_string("activation", "none") != "none") return false;
  return node.op != "Dense" || node.get_int("transpose_x", 0) == 0;
}

}  // namespace

Status fuse_residual_adds(Graph& graph) {
  static constexpr std::array<int64_t, 12> kSmall = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
  static constexpr std::array<int64_t, 12> kLarge = {1009, 1013, 1019, 1021, 1031, 1033,
                                                     1039, 1049, 1051, 1061, 1063, 1069};
  bool has_candidate = false;
  for (const Node& node : graph.nodes) has_candidate = has_candidate || fusable_product(node);
  if (!has_candidate) return Status::ok();
  const std::optional<ShapeMap> small = shapes_at(graph, kSmall);
  const std::optional<ShapeMap> large = shapes_at(graph, kLarge);
  if (!small || !large) return Status::ok();  // shapes unknown: fuse nothing
  auto same_shape = [&](const std::string& a, const std::string& b) {
    for (const ShapeMap* shapes : {&*small, &*large}) {
      auto ia = shapes->find(a), ib = shapes->find(b);
      if (ia == shapes->end() || ib == shapes->end() || ia->second != ib->second) return false;
    }
    return true;
  };
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (!fusable_product(graph.nodes[i])) continue;
    const std::string y = graph.nodes[i].outputs[0];
    const std::optional<size_t> reader = single_reader(graph, y);
    if (!reader) continue;
    const Node& add = graph.nodes[*reader];
    if (add.op != "Add" || add.inputs.size() != 2 || add.outputs.size() != 1) continue;
    const std::string& r = add.inputs[0] == y ? add.inputs[1] : add.inputs[0];
    // A constant R stays an Add: backends that run row chunks offset activations only.
    if (r == y || graph.is_constant(r) || !same_shape(r, y) || !same_shape(add.outputs[0], y)) {
      continue;
    }
    // The fused node takes the Add's place (R may be computed after the product) and name
    // its output; the bias slot stays empty when there is no bias.
    Node fused = graph.nodes[i];
    fused.inputs.resize(3);
    fused.inputs.push_back(r);
    fused.outputs[0] = add.outputs[0];
    graph.nodes[*reader] = std::move(fused);
    graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(i));
    --i;
  }
  return Status::ok();
}

bool has_residual(const Node& node) {
  return (node.op == "Dense" || node.op == "MatMul") && node.inputs.size() > 3 &&
         !node.inputs[3].empty();
}

}  // namespace mlprt::ir
