#include "ir/passes/passes.h"

#include <algorithm>

#include "common/check.h"
#include "ir/activation.h"
#include "ir/passes/pass_utils.h"

namespace mlprt::ir {
namespace {

using passes_detail::describe;

std::string layer_ops_list() {
  std::string out;
  for (std::string_view op : kLayerOps) out += (out.empty() ? "" : ", ") + std::string(op);
  return out;
}

// A residual input (input 3) is a non-empty tensor name on a layer without activation.
Status check_residual(const Graph& graph, const Node& node) {
  if (node.inputs.size() < 4) return Status::ok();
  if (node.inputs[3].empty()) {
    return make_error(StatusCode::kInvalidArgument, describe(graph, node),
                      ": input 3 (residual) is empty; leave it out when there is none");
  }
  if (node.get_string("activation", "none") != "none") {
    return make_error(StatusCode::kInvalidArgument, describe(graph, node), ": has a residual input '",
                      node.inputs[3], "' and activation '", node.get_string("activation", ""),
                      "'; a residual is only added to layers without activation");
  }
  return Status::ok();
}

Status check_dense(const Graph& graph, const Node& node) {
  if (node.inputs.size() < 2 || node.inputs.size() > 4 || node.outputs.size() != 1) {
    return make_error(StatusCode::kInternal, describe(graph, node), ": has ", node.inputs.size(),
                      " inputs and ", node.outputs.size(), " outputs; Dense takes 2..4 and 1");
  }
  MLPRT_RETURN_IF_ERROR(check_residual(graph, node));
  const Constant* w = graph.find_constant(node.inputs[1]);
  if (!w || w->dims.size() != 2 || w->dtype != DataType::kFloat32) {
    return make_error(StatusCode::kInternal, describe(graph, node), ": weight '", node.inputs[1],
                      "' must be a constant 2-D float32 tensor");
  }
  if (node.inputs.size() >= 3 && !node.inputs[2].empty()) {
    const Constant* b = graph.find_constant(node.inputs[2]);
    if (!b || b->dims != Dims{w->dims[1]} || b->dtype != DataType::kFloat32) {
      return make_error(StatusCode::kInternal, describe(graph, node), ": bias '", node.inputs[2],
                        "' must be a constant float32 tensor of shape ", w->dims[1]);
    }
  }
  return Status::ok();
}

Status need_constant(const Graph& graph, const Node& node, size_t i, const char* what) {
  if (i >= node.inputs.size() || node.inputs[i].empty()) return Status::ok();
  const Constant* c = graph.find_constant(node.inputs[i]);
  if (!c || c->dtype != DataType::kFloat32) {
    return make_error(StatusCode::kUnsupported, describe(graph, node), ": ", what, " '",
                      node.inputs[i], "' must be a float32 constant");
  }
  return Status::ok();
}

Status check_new_layer_op(const Graph& graph, const Node& node) {
  if (node.op == "Activation" && !activation_of(node)) {
    return make_error(StatusCode::kUnsupported, describe(graph, node), ": activation kind '",
                      node.get_string("kind", ""), "'; allowed: ", kActivationKinds);
  }
  if (node.op == "Dense" && !parse_activation(node.get_string("activation", "none"))) {
    return make_error(StatusCode::kUnsupported, describe(graph, node), ": activation '",
                      node.get_string("activation", ""), "'; allowed: ", kActivationKinds);
  }
  if (node.op == "LayerNorm") {
    MLPRT_RETURN_IF_ERROR(need_constant(graph, node, 1, "scale"));
    MLPRT_RETURN_IF_ERROR(need_constant(graph, node, 2, "bias"));
  }
  if (node.op == "ScaleShift") {
    if (node.inputs.size() != 3) {
      return make_error(StatusCode::kInternal, describe(graph, node), ": takes 3 inputs");
    }
    MLPRT_RETURN_IF_ERROR(need_constant(graph, node, 1, "scale"));
    MLPRT_RETURN_IF_ERROR(need_constant(graph, node, 2, "shift"));
  }
  if ((node.op == "Squeeze" || node.op == "Unsqueeze") && node.inputs.size() != 1) {
    return make_error(StatusCode::kUnsupported, describe(graph, node), ": axes '",
                      node.inputs[1], "' are not a constant; only constant axes are supported");
  }
  if (node.op == "Unsqueeze" && !node.has_attribute("axes")) {
    return make_error(StatusCode::kInvalidArgument, describe(graph, node), ": has no axes");
  }
  return Status::ok();
}

Status check_data_op(const Graph& graph, const Node& node) {
  if ((node.op == "Slice" || node.op == "ReduceMean" || node.op == "Transpose") &&
      node.inputs.size() != 1) {
    return make_error(StatusCode::kUnsupported, describe(graph, node), ": input '",
                      node.inputs[1], "' (", node.op == "Slice" ? "starts/ends/axes/steps" : "axes",
                      ") is computed at run time and could not be folded at build time; only "
                      "constant (or build-time computable) values are supported");
  }
  if (node.op == "MatMul") {
    if (node.inputs.size() < 2 || node.inputs.size() > 4 || node.outputs.size() != 1) {
      return make_error(StatusCode::kInternal, describe(graph, node), ": takes 2..4 inputs");
    }
    MLPRT_RETURN_IF_ERROR(check_residual(graph, node));
    if (!parse_activation(node.get_string("activation", "none"))) {
      return make_error(StatusCode::kUnsupported, describe(graph, node), ": activation '",
                        node.get_string("activation", ""), "'; allowed: ", kActivationKinds);
    }
    for (size_t i = 0; i < 2; ++i) {
      const Constant* c = graph.find_constant(node.inputs[i]);
      if (c && c->dtype != DataType::kFloat32) {
        return make_error(StatusCode::kUnsupported, describe(graph, node), ": operand '",
                          node.inputs[i], "' is ", to_string(c->dtype),
                          "; constant operands must be float32");
      }
    }
    if (node.inputs.size() >= 3 && !node.inputs[2].empty()) {
      const Constant* b = graph.find_constant(node.inputs[2]);
      if (!b || b->dims.size() != 1 || b->dtype != DataType::kFloat32) {
        return make_error(StatusCode::kInternal, describe(graph, node), ": bias '",
                          node.inputs[2], "' must be a 1-D float32 constant");
      }
    }
  }
  return Status::ok();
}

}  // namespace

Status constant_shapes_to_attributes(Graph& graph) {
  for (Node& node : graph.nodes) {
    const bool axes_input = node.op == "Squeeze" || node.op == "Unsqueeze" ||
                            node.op == "ReduceMean";
    if (node.op == "Slice" && node.inputs.size() > 1 && !node.has_attribute("starts")) {
      // Constant starts / ends / axes / steps (opset 10+ inputs) -> attributes.
      static constexpr const char* kNames[] = {"starts", "ends", "axes", "steps"};
      bool all_constant = true;
      for (size_t i = 1; i < node.inputs.size() && i < 5; ++i) {
        all_constant = all_constant && (node.inputs[i].empty() || graph.is_constant(node.inputs[i]));
      }
      if (!all_constant || node.inputs.size() > 5) continue;  // check_layer_ops reports it
      for (size_t i = 1; i < node.inputs.size(); ++i) {
        if (!node.inputs[i].empty()) {
          node.attributes[kNames[i - 1]] = graph.find_constant(node.inputs[i])->to_int64s();
        }
      }
      node.inputs.resize(1);
      continue;
    }
    if (axes_input && node.inputs.size() > 1 && !node.has_attribute("axes")) {
      const Constant* axes = graph.find_constant(node.inputs[1]);
      if (axes) {
        node.attributes["axes"] = axes->to_int64s();
        node.inputs.resize(1);
      } else if (node.inputs[1].empty()) {
        node.inputs.resize(1);
      }
      continue;
    }
    if (node.op != "Reshape" || node.inputs.size() < 2) continue;
    const Constant* shape = graph.find_constant(node.inputs[1]);
    if (!shape) continue;  // check_layer_ops reports it
    node.attributes["shape"] = shape->to_int64s();
    node.inputs.resize(1);
  }
  return Status::ok();
}

Status check_layer_ops(const Graph& graph) {
  for (const Node& node : graph.nodes) {
    const bool is_layer = std::find(kLayerOps.begin(), kLayerOps.end(), node.op) != kLayerOps.end();
    if (node.op == "Gemm" && node.inputs.size() > 1) {
      const Constant* w = graph.find_constant(node.inputs[1]);
      return make_error(StatusCode::kUnsupported, describe(graph, node), ": its second input '",
                        node.inputs[1], "' is ",
                        w ? "a constant of shape " + to_string(w->dims) : std::string("not a constant"),
                        "; only matrix products with constant 2-D weights are supported");
    }
    if (!is_layer) {
      return make_error(StatusCode::kUnsupported, describe(graph, node),
                        ": op is not supported after optimization; layer ops: ",
                        layer_ops_list());
    }
    if (node.op == "Dense") MLPRT_RETURN_IF_ERROR(check_dense(graph, node));
    MLPRT_RETURN_IF_ERROR(check_data_op(graph, node));
    if (node.op == "Reshape" && (node.inputs.size() != 1 || !node.has_attribute("shape"))) {
      return make_error(StatusCode::kUnsupported, describe(graph, node), ": target shape '",
                        node.inputs.size() > 1 ? node.inputs[1] : std::string(),
                        "' is not a constant; only constant target shapes are supported");
    }
    if ((node.op == "Relu" || node.op == "Flatten" || node.op == "Activation" ||
         node.op == "Softmax") && node.inputs.size() != 1) {
      return make_error(StatusCode::kInternal, describe(graph, node), ": takes one input, has ",
                        node.inputs.size());
    }
    MLPRT_RETURN_IF_ERROR(check_new_layer_op(graph, node));
    if ((node.op == "Add" || node.op == "Binary") && node.inputs.size() != 2) {
      return make_error(StatusCode::kInternal, describe(graph, node), ": takes two inputs, has ",
                        node.inputs.size());
    }
  }
  return Status::ok();
}

Status optimize(Graph& graph) {
  try {
    MLPRT_RETURN_IF_ERROR(fold_constants(graph));
    MLPRT_RETURN_IF_ERROR(fold_shape_computations(graph));
    MLPRT_RETURN_IF_ERROR(fold_constants(graph));
    MLPRT_RETURN_IF_ERROR(widen_float_constants(graph));
    MLPRT_RETURN_IF_ERROR(remove_identities(graph));
    MLPRT_RETURN_IF_ERROR(constant_shapes_to_attributes(graph));
    MLPRT_RETURN_IF_ERROR(fuse_patterns(graph));
    MLPRT_RETURN_IF_ERROR(lower_to_layer_ops(graph));
    MLPRT_RETURN_IF_ERROR(fuse_dense(graph));
    MLPRT_RETURN_IF_ERROR(fold_norm_affine(graph));
    MLPRT_RETURN_IF_ERROR(fuse_transposes(graph));
    MLPRT_RETURN_IF_ERROR(remove_dead_nodes(graph));
    // After dead nodes are gone: it infers shapes, which leftover shape computations may block.
    MLPRT_RETURN_IF_ERROR(fuse_residual_adds(graph));
    return check_layer_ops(graph);
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kInternal, graph.source, ": out of memory while optimizing");
  }
}

}  // namespace mlprt::ir
