#include "mlprt/engine_inspector.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "backends/registry.h"
#include "common/check.h"
#include "ir/passes/passes.h"
#include "runtime/engine_info.h"
#include "runtime/engine_state.h"

namespace mlprt {
namespace detail {
namespace {

std::string describe_layer(const ir::Graph& graph, const ir::Node& node) {
  std::ostringstream os;
  if (node.op == "Dense") {
    const ir::Constant* w = graph.find_constant(node.inputs[1]);
    if (w && w->dims.size() == 2) os << w->dims[0] << "x" << w->dims[1];
    os << (node.inputs.size() > 2 && !node.inputs[2].empty() ? " +bias" : " no bias");
    const std::string act = node.get_string("activation", "none");
    if (act != "none") os << " " << act;
    if (node.get_int("transpose_x", 0)) os << " transposed input";
    if (ir::has_residual(node)) os << " +residual";
  } else if (node.op == "Reshape") {
    os << "to " << to_string(node.get_ints("shape"));
  } else if (node.op == "Flatten") {
    os << "axis " << node.get_int("axis", 1);
  }
  return os.str();
}

}  // namespace

void fill_engine_info(const plan::Plan& plan, const std::vector<std::string>& precisions,
                      std::vector<std::string> tactics, EngineInfo& info) {
  info.format_version = plan.format_version;
  info.producer_version = plan.producer_version;
  info.backend = plan.backend;
  info.hardware = plan.hardware;
  info.precision = plan.precision;
  info.model_name = plan.graph.name;
  info.weight_bytes = 0;
  for (const auto& [name, constant] : plan.graph.constants) {
    info.weight_bytes +=
        static_cast<uint64_t>(constant.num_elements()) * element_size(constant.dtype);
  }
  info.layers.clear();
  for (size_t i = 0; i < plan.graph.nodes.size(); ++i) {
    const ir::Node& node = plan.graph.nodes[i];
    info.layers.push_back({node.name, node.op,
                           i < precisions.size() ? precisions[i] : plan.precision,
                           describe_layer(plan.graph, node), node.inputs, node.outputs});
  }
  if (!plan.accuracy_json.empty()) {
    const nlohmann::json accuracy = nlohmann::json::parse(plan.accuracy_json, nullptr, false);
    if (accuracy.is_object()) {
      info.accuracy_json = plan.accuracy_json;
      info.accuracy_budget = accuracy.value("budget", 0.0);
      info.accuracy_error = accuracy.value("error", -1.0);
      const nlohmann::json layers = accuracy.value("layers", nlohmann::json::object());
      for (LayerInfo& layer : info.layers) {
        auto it = layers.find(layer.name);
        if (it != layers.end() && it->is_object()) layer.measured_error = it->value("error", -1.0);
      }
    }
  }
  info.tactics = std::move(tactics);
}

std::vector<TensorDesc> make_io_tensors(const ir::Graph& graph) {
  std::vector<TensorDesc> io;
  for (const ir::TensorInfo& t : graph.inputs) {
    io.push_back({t.name, TensorIOMode::kInput, t.dtype, ir::to_dims(t.shape)});
  }
  for (const ir::TensorInfo& t : graph.outputs) {
    io.push_back({t.name, TensorIOMode::kOutput, t.dtype, ir::to_dims(t.shape)});
  }
  return io;
}

}  // namespace detail

namespace {

// The backend that runs `plan` here as built, or null when the load would re-tune, refuse or
// fall back (then the engine is loaded to be described).
const backend::Backend* runs_as_built(const plan::Plan& plan) {
  auto found = backend::find_backend(plan.backend);
  if (!found.is_ok() || !(*found)->check_available().is_ok()) return nullptr;
  return (*found)->hardware_id() == plan.hardware ? *found : nullptr;
}

}  // namespace

Result<PlanInfo> inspect_plan_file(const std::filesystem::path& path,
                                   const EngineLoadOptions& options) {
  const std::string source = path.string();
  MLPRT_ASSIGN_OR_RETURN(plan::PlanFileInfo file, plan::read_plan_metadata(path, source));
  const plan::Plan& plan = file.plan;
  const backend::Backend* backend = runs_as_built(plan);
  if (backend == nullptr) {
    MLPRT_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::load_file(path, options));
    return inspect_engine(*engine);
  }
  auto described = backend->describe_blob(plan.graph, plan.backend_blob);
  if (!described) return described.status().with_context("plan '" + source + "'");
  PlanInfo out;
  out.metadata_only = true;
  detail::fill_engine_info(plan, described->layer_precisions,
                           std::move(described->tactic_notes), out.info);
  out.info.plan_hash = file.hash_hex;
  out.info.plan_bytes = file.file_bytes;
  out.io_tensors = detail::make_io_tensors(plan.graph);
  out.profiles = plan.profiles;
  out.build_config_json = plan.build_config_json;
  return out;
}

PlanInfo inspect_engine(const Engine& engine) {
  PlanInfo out;
  out.info = engine.info();
  out.io_tensors = engine.io_tensors();
  out.profiles = engine.m_state->plan.profiles;
  out.build_config_json = engine.m_state->plan.build_config_json;
  return out;
}

std::string PlanInfo::to_json() const {
  nlohmann::json j;
  j["format_version"] = info.format_version;
  j["producer_version"] = info.producer_version;
  j["backend"] = info.backend;
  j["hardware"] = info.hardware;
  j["precision"] = info.precision;
  j["model"] = info.model_name;
  j["plan_hash"] = info.plan_hash;
  j["plan_bytes"] = info.plan_bytes;
  j["weight_bytes"] = info.weight_bytes;
  j["io_tensors"] = nlohmann::json::array();
  for (const TensorDesc& t : io_tensors) {
    j["io_tensors"].push_back({{"name", t.name},
                               {"mode", t.mode == TensorIOMode::kInput ? "input" : "output"},
                               {"dtype", std::string(to_string(t.dtype))},
                               {"dims", t.dims}});
  }
  j["profiles"] = nlohmann::json::array();
  for (const OptimizationProfile& profile : profiles) {
    nlohmann::json ranges = nlohmann::json::object();
    for (const auto& [name, range] : profile.ranges()) {
      ranges[name] = {{"min", range.min}, {"opt", range.opt}, {"max", range.max}};
    }
    j["profiles"].push_back(ranges);
  }
  j["layers"] = nlohmann::json::array();
  for (const LayerInfo& layer : info.layers) {
    j["layers"].push_back({{"name", layer.name},
                           {"type", layer.type},
                           {"precision", layer.precision},
                           {"detail", layer.detail},
                           {"inputs", layer.inputs},
                           {"outputs", layer.outputs}});
    if (layer.measured_error >= 0.0) j["layers"].back()["measured_error"] = layer.measured_error;
  }
  if (!info.accuracy_json.empty()) {
    j["accuracy"] = nlohmann::json::parse(info.accuracy_json, nullptr, false);
  }
  if (!info.tactics.empty()) j["tactics"] = info.tactics;
  if (!info.retuned_from.empty()) {
    j["retuned_from"] = info.retuned_from;
    j["retune_seconds"] = info.retune_seconds;
  }
  j["build_config"] = nlohmann::json::parse(build_config_json, nullptr, false);
  return j.dump(2);
}

}  // namespace mlprt
