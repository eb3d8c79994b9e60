#include "backends/cuda/cuda_precisions.h"

#include <algorithm>

#include "common/check.h"
#include "common/log.h"

namespace mlprt::backend::cuda {

bool is_view_op(const std::string& op) {
  return op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze";
}

Result<LayerPrecisions> resolve_layer_precisions(const ir::Graph& graph,
                                                 const BuilderConfig& config, Precision base) {
  LayerPrecisions out;
  out.base = base;
  if (config.layer_precisions.empty() || config.precision_constraints == "none") return out;
  const auto star = config.layer_precisions.find("*");
  std::map<std::string, Precision> by_node;
  for (const ir::Node& node : graph.nodes) {
    if (is_view_op(node.op)) continue;
    auto it = config.layer_precisions.find(node.name);
    if (it == config.layer_precisions.end()) it = star;
    Precision p = base;
    if (it != config.layer_precisions.end()) {
      Result<Precision> parsed = parse_precision(it->second);
      if (!parsed.is_ok()) {
        return make_error(StatusCode::kInvalidArgument, "cuda backend: layer precision '",
                          it->first, ":", it->second, "'; allowed: fp32, tf32, fp16, bf16");
      }
      p = *parsed;
    }
    by_node[node.name] = p;
  }
  if (by_node.empty()) return out;
  const Precision first = by_node.begin()->second;
  if (std::all_of(by_node.begin(), by_node.end(),
                  [&](const auto& entry) { return entry.second == first; })) {
    out.base = first;  // one precision for every layer: a single-precision engine
    return out;
  }
  out.by_node = std::move(by_node);
  std::string text;
  for (const auto& [name, p] : out.by_node) {
    text += (text.empty() ? "" : ", ") + name + ":" + to_string(p);
  }
  detail::log(Severity::kInfo, "cuda backend: layers in their own precisions: ", text);
  return out;
}

bool dense_writes_f32(const ir::Graph& graph, const ir::Node& node, const LayerPrecisions& p) {
  if (!p.mixed() || node.op != "Dense" || node.outputs.size() != 1) return false;
  if (storage_type(p.of(node.name)) == ElemType::kF32) return false;
  const std::string& y = node.outputs[0];
  for (const ir::TensorInfo& output : graph.outputs) {
    if (output.name == y) return false;
  }
  bool any = false;
  for (const ir::Node& consumer : graph.nodes) {
    if (std::find(consumer.inputs.begin(), consumer.inputs.end(), y) == consumer.inputs.end()) {
      continue;
    }
    if (is_view_op(consumer.op) || storage_type(p.of(consumer.name)) != ElemType::kF32) {
      return false;
    }
    any = true;
  }
  return any;
}

}  // namespace mlprt::backend::cuda
