#include "mlprt/builder.h"

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backends/registry.h"
#include "builder/accuracy_budget.h"
#include "builder/precision_requests.h"
#include "builder/profile_validation.h"
#include "common/check.h"
#include "common/log.h"
#include "ir/passes/passes.h"
#include "ir/row_independence.h"
#include "mlprt/float16.h"
#include "mlprt/version.h"
#include "plan/plan.h"
#include "refit/refit_record.h"

namespace mlprt {
namespace {

nlohmann::json profiles_to_json(const std::vector<OptimizationProfile>& profiles) {
  nlohmann::json out = nlohmann::json::array();
  for (const OptimizationProfile& profile : profiles) {
    nlohmann::json ranges = nlohmann::json::object();
    for (const auto& [name, range] : profile.ranges()) {
      ranges[name] = {{"min", range.min}, {"opt", range.opt}, {"max", range.max}};
    }
    out.push_back(ranges);
  }
  return out;
}

std::string format_bytes(uint64_t bytes) {
  std::ostringstream os;
  os.precision(3);
  if (bytes >= (1u << 20)) {
    os << static_cast<double>(bytes) / (1 << 20) << " MiB";
  } else if (bytes >= 1024) {
    os << static_cast<double>(bytes) / 1024 << " KiB";
  } else {
    os << bytes << " B";
  }
  return os.str();
}

std::vector<std::string> format_names(const std::vector<DataType>& formats) {
  std::vector<std::string> names;
  for (DataType type : formats) names.emplace_back(to_string(type));
  return names;
}

// Split batch (ExecutionContext::set_split_batch) needs rows proven independent; checked at
// every profile's opt shapes, logged when not, so `mlprt build --verbose` says why.
ir::RowIndependence prove_row_independence(const ir::Graph& graph,
                                           const std::vector<OptimizationProfile>& profiles) {
  std::vector<ir::ShapeMap> samples;
  for (const OptimizationProfile& profile : profiles) {
    ir::ShapeMap sample;
    for (const auto& [name, range] : profile.ranges()) sample[name] = range.opt;
    samples.push_back(std::move(sample));
  }
  ir::RowIndependence rows = ir::analyze_row_independence(graph, samples);
  if (rows.independent) {
    detail::log(Severity::kVerbose, "rows proven independent: split batch allowed");
  } else {
    detail::log(Severity::kVerbose, "rows not proven independent (split batch refused): ",
                rows.reason);
  }
  return rows;
}

// Ends with "plan ": the caller adds the plan's size.
std::string summarize(const plan::Plan& plan) {
  uint64_t weight_bytes = 0;
  for (const auto& [name, constant] : plan.graph.constants) weight_bytes += constant.data.size();
  std::ostringstream os;
  os << plan.backend << " engine (" << plan.hardware << ", " << plan.precision
     << "): " << plan.graph.nodes.size() << " layers [";
  for (size_t i = 0; i < plan.graph.nodes.size(); ++i) {
    const ir::Node& node = plan.graph.nodes[i];
    os << (i ? ", " : "") << node.op;
    if (node.op == "Dense") {
      const ir::Constant* w = plan.graph.find_constant(node.inputs[1]);
      if (w && w->dims.size() == 2) os << ' ' << w->dims[0] << 'x' << w->dims[1];
      const std::string act = node.get_string("activation", "none");
      if (act != "none") os << '+' << act;
    }
  }
  os << "], " << plan.profiles.size() << (plan.profiles.size() == 1 ? " profile" : " profiles")
     << ", " << format_bytes(weight_bytes) << " weights, plan ";
  return os.str();
}

Status apply_io_formats(std::vector<ir::TensorInfo>& tensors, const std::vector<DataType>& formats,
                        const char* flag) {
  if (formats.empty()) return Status::ok();
  if (formats.size() != 1 && formats.size() != tensors.size()) {
    std::string names;
    for (const ir::TensorInfo& t : tensors) names += (names.empty() ? "'" : ", '") + t.name + "'";
    return make_error(StatusCode::kInvalidArgument, flag, ": ", formats.size(), " formats for ",
                      tensors.size(), " tensors (", names,
                      "); give one per tensor in the model's order, or one for all");
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const DataType type = formats[formats.size() == 1 ? 0 : i];
    if (!is_io_float_type(type)) {
      return make_error(StatusCode::kInvalidArgument, flag, ": '", tensors[i].name, "' as ",
                        to_string(type), "; allowed: float32, float16, bfloat16");
    }
    tensors[i].dtype = type;
  }
  return Status::ok();
}

// A strongly typed float16 / bfloat16 model runs in its type: the builder asks for it as
// TensorRT's kSTRONGLY_TYPED networks do, preferring (not obeying) it so that a backend without
// kernels in that type still builds and says so.
BuilderConfig typed_config(const ir::Graph& graph, BuilderConfig config) {
  if (graph.model_precision == DataType::kFloat32) return config;
  const bool half = graph.model_precision == DataType::kFloat16;
  (half ? config.allow_fp16 : config.allow_bf16) = true;
  if (config.layer_precisions.empty()) config.layer_precisions["*"] = half ? "fp16" : "bf16";
  if (config.precision_constraints == "none") config.precision_constraints = "prefer";
  detail::log(Severity::kInfo, "the model is strongly typed ", to_string(graph.model_precision),
              ": its layers are built in ", half ? "fp16" : "bf16",
              " where the backend has kernels in it");
  return config;
}

// One build. `accuracy_json`: the plan's "accuracy" metadata (empty: none); `recorded_cache`:
// the timing cache path the plan's build config names (the accuracy budget's search builds with
// a temporary cache of its own).
std::string model_name(const ir::Graph& graph) {
  return graph.source.empty() ? graph.name : graph.source;
}

// `graph`: the network's graph, a copy or (build_serialized_engine of a unique_ptr) the
// network's own, so that the build does not hold its weights twice.
Result<SerializedEngine> build_engine(ir::Graph graph, const BuilderConfig& requested,
                                      const std::string& accuracy_json,
                                      const std::string& recorded_cache) {
  const auto start = std::chrono::steady_clock::now();
  const std::string model = model_name(graph);
  auto in_model = [&](const Status& status) { return status.with_context(model); };

  // The graph before the passes, without its weights: what `mlprt refit` re-derives from.
  std::string refit_json = refit::encode_refit_record(refit::make_refit_record(graph));
  if (requested.optimization_level < 0 || requested.optimization_level > 5) {
    return make_error(StatusCode::kInvalidArgument, "builder optimization level ",
                      requested.optimization_level,
                      " is out of range; allowed: 0 (no tactic "
                      "timing) to 5");
  }
  const BuilderConfig config = typed_config(graph, requested);
  MLPRT_RETURN_IF_ERROR(in_model(ir::optimize(graph)));
  MLPRT_RETURN_IF_ERROR(apply_io_formats(graph.inputs, config.input_formats, "input formats"));
  MLPRT_RETURN_IF_ERROR(apply_io_formats(graph.outputs, config.output_formats, "output formats"));
  MLPRT_RETURN_IF_ERROR(builder::check_precision_requests(graph, config));
  detail::log(Severity::kVerbose, "optimized graph: ", graph.nodes.size(), " layers");

  MLPRT_ASSIGN_OR_RETURN(const backend::Backend* backend, backend::select_backend(config.backend));
  MLPRT_RETURN_IF_ERROR(backend->check_available());
  MLPRT_ASSIGN_OR_RETURN(std::vector<OptimizationProfile> profiles,
                         builder::resolve_profiles(graph, config));
  MLPRT_RETURN_IF_ERROR(in_model(builder::check_profile_shapes(graph, profiles)));
  for (const ir::Node& node : graph.nodes) {
    MLPRT_RETURN_IF_ERROR(in_model(backend->supports(graph, node)));
  }
  plan::Plan plan;
  MLPRT_ASSIGN_OR_RETURN(plan.backend_blob, backend->compile(graph, profiles, config));
  plan.producer_version = kVersionString;
  plan.backend = backend->name();
  plan.hardware = backend->hardware_id();
  // The precisions the build permitted; each layer's actual one is in the backend's choice
  // (`inspect` shows both).
  plan.precision = "fp32";
  if (config.allow_tf32) plan.precision += "+tf32";
  if (config.allow_bf16) plan.precision += "+bf16";
  if (config.allow_fp16) plan.precision += "+fp16";
  nlohmann::json build_config = {
      {"backend", config.backend},
      {"profiles", profiles_to_json(config.profiles)},
      // The name only: a plan must not depend on where the cache lives.
      {"timing_cache", std::filesystem::path(recorded_cache).filename().string()},
      {"fp16", config.allow_fp16},
      {"bf16", config.allow_bf16},
      {"tf32", config.allow_tf32},
      {"precision_constraints", config.precision_constraints},
      {"layer_precisions", config.layer_precisions},
      {"input_formats", format_names(config.input_formats)},
      {"output_formats", format_names(config.output_formats)},
      {"threads", config.num_threads},
      {"optimization_level", config.optimization_level}};
  // Paths and layer names come from the caller: never let a non-UTF-8 byte throw here.
  plan.build_config_json =
      build_config.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  plan.row_independence = prove_row_independence(graph, profiles);
  plan.profiles = std::move(profiles);
  plan.graph = std::move(graph);
  plan.refit_json = std::move(refit_json);
  plan.accuracy_json = accuracy_json;

  // The summary first: serializing releases the plan's weights as it writes them.
  const std::string summary_head = summarize(plan);
  MLPRT_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, plan::serialize_plan(std::move(plan)));
  SerializedEngine engine;
  engine.summary = summary_head + format_bytes(bytes.size());
  engine.bytes = std::move(bytes);
  engine.build_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return engine;
}

}  // namespace

Result<SerializedEngine> build_serialized_engine(const Network& network,
                                                 const BuilderConfig& requested) {
  if (!requested.accuracy_budget) {
    return build_engine(network.graph(), requested, std::string(), requested.timing_cache_path);
  }
  // The budget's search names layers as the optimized graph does.
  ir::Graph graph = network.graph();
  MLPRT_RETURN_IF_ERROR(ir::optimize(graph).with_context(
      network.graph().source.empty() ? network.name() : network.graph().source));
  const auto start = std::chrono::steady_clock::now();
  Result<SerializedEngine> engine = builder::build_within_budget(
      graph, requested, [&](const BuilderConfig& config, const std::string& accuracy_json) {
        return build_engine(network.graph(), config, accuracy_json, requested.timing_cache_path);
      });
  if (engine.is_ok()) {
    engine->build_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return engine;
}

Result<SerializedEngine> build_serialized_engine(std::unique_ptr<Network> network,
                                                 const BuilderConfig& config) {
  if (!network) {
    return make_error(StatusCode::kInvalidArgument, "build_serialized_engine: no network");
  }
  // The accuracy budget's search builds several times from the network: it keeps it.
  if (config.accuracy_budget) return build_serialized_engine(*network, config);
  std::unique_ptr<ir::Graph> graph = std::move(*network).take_graph();
  network.reset();
  return build_engine(std::move(*graph), config, std::string(), config.timing_cache_path);
}

}  // namespace mlprt
