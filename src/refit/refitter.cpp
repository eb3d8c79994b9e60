#include "mlprt/refitter.h"

#include <chrono>

#include "common/check.h"
#include "common/log.h"
#include "onnx/onnx_importer.h"
#include "refit/plan_refitter.h"
#include "runtime/engine_state.h"
#include "weights/weight_file.h"

namespace mlprt {

Refitter::Refitter(std::unique_ptr<refit::PlanRefitter> impl, Engine* engine)
    : m_impl(std::move(impl)), m_engine(engine) {}
Refitter::~Refitter() = default;

Result<std::unique_ptr<Refitter>> Refitter::create(Engine& engine) {
  const std::string name = "engine '" + engine.info().model_name + "'";
  MLPRT_ASSIGN_OR_RETURN(refit::PlanRefitter impl, refit::PlanRefitter::create(engine.m_state->plan, name));
  return std::unique_ptr<Refitter>(
      new Refitter(std::make_unique<refit::PlanRefitter>(std::move(impl)), &engine));
}

Result<std::unique_ptr<Refitter>> Refitter::create_for_plan(std::span<const uint8_t> plan,
                                                            const std::string& source_name) {
  MLPRT_ASSIGN_OR_RETURN(plan::Plan parsed, plan::deserialize_plan(plan, source_name));
  MLPRT_ASSIGN_OR_RETURN(refit::PlanRefitter impl, refit::PlanRefitter::create(std::move(parsed), source_name));
  return std::unique_ptr<Refitter>(
      new Refitter(std::make_unique<refit::PlanRefitter>(std::move(impl)), nullptr));
}

Status Refitter::set_named_weights(const std::string& name, const Weights& weights) {
  auto count = volume(weights.dims);
  if (!count.is_ok() || *count != weights.count) {
    return make_error(StatusCode::kInvalidArgument, "set_named_weights('", name, "'): ", weights.count,
                      " values for dims [", to_string(weights.dims), "]");
  }
  if (weights.count > 0 && !weights.values) {
    return make_error(StatusCode::kInvalidArgument, "set_named_weights('", name, "'): values is null");
  }
  ir::Constant c{weights.type, weights.dims, {}};
  const auto* bytes = static_cast<const std::byte*>(weights.values);
  c.data.assign(bytes, bytes + static_cast<size_t>(weights.count) * element_size(weights.type));
  const std::string problem = m_impl->set_named(name, c);
  if (!problem.empty()) return Status(StatusCode::kInvalidArgument, "set_named_weights: " + problem);
  return Status::ok();
}

Status Refitter::set_weights_from_file(const std::filesystem::path& path) {
  MLPRT_ASSIGN_OR_RETURN(weights::WeightFormat format, weights::format_of(path));
  if (format == weights::WeightFormat::kOnnx) {
    MLPRT_ASSIGN_OR_RETURN(ir::Graph graph, onnx_import::import_onnx_file(path));
    return m_impl->set_all_from_onnx(graph);
  }
  MLPRT_ASSIGN_OR_RETURN(weights::NamedTensors tensors, weights::read_weight_file(path));
  return m_impl->set_all(tensors, path.string());
}

std::vector<std::string> Refitter::get_missing_weights() const { return m_impl->missing_weights(); }
std::vector<std::string> Refitter::get_all_weights() const { return m_impl->all_weights(); }

std::vector<std::pair<std::string, std::string>> Refitter::get_weight_aliases() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, alias] : m_impl->aliases()) out.emplace_back(name, alias.initializer);
  return out;
}

Result<std::vector<uint8_t>> Refitter::refit_serialized() {
  MLPRT_ASSIGN_OR_RETURN(plan::Plan plan, m_impl->refit());
  return plan::serialize_plan(plan);
}

Status Refitter::refit_cuda_engine() {
  if (!m_engine) {
    return make_error(StatusCode::kInvalidArgument,
                      "refit_cuda_engine: this refitter was made for a plan's bytes, not an engine; "
                      "use refit_serialized()");
  }
  const auto start = std::chrono::steady_clock::now();
  MLPRT_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, refit_serialized());
  MLPRT_ASSIGN_OR_RETURN(std::unique_ptr<Engine> fresh, Engine::load(bytes, m_engine->info().model_name));
  m_engine->m_state = fresh->m_state;
  // The next refit starts from the new plan, with no weight set.
  MLPRT_ASSIGN_OR_RETURN(refit::PlanRefitter next, refit::PlanRefitter::create(m_engine->m_state->plan, "engine '" + m_engine->info().model_name + "'"));
  *m_impl = std::move(next);
  detail::log(Severity::kInfo, "refitted engine '", m_engine->info().model_name, "' in ",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), " s");
  return Status::ok();
}

}  // namespace mlprt
