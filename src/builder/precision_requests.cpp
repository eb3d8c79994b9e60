#include "builder/precision_requests.h"

#include <algorithm>
#include <set>
#include <string>

#include "common/check.h"
#include "common/log.h"

namespace mlprt::builder {

Status check_precision_requests(const ir::Graph& graph, const BuilderConfig& config) {
  static const std::set<std::string, std::less<>> kConstraints = {"none", "prefer", "obey"};
  static const std::set<std::string, std::less<>> kPrecisions = {"fp32", "tf32", "fp16", "bf16"};
  if (!kConstraints.count(config.precision_constraints)) {
    return make_error(StatusCode::kInvalidArgument, "precision constraints '",
                      config.precision_constraints, "'; allowed: none, prefer, obey");
  }
  std::string layer_names;
  for (const ir::Node& node : graph.nodes)
    layer_names += (layer_names.empty() ? "'" : ", '") + node.name + "'";
  for (const auto& [name, precision] : config.layer_precisions) {
    if (!kPrecisions.count(precision)) {
      return make_error(StatusCode::kInvalidArgument, "layer precision '", name, ":", precision,
                        "': precision '", precision, "' is not one of fp32, tf32, fp16, bf16");
    }
    const std::string& wanted = name;  // clang 14 cannot capture a structured binding
    if (name != "*" && std::none_of(graph.nodes.begin(), graph.nodes.end(),
                                    [&](const ir::Node& n) { return n.name == wanted; })) {
      return make_error(StatusCode::kNotFound, "layer precision '", name, ":", precision,
                        "': the optimized graph of '", graph.name, "' has no layer '", name,
                        "'; its layers (as mlprt inspect lists them) are ", layer_names);
    }
  }
  if (!config.layer_precisions.empty() && config.precision_constraints == "none") {
    detail::log(Severity::kWarning, "layer precisions are ignored with precision constraints "
                "'none'; use --precisionConstraints=obey or prefer");
  }
  return Status::ok();
}

}  // namespace mlprt::builder
