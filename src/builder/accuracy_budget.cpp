#include "builder/accuracy_budget.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <system_error>
#include <unistd.h>

#include "backends/profile_shapes.h"
#include "builder/profile_validation.h"
#include "common/check.h"
#include "common/log.h"
#include "mlprt/engine.h"
#include "mlprt/float16.h"
#include "mlprt/logger.h"

namespace mlprt::builder {
namespace {

using Clock = std::chrono::steady_clock;
using Assignment = std::map<std::string, std::string>;  // layer -> precision

bool is_view(const std::string& op) {
  return op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze";
}

std::string join_inputs(const ir::Graph& graph) {
  std::string names;
  for (const ir::TensorInfo& t : graph.inputs) {
    names += (names.empty() ? "'" : ", '") + t.name + "' " + ir::to_string(t.shape);
  }
  return names;
}

// Sub-builds log at warning and above only: the search's own lines say what it measured.
class QuietBuilds {
 public:
  QuietBuilds() : m_saved(log_severity()) {
    if (static_cast<int>(m_saved) > static_cast<int>(Severity::kWarning)) {
      set_log_severity(Severity::kWarning);
    }
  }
  ~QuietBuilds() { set_log_severity(m_saved); }
  QuietBuilds(const QuietBuilds&) = delete;
  QuietBuilds& operator=(const QuietBuilds&) = delete;

 private:
  Severity m_saved;
};

// A temporary timing cache shared by the search's builds when the caller gave none.
class SharedCache {
 public:
  explicit SharedCache(const std::string& given) {
    if (!given.empty()) {
      m_path = given;
      return;
    }
    static int counter = 0;
    m_path = (std::filesystem::temp_directory_path() /
              ("mlprt-accuracy-" + std::to_string(::getpid()) + "-" + std::to_string(++counter) +
               ".cache"))
                 .string();
    m_owned = true;
  }
  ~SharedCache() {
    if (m_owned) {
      std::error_code ec;
      std::filesystem::remove(m_path, ec);
    }
  }
  SharedCache(const SharedCache&) = delete;
  SharedCache& operator=(const SharedCache&) = delete;
  [[nodiscard]] const std::string& path() const { return m_path; }

 private:
  std::string m_path;
  bool m_owned = false;
};

struct Measurement {
  double error = 0.0;  // rel L2 of all outputs against float64
  double us = 0.0;     // median time of one call
};

class Calibration {
 public:
  Calibration(const ir::Graph& graph, std::map<std::string, CalibrationTensor> inputs)
      : m_graph(graph), m_inputs(std::move(inputs)) {}

  // Loads `bytes`, runs the calibration inputs, compares with float64 and times the calls.
  Result<Measurement> measure(const std::vector<uint8_t>& bytes) {
    MLPRT_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                           Engine::load(bytes, "accuracy budget candidate"));
    std::map<std::string, Dims> shapes;
    for (const auto& [name, t] : m_inputs) shapes[name] = t.dims;
    Result<int> profile = engine->find_profile(shapes);
    if (!profile.is_ok()) {
      return make_error(StatusCode::kInvalidArgument,
                        "accuracy budget: the calibration inputs match no optimization profile: ",
                        profile.status().message());
    }
    MLPRT_ASSIGN_OR_RETURN(std::unique_ptr<ExecutionContext> context,
                           engine->create_execution_context());
    MLPRT_RETURN_IF_ERROR(context->set_optimization_profile(*profile));
    // Inputs in the engine's input types; the reference sees the same (rounded) values.
    std::map<std::string, ReferenceTensor> ref_in;
    m_storage.clear();
    for (const auto& [name, t] : m_inputs) {
      const TensorDesc* desc = engine->find_io_tensor(name);
      if (desc == nullptr) {
        return make_error(StatusCode::kInvalidArgument, "accuracy budget: the engine has no input '",
                          name, "'");
      }
      MLPRT_RETURN_IF_ERROR(context->set_input_shape(name, t.dims));
      const size_t size = desc->dtype == DataType::kFloat32 ? 4 : 2;
      std::vector<uint8_t>& buffer = m_storage[name];
      buffer.resize(std::max<size_t>(t.values.size() * size, 1));
      convert_floats(t.values.data(), DataType::kFloat32, buffer.data(), desc->dtype,
                     t.values.size());
      std::vector<float> rounded(t.values.size());
      convert_floats(buffer.data(), desc->dtype, rounded.data(), DataType::kFloat32,
                     rounded.size());
      ref_in[name] = ReferenceTensor{t.dims, std::vector<double>(rounded.begin(), rounded.end())};
      MLPRT_RETURN_IF_ERROR(context->set_tensor_address(name, buffer.data()));
    }
    if (m_reference.empty()) {
      MLPRT_ASSIGN_OR_RETURN(m_reference, engine->reference_outputs(ref_in));
    }
    MLPRT_RETURN_IF_ERROR(context->enqueue());
    double diff = 0.0;
    double norm = 0.0;
    for (const auto& [name, ref] : m_reference) {
      MLPRT_ASSIGN_OR_RETURN(TensorView view, context->output(name));
      std::vector<float> got(ref.values.size());
      int64_t n = 1;
      for (int64_t d : view.dims) n *= d;
      if (static_cast<size_t>(n) != got.size()) {
        return make_error(StatusCode::kInternal, "accuracy budget: output '", name, "' has ", n,
                          " elements; the float64 reference has ", got.size());
      }
      convert_floats(view.data, view.dtype, got.data(), DataType::kFloat32, got.size());
      for (size_t i = 0; i < got.size(); ++i) {
        const double d = static_cast<double>(got[i]) - ref.values[i];
        diff += d * d;
        norm += ref.values[i] * ref.values[i];
      }
    }
    Measurement m;
    m.error = norm > 0.0 ? std::sqrt(diff / norm) : std::sqrt(diff);
    if (!std::isfinite(m.error)) m.error = std::numeric_limits<double>::infinity();
    MLPRT_ASSIGN_OR_RETURN(m.us, time_calls(*context));
    return m;
  }

 private:
  // Median of at least 10 calls and 0.2 s (at most 200 calls), after 3 warm-up calls.
  static Result<double> time_calls(ExecutionContext& context) {
    for (int i = 0; i < 3; ++i) MLPRT_RETURN_IF_ERROR(context.enqueue());
    std::vector<double> us;
    const auto start = Clock::now();
    while (us.size() < 200 &&
           (us.size() < 10 || Clock::now() - start < std::chrono::milliseconds(200))) {
      const auto t0 = Clock::now();
      MLPRT_RETURN_IF_ERROR(context.enqueue());
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    std::nth_element(us.begin(), us.begin() + static_cast<std::ptrdiff_t>(us.size() / 2),
                     us.end());
    return us[us.size() / 2];
  }

  const ir::Graph& m_graph;
  std::map<std::string, CalibrationTensor> m_inputs;
  std::map<std::string, std::vector<uint8_t>> m_storage;
  std::map<std::string, ReferenceTensor> m_reference;
};

Result<std::map<std::string, CalibrationTensor>> random_inputs(const ir::Graph& graph,
                                                               const BuilderConfig& config,
                                                               std::string& description) {
  MLPRT_ASSIGN_OR_RETURN(std::vector<OptimizationProfile> profiles,
                         resolve_profiles(graph, config));
  ir::ShapeMap shapes;
  if (profiles.empty()) {
    for (const ir::TensorInfo& t : graph.inputs) shapes[t.name] = ir::to_dims(t.shape);
  } else {
    MLPRT_ASSIGN_OR_RETURN(shapes, backend::opt_input_shapes(graph, profiles[0], 0));
  }
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::map<std::string, CalibrationTensor> out;
  description = "random data (uniform in [-1, 1], seed 0) in profile 0's opt shape";
  for (const ir::TensorInfo& t : graph.inputs) {
    CalibrationTensor& c = out[t.name];
    c.dims = shapes.at(t.name);
    MLPRT_ASSIGN_OR_RETURN(int64_t n, volume(c.dims));
    c.values.resize(static_cast<size_t>(n));
    for (float& v : c.values) v = uniform(rng);
    description += " " + t.name + ":" + to_string(c.dims);
  }
  return out;
}

std::string format_error(double e) {
  std::ostringstream os;
  os.precision(3);
  os << e;
  return os.str();
}

}  // namespace

Status check_accuracy_request(const ir::Graph& optimized, const BuilderConfig& config) {
  if (!config.accuracy_budget) return Status::ok();
  const double budget = *config.accuracy_budget;
  if (!std::isfinite(budget) || budget <= 0.0) {
    return make_error(StatusCode::kInvalidArgument, "accuracy budget ", budget,
                      ": must be a finite relative L2 error > 0 (e.g. 1e-3)");
  }
  if (!config.layer_precisions.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "layer precisions and an accuracy budget both choose each layer's precision: "
                  "give one of them (--layerPrecisions or --accuracyBudget)");
  }
  if (config.calibration_inputs.empty()) return Status::ok();
  const std::string from =
      config.calibration_source.empty() ? "" : " (from " + config.calibration_source + ")";
  for (const auto& [name, tensor] : config.calibration_inputs) {
    const ir::TensorInfo* input = optimized.find_input(name);
    if (input == nullptr) {
      return make_error(StatusCode::kInvalidArgument, "calibration input '", name, "'", from,
                        ": the network has no input of that name; its inputs: ",
                        join_inputs(optimized));
    }
    const Dims want = ir::to_dims(input->shape);
    bool fits = tensor.dims.size() == want.size();
    for (size_t i = 0; fits && i < tensor.dims.size(); ++i) {
      fits = tensor.dims[i] >= 0 && (want[i] < 0 || want[i] == tensor.dims[i]);
    }
    if (!fits) {
      return make_error(StatusCode::kInvalidArgument, "calibration input '", name, "'", from,
                        " has shape ", to_string(tensor.dims), "; the network's input '", name,
                        "' is ", ir::to_string(input->shape), " (a name: any size)");
    }
    Result<int64_t> n = volume(tensor.dims);
    if (!n.is_ok() || static_cast<size_t>(*n) != tensor.values.size()) {
      return make_error(StatusCode::kInvalidArgument, "calibration input '", name, "'", from,
                        " has ", tensor.values.size(), " values for shape ",
                        to_string(tensor.dims));
    }
  }
  for (const ir::TensorInfo& input : optimized.inputs) {
    if (!config.calibration_inputs.count(input.name)) {
      return make_error(StatusCode::kInvalidArgument, "calibration inputs", from,
                        " lack the network's input '", input.name, "'; give every input: ",
                        join_inputs(optimized));
    }
  }
  return Status::ok();
}

Result<SerializedEngine> build_within_budget(const ir::Graph& optimized,
                                             const BuilderConfig& config, const BuildFn& build) {
  MLPRT_RETURN_IF_ERROR(check_accuracy_request(optimized, config));
  const double budget = *config.accuracy_budget;
  const auto start = Clock::now();
  std::string source = config.calibration_source;
  std::map<std::string, CalibrationTensor> inputs = config.calibration_inputs;
  if (inputs.empty()) {
    MLPRT_ASSIGN_OR_RETURN(inputs, random_inputs(optimized, config, source));
    detail::log(Severity::kInfo, "accuracy budget: no calibration inputs given: calibrating on ",
                source);
  } else if (source.empty()) {
    source = "caller's arrays";
  }
  Calibration calibration(optimized, std::move(inputs));

  std::vector<std::string> layers;
  for (const ir::Node& node : optimized.nodes) {
    if (!is_view(node.op)) layers.push_back(node.name);
  }
  std::vector<std::string> lower;  // allowed lower precisions
  if (config.allow_tf32) lower.emplace_back("tf32");
  if (config.allow_fp16) lower.emplace_back("fp16");
  if (config.allow_bf16) lower.emplace_back("bf16");
  if (lower.empty()) {
    detail::log(Severity::kWarning, "accuracy budget: no lower precision is allowed (give "
                "--fp16, --bf16 or --tf32): every layer runs in fp32");
  }

  SharedCache cache(config.timing_cache_path);
  BuilderConfig sub = config;
  sub.accuracy_budget.reset();
  sub.calibration_inputs.clear();
  sub.precision_constraints = "obey";
  sub.timing_cache_path = cache.path();
  std::map<Assignment, Measurement> measured;
  auto measure = [&](const Assignment& assignment) -> Result<Measurement> {
    auto it = measured.find(assignment);
    if (it != measured.end()) return it->second;
    sub.layer_precisions = assignment;
    Result<SerializedEngine> engine = [&] {
      QuietBuilds quiet;
      return build(sub, std::string());
    }();
    if (!engine.is_ok()) return engine.status();
    MLPRT_ASSIGN_OR_RETURN(Measurement m, calibration.measure(engine->bytes));
    measured[assignment] = m;
    return m;
  };
  auto uniform = [&](const std::string& p) {
    Assignment a;
    for (const std::string& l : layers) a[l] = p;
    return a;
  };

  const Assignment fp32 = uniform("fp32");
  MLPRT_ASSIGN_OR_RETURN(const Measurement base, measure(fp32));
  detail::log(Severity::kInfo, "accuracy budget ", format_error(budget), ": all fp32: error ",
              format_error(base.error), ", ", base.us, " us per call on ", source);
  if (base.error > budget) {
    return make_error(StatusCode::kInvalidArgument, "accuracy budget ", format_error(budget),
                      " is unreachable: even with every layer in fp32 the error against float64 "
                      "on the calibration data is ",
                      format_error(base.error), "; give a budget >= that");
  }

  // Each layer alone in each lower precision.
  struct Move {
    std::string layer, precision;
    Measurement m;
    double added = 0.0, saved = 0.0;
  };
  std::vector<Move> moves;
  std::map<std::string, nlohmann::json> candidates;  // layer -> {precision: {error, us}}
  for (const std::string& layer : layers) {
    candidates[layer]["fp32"] = {{"error", base.error}, {"us", base.us}};
    for (const std::string& p : lower) {
      Assignment a = fp32;
      a[layer] = p;
      Result<Measurement> m = measure(a);
      if (!m.is_ok()) {
        if (m.status().code() != StatusCode::kUnsupported) return m.status();
        detail::log(Severity::kInfo, "accuracy budget: layer '", layer, "' in ", p,
                    ": not available (", m.status().message(), ")");
        continue;
      }
      Move move{layer, p, *m, std::max(m->error - base.error, 0.0), base.us - m->us};
      detail::log(Severity::kInfo, "accuracy budget: layer '", layer, "' alone in ", p,
                  ": error ", format_error(m->error), ", ", m->us, " us (", move.saved,
                  " us saved)");
      candidates[layer][p] = {{"error", m->error}, {"us", m->us}};
      if (move.saved > 0.0) moves.push_back(std::move(move));
    }
  }
  std::sort(moves.begin(), moves.end(), [](const Move& a, const Move& b) {
    const double ra = a.saved / (a.added + 1e-12);
    const double rb = b.saved / (b.added + 1e-12);
    return ra != rb ? ra > rb : a.saved > b.saved;
  });
  // Greedy on the predicted error (the fp32 floor plus the added errors).
  Assignment mix = fp32;
  std::map<std::string, const Move*> taken;
  std::vector<std::pair<std::string, const Move*>> history;  // layer, move it replaced
  double predicted = base.error;
  for (const Move& move : moves) {
    auto it = taken.find(move.layer);
    const Move* previous = it == taken.end() ? nullptr : it->second;
    if (previous != nullptr && move.saved <= previous->saved) continue;
    const double next = predicted - (previous ? previous->added : 0.0) + move.added;
    if (next > budget) continue;
    predicted = next;
    taken[move.layer] = &move;
    mix[move.layer] = move.precision;
    history.emplace_back(move.layer, previous);
  }
  // Verify on the whole network; undo the last moves while over budget.
  MLPRT_ASSIGN_OR_RETURN(Measurement mixed, measure(mix));
  while (mixed.error > budget && !history.empty()) {
    const auto [layer, previous] = history.back();
    history.pop_back();
    detail::log(Severity::kInfo, "accuracy budget: the mix's error ", format_error(mixed.error),
                " is over budget; layer '", layer, "' back to ",
                previous ? previous->precision : std::string("fp32"));
    mix[layer] = previous ? previous->precision : "fp32";
    if (previous) {
      taken[layer] = previous;
    } else {
      taken.erase(layer);
    }
    MLPRT_ASSIGN_OR_RETURN(mixed, measure(mix));
  }
  // The fastest measured assignment within budget: all fp32, the mix, or all of one precision.
  Assignment best = fp32;
  Measurement best_m = base;
  auto consider = [&](const Assignment& a, const Measurement& m) {
    if (m.error <= budget && m.us < best_m.us) {
      best = a;
      best_m = m;
    }
  };
  consider(mix, mixed);
  for (const std::string& p : lower) {
    const Assignment all = uniform(p);
    if (all == mix) continue;
    Result<Measurement> m = measure(all);
    if (!m.is_ok()) {
      if (m.status().code() != StatusCode::kUnsupported) return m.status();
      continue;
    }
    detail::log(Severity::kInfo, "accuracy budget: all ", p, ": error ", format_error(m->error),
                ", ", m->us, " us");
    consider(all, *m);
  }

  nlohmann::json per_layer = nlohmann::json::object();
  std::string text;
  for (const std::string& layer : layers) {
    const std::string& p = best.at(layer);
    const nlohmann::json& c = candidates[layer];
    // The network's error with this layer alone in its precision (fp32: the fp32 floor).
    const double error = c.contains(p) ? c[p]["error"].get<double>() : base.error;
    per_layer[layer] = {{"precision", p}, {"error", error}, {"candidates", c}};
    text += (text.empty() ? "" : ", ") + layer + ":" + p;
  }
  nlohmann::json accuracy = {{"budget", budget},
                             {"metric", "relative L2 of all outputs against float64"},
                             {"calibration", source},
                             {"error", best_m.error},
                             {"us", best_m.us},
                             {"fp32_error", base.error},
                             {"fp32_us", base.us},
                             {"layers", per_layer}};
  detail::log(Severity::kInfo, "accuracy budget ", format_error(budget), ": chose ", text,
              ": error ", format_error(best_m.error), " (fp32: ", format_error(base.error), "), ",
              best_m.us, " us per call (fp32: ", base.us, " us); ", measured.size(),
              " engines measured in ",
              std::chrono::duration<double>(Clock::now() - start).count(), " s");
  BuilderConfig chosen = sub;
  chosen.layer_precisions = best;
  return build(chosen, accuracy.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace mlprt::builder
