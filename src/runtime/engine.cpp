#include "mlprt/engine.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "backends/registry.h"
#include "common/check.h"
#include "ir/evaluator.h"
#include "mlprt/engine_inspector.h"
#include "runtime/context_state.h"
#include "runtime/engine_info.h"
#include "runtime/engine_state.h"
#include "runtime/retune.h"
#include "runtime/warm_up.h"

namespace mlprt {
namespace {

// The engine of a parsed plan: `hash` and `plan_bytes` describe the plan as given (a re-tune
// replaces them with its plan's).
Result<std::unique_ptr<Engine>> load_parsed(plan::Plan parsed, std::string hash,
                                            uint64_t plan_bytes, const std::string& source_name,
                                            const EngineLoadOptions& options) {
  auto state = std::make_shared<detail::EngineState>();
  state->plan = std::move(parsed);
  const plan::Plan& plan = state->plan;
  // Backend and hardware against this machine, under the load's policy (runtime/retune.h).
  MLPRT_ASSIGN_OR_RETURN(
      detail::Resolution resolved,
      detail::resolve_for_this_machine(state->plan, source_name, options.hardware_mismatch));
  state->backend = resolved.backend;
  if (resolved.retuned) {
    state->retuned_plan = std::move(resolved.bytes);
    hash = plan::plan_hash_hex(state->retuned_plan);
    plan_bytes = state->retuned_plan.size();
    state->info.retuned_from = resolved.from_backend + " (" + resolved.from_hardware + ")";
    state->info.retune_seconds = resolved.seconds;
  }
  // The backend's messages name the model, not the file: say which plan (found by the fuzzer).
  auto executable = state->backend->load(plan.graph, plan.backend_blob);
  if (!executable) return executable.status().with_context("plan '" + source_name + "'");
  state->executable = std::move(executable).value();

  EngineInfo& info = state->info;
  detail::fill_engine_info(plan, state->executable->layer_precisions(),
                           state->executable->tactic_notes(), info);
  info.device = state->executable->device();
  info.plan_hash = std::move(hash);
  info.plan_bytes = plan_bytes;
  state->io_tensors = detail::make_io_tensors(plan.graph);
  auto engine = std::make_unique<Engine>(std::move(state));
  // cpu engines: the first inference's one-time work happens here (runtime/warm_up.h).
  if (engine->info().backend == "cpu") detail::warm_up_engine(*engine);
  return engine;
}

}  // namespace

Result<std::unique_ptr<Engine>> Engine::load_file(const std::filesystem::path& path,
                                                  const EngineLoadOptions& options) {
  // Read so that the file's bytes and the parsed weights are never resident together.
  MLPRT_ASSIGN_OR_RETURN(plan::PlanFileInfo file, plan::read_plan_file(path, path.string()));
  return load_parsed(std::move(file.plan), std::move(file.hash_hex), file.file_bytes,
                     path.string(), options);
}

Result<std::unique_ptr<Engine>> Engine::load(std::span<const uint8_t> bytes,
                                             const std::string& source_name,
                                             const EngineLoadOptions& options) {
  MLPRT_ASSIGN_OR_RETURN(plan::Plan plan, plan::deserialize_plan(bytes, source_name));
  return load_parsed(std::move(plan), plan::plan_hash_hex(bytes), bytes.size(), source_name,
                     options);
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

std::string Engine::to_json() const { return inspect_engine(*this).to_json(); }

Result<std::vector<uint8_t>> Engine::serialize() const { return plan::serialize_plan(m_state->plan); }

Result<std::unique_ptr<ExecutionContext>> Engine::create_execution_context() const {
  MLPRT_ASSIGN_OR_RETURN(auto backend_context, m_state->executable->create_context());
  return std::make_unique<ExecutionContext>(
      std::make_unique<detail::ContextState>(m_state, std::move(backend_context)));
}

}  // namespace mlprt
