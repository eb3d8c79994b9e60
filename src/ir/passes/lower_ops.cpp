// ONNX ops that map one-to-one onto layer ops: activations, Clip, Sub/Mul/Div/Pow,
// LayerNormalization, BatchNormalization (inference).

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include "common/check.h"
#include "ir/activation.h"
#include "ir/passes/pass_utils.h"
#include "ir/passes/passes.h"

namespace mlprt::ir {
namespace {

using passes_detail::describe;
using passes_detail::unique_tensor_name;

// Clip bounds are stored as float attributes; an absent bound is the float32 limit (JSON in the
// plan has no infinity).
constexpr double kFloatMax = static_cast<double>(std::numeric_limits<float>::max());

Status lower_clip(const Graph& graph, Node& node) {
  double lo = -kFloatMax, hi = kFloatMax;
  if (node.has_attribute("min") || node.has_attribute("max")) {
    lo = node.get_float("min", lo);
    hi = node.get_float("max", hi);
  }
  for (size_t i = 1; i < node.inputs.size() && i < 3; ++i) {
    if (node.inputs[i].empty()) continue;
    const Constant* c = graph.find_constant(node.inputs[i]);
    if (!c || c->num_elements() != 1) {
      return make_error(StatusCode::kUnsupported, describe(graph, node), ": bound '",
                        node.inputs[i], "' is ", c ? "not a scalar" : "not a constant",
                        "; only constant scalar min/max are supported");
    }
    (i == 1 ? lo : hi) = std::clamp(c->to_doubles()[0], -kFloatMax, kFloatMax);
  }
  node.op = "Activation";
  node.inputs.resize(1);
  node.attributes = {{"kind", std::string("clip")}, {"alpha", lo}, {"beta", hi}};
  return Status::ok();
}

Status lower_batch_norm(Graph& graph, Node& node) {
  std::vector<std::vector<double>> p;
  for (size_t i = 1; i < 5; ++i) {
    const Constant* c = graph.find_constant(node.inputs[i]);
    if (!c) {
      return make_error(StatusCode::kUnsupported, describe(graph, node), ": input '",
                        node.inputs[i],
                        "' is not a constant; only inference-mode "
                        "BatchNormalization with constant scale, bias, mean and var is supported");
    }
    p.push_back(c->to_doubles());
  }
  const size_t n = p[0].size();
  for (const auto& v : p) {
    if (v.size() != n) {
      return make_error(StatusCode::kInvalidArgument, describe(graph, node),
                        ": scale, bias, mean and var have different sizes");
    }
  }
  if (node.get_int("training_mode", 0) != 0) {
    return make_error(StatusCode::kUnsupported, describe(graph, node),
                      ": training_mode = 1; only inference is supported");
  }
  const double eps = node.get_float("epsilon", 1e-5);
  std::vector<float> scale(n), shift(n);
  for (size_t j = 0; j < n; ++j) {
    const double s = p[0][j] / std::sqrt(p[3][j] + eps);
    scale[j] = static_cast<float>(s);
    shift[j] = static_cast<float>(p[1][j] - p[2][j] * s);
  }
  const auto c = static_cast<int64_t>(n);
  const std::string scale_name = unique_tensor_name(graph, node.name + ".scale");
  graph.constants[scale_name] = Constant::from_floats({c}, scale);
  const std::string shift_name = unique_tensor_name(graph, node.name + ".shift");
  graph.constants[shift_name] = Constant::from_floats({c}, shift);
  node.op = "ScaleShift";
  node.inputs = {node.inputs[0], scale_name, shift_name};
  node.attributes = {{"axis", int64_t{1}}};
  return Status::ok();
}

}  // namespace

Status lower_to_layer_ops(Graph& graph) {
  for (Node& node : graph.nodes) {
    const std::string op = node.op;
    if (op == "Relu" || op == "Activation") continue;
    if (const auto act = activation_of(node)) {
      node.op = "Activation";
      node.attributes = {{"kind", std::string(activation_name(act->kind))},
                         {"alpha", act->alpha},
                         {"beta", act->beta}};
    } else if (op == "Gelu") {
      return make_error(StatusCode::kUnsupported, describe(graph, node), ": approximate '",
                        node.get_string("approximate", ""), "'; allowed: none, tanh");
    } else if (op == "Clip") {
      MLPRT_RETURN_IF_ERROR(lower_clip(graph, node));
    } else if (op == "Sub" || op == "Mul" || op == "Div" || op == "Pow") {
      std::string kind = op;
      for (char& ch : kind) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      node.op = "Binary";
      node.attributes = {{"kind", kind}};
    } else if (op == "LayerNormalization") {
      node.op = "LayerNorm";
      node.outputs.resize(1);  // Mean / InvStdDev are unused (the importer checks)
      node.attributes = {{"axis", node.get_int("axis", -1)},
                         {"epsilon", node.get_float("epsilon", 1e-5)}};
    } else if (op == "BatchNormalization") {
      MLPRT_RETURN_IF_ERROR(lower_batch_norm(graph, node));
    }
  }
  return Status::ok();
}

}  // namespace mlprt::ir
