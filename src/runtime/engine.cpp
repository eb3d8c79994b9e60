#include "mlprt/engine.h"

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backends/registry.h"
#include "common/check.h"
#include "ir/evaluator.h"
#include "ir/passes/passes.h"
#include "runtime/context_state.h"
#include "runtime/engine_state.h"
#include "runtime/retune.h"
#include "runtime/warm_up.h"

namespace mlprt {
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

Result<std::vector<uint8_t>> read_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return make_error(StatusCode::kNotFound, "plan '", path.string(),
                      "' does not exist or is not a regular file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(StatusCode::kIoError, "cannot open plan '", path.string(), "'");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  if (in.bad()) return make_error(StatusCode::kIoError, "cannot read plan '", path.string(), "'");
  return bytes;
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

}  // namespace

Result<std::unique_ptr<Engine>> Engine::load_file(const std::filesystem::path& path,
                                                  const EngineLoadOptions& options) {
  MLPRT_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, read_file(path));
  return load(bytes, path.string(), options);
}

Result<std::unique_ptr<Engine>> Engine::load(std::span<const uint8_t> bytes,
                                             const std::string& source_name,
                                             const EngineLoadOptions& options) {
  auto state = std::make_shared<detail::EngineState>();
  MLPRT_ASSIGN_OR_RETURN(state->plan, plan::deserialize_plan(bytes, source_name));
  const plan::Plan& plan = state->plan;
  // Backend and hardware against this machine, under the load's policy (runtime/retune.h).
  MLPRT_ASSIGN_OR_RETURN(
      detail::Resolution resolved,
      detail::resolve_for_this_machine(state->plan, source_name, options.hardware_mismatch));
  state->backend = resolved.backend;
  if (resolved.retuned) {
    state->retuned_plan = std::move(resolved.bytes);
    bytes = state->retuned_plan;
    state->info.retuned_from = resolved.from_backend + " (" + resolved.from_hardware + ")";
    state->info.retune_seconds = resolved.seconds;
  }
  // The backend's messages name the model, not the file: say which plan (found by the fuzzer).
  auto executable = state->backend->load(plan.graph, plan.backend_blob);
  if (!executable) return executable.status().with_context("plan '" + source_name + "'");
  state->executable = std::move(executable).value();

  EngineInfo& info = state->info;
  info.format_version = plan.format_version;
  info.producer_version = plan.producer_version;
  info.backend = plan.backend;
  info.hardware = plan.hardware;
  info.precision = plan.precision;
  info.device = state->executable->device();
  info.model_name = plan.graph.name;
  info.plan_hash = plan::plan_hash_hex(bytes);
  info.plan_bytes = bytes.size();
  for (const auto& [name, constant] : plan.graph.constants) info.weight_bytes += constant.data.size();
  const std::vector<std::string> precisions = state->executable->layer_precisions();
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
  info.tactics = state->executable->tactic_notes();
  state->io_tensors = make_io_tensors(plan.graph);
  auto engine = std::make_unique<Engine>(std::move(state));
  // cpu engines: the first inference's one-time work happens here (runtime/warm_up.h).
  if (engine->info().backend == "cpu") detail::warm_up_engine(*engine);
  return engine;
}

Engine::Engine(std::shared_ptr<const detail::EngineState> state) : m_state(std::move(state)) {}
Engine::~Engine() = default;

const EngineInfo& Engine::info() const { return m_state->info; }
const std::vector<uint8_t>& Engine::retuned_plan() const { return m_state->retuned_plan; }
const std::vector<TensorDesc>& Engine::io_tensors() const { return m_state->io_tensors; }

const TensorDesc* Engine::find_io_tensor(const std::string& name) const {
  for (const TensorDesc& t : m_state->io_tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

int Engine::num_profiles() const { return static_cast<int>(m_state->plan.profiles.size()); }

Result<ShapeRange> Engine::profile_range(int profile, const std::string& name) const {
  if (profile < 0 || profile >= num_profiles()) {
    return make_error(StatusCode::kOutOfRange, "profile ", profile, " does not exist: the engine has ",
                      num_profiles(), " profile(s), 0..", num_profiles() - 1);
  }
  auto range = m_state->plan.profiles[static_cast<size_t>(profile)].get_dimensions(name);
  if (!range) {
    return make_error(StatusCode::kNotFound, "'", name, "' is not an input of the engine");
  }
  return *range;
}

Result<int> Engine::find_profile(const std::map<std::string, Dims>& input_shapes) const {
  std::ostringstream ranges;
  for (int p = 0; p < num_profiles(); ++p) {
    bool fits = true;
    const OptimizationProfile& profile = m_state->plan.profiles[static_cast<size_t>(p)];
    ranges << "\n  profile " << p << ":";
    for (const auto& [name, range] : profile.ranges()) {
      ranges << " " << name << " " << to_string(range);
      auto it = input_shapes.find(name);
      if (it == input_shapes.end() || !range.contains(it->second)) fits = false;
    }
    if (fits) return p;
  }
  std::ostringstream given;
  for (const auto& [name, dims] : input_shapes) {
    given << (given.tellp() > 0 ? ", " : "") << name << " " << to_string(dims);
  }
  bool past = false;
  for (const auto& [name, dims] : input_shapes)
    past = past || detail::past_every_profile(m_state->plan, name, dims);
  return make_error(StatusCode::kOutOfRange, "input shape ", given.str(),
                    " is outside every optimization profile of the engine:", ranges.str(),
                    "\nrebuild with a profile that covers it (--minShapes/--optShapes/--maxShapes)",
                    past ? detail::split_batch_hint() : std::string());
}

Result<std::map<std::string, ReferenceTensor>> Engine::reference_outputs(
    const std::map<std::string, ReferenceTensor>& inputs) const {
  std::map<std::string, ir::RefTensor> in;
  for (const auto& [name, t] : inputs) in[name] = ir::RefTensor{t.dims, t.values};
  try {
    MLPRT_ASSIGN_OR_RETURN(auto tensors, ir::evaluate_graph(m_state->plan.graph, in));
    std::map<std::string, ReferenceTensor> out;
    for (const ir::TensorInfo& o : m_state->plan.graph.outputs) {
      ir::RefTensor& t = tensors.at(o.name);
      out[o.name] = ReferenceTensor{std::move(t.dims), std::move(t.values)};
    }
    return out;
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kInternal, "reference evaluation: out of memory");
  }
}

std::string Engine::to_json() const {
  const EngineInfo& info = m_state->info;
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
  for (const TensorDesc& t : m_state->io_tensors) {
    j["io_tensors"].push_back({{"name", t.name},
                               {"mode", t.mode == TensorIOMode::kInput ? "input" : "output"},
                               {"dtype", std::string(to_string(t.dtype))},
                               {"dims", t.dims}});
  }
  j["profiles"] = nlohmann::json::array();
  for (const OptimizationProfile& profile : m_state->plan.profiles) {
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
  j["build_config"] = nlohmann::json::parse(m_state->plan.build_config_json, nullptr, false);
  return j.dump(2);
}

Result<std::vector<uint8_t>> Engine::serialize() const { return plan::serialize_plan(m_state->plan); }

Result<std::unique_ptr<ExecutionContext>> Engine::create_execution_context() const {
  MLPRT_ASSIGN_OR_RETURN(auto backend_context, m_state->executable->create_context());
  return std::make_unique<ExecutionContext>(
      std::make_unique<detail::ContextState>(m_state, std::move(backend_context)));
}

}  // namespace mlprt
