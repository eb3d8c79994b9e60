#include "backends/cpu/cpu_backend.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <new>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>
#include <oneapi/dnnl/dnnl.hpp>

#include "backends/cpu/cpu_chain.h"
#include "backends/cpu/cpu_dense.h"
#include "backends/cpu/cpu_executable.h"
#include "backends/cpu/cpu_isa.h"
#include "backends/cpu/cpu_tuner.h"
#include "backends/profile_shapes.h"
#include "common/timing_cache.h"
#include "common/check.h"
#include "common/json_integer.h"
#include "common/log.h"
#include "ir/passes/passes.h"
#include "mlprt/float16.h"
#include "mlprt/host_cpu.h"

namespace mlprt::backend {
namespace {

using cpu::describe;

constexpr std::string_view kBlobFormat = "mlprt.cpu";
// 3: row-split and unfused tactics, whole-chain row counts.
constexpr int kBlobVersion = 3;
// Whole-chain row split is timed only below this much work (2*M*K*N summed over the Dense
// layers): above it the one fork/join it saves per layer is lost in the GEMMs, and timing two
// whole engines there would cost seconds of build.
constexpr double kChainMaxFlops = 2e9;
constexpr std::string_view kSupportedOps =
    "Dense, Add, Binary, Relu, Activation, Softmax, LayerNorm, ScaleShift, Reshape, Flatten, "
    "Squeeze, Unsqueeze, Transpose, Slice, ReduceMean, MatMul";

// dtype of `tensor` when the graph declares it (input, output, constant); nullopt for
// intermediates, whose dtype follows from their (already checked) producer.
std::optional<DataType> declared_dtype(const ir::Graph& graph, const std::string& tensor) {
  if (const ir::TensorInfo* input = graph.find_input(tensor)) return input->dtype;
  if (const ir::Constant* constant = graph.find_constant(tensor)) return constant->dtype;
  for (const ir::TensorInfo& output : graph.outputs) {
    if (output.name == tensor) return output.dtype;
  }
  return std::nullopt;
}

constexpr std::string_view kAllowedDtypes =
    "allowed: float32 constants, float32/float16/bfloat16 graph inputs and outputs";

// Graph inputs and outputs may be float16 / bfloat16 (converted at the engine's boundary);
// constants are float32 after ir::widen_float_constants.
bool allowed_dtype(const ir::Graph& graph, const std::string& tensor, DataType dtype) {
  if (dtype == DataType::kFloat32) return true;
  return !graph.is_constant(tensor) && is_io_float_type(dtype);
}

int64_t dense_rows(const cpu::DenseSpec& spec, const Dims& x) {
  if (spec.transpose_x) return x.size() == 2 ? x[1] : 0;
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < x.size(); ++i) rows *= x[i];
  return rows;
}

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }

  Status check_available() const override { return Status::ok(); }

  std::string hardware_id() const override { return cpu::cpu_hardware_id(); }

  Status check_hardware(const std::string& plan_hardware) const override {
    return cpu::check_cpu_hardware(plan_hardware, hardware_id());
  }

  Status supports(const ir::Graph& graph, const ir::Node& node) const override {
    static const std::set<std::string, std::less<>> kOps = {
        "Dense",      "Add",     "Binary",  "Relu",    "Activation", "Softmax",
        "LayerNorm",  "ScaleShift", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
        "Transpose",  "Slice",   "ReduceMean", "MatMul"};
    if (!kOps.count(node.op)) {
      return make_error(StatusCode::kUnsupported, "cpu backend: ", describe(node),
                        ": op is not supported; supported ops: ", kSupportedOps);
    }
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const std::string& tensor = node.inputs[i];
      if (tensor.empty()) continue;
      // Reshape may still carry its target shape as an int64 constant input.
      if (node.op == "Reshape" && i == 1 && graph.is_constant(tensor)) continue;
      const std::optional<DataType> dtype = declared_dtype(graph, tensor);
      if (dtype && !allowed_dtype(graph, tensor, *dtype)) {
        return make_error(StatusCode::kUnsupported, "cpu backend: ", describe(node), ": input '",
                          tensor, "' is ", to_string(*dtype), "; ", kAllowedDtypes);
      }
    }
    for (const std::string& tensor : node.outputs) {
      const std::optional<DataType> dtype = declared_dtype(graph, tensor);
      if (dtype && !allowed_dtype(graph, tensor, *dtype)) {
        return make_error(StatusCode::kUnsupported, "cpu backend: ", describe(node), ": output '",
                          tensor, "' is ", to_string(*dtype), "; ", kAllowedDtypes);
      }
    }
    if (node.op == "Dense") return cpu::dense_spec(graph, node).status();
    if (node.op == "Reshape" && !node.has_attribute("shape") &&
        !(node.inputs.size() > 1 && graph.is_constant(node.inputs[1]))) {
      return make_error(StatusCode::kUnsupported, "cpu backend: ", describe(node),
                        ": needs a constant target shape (attribute 'shape')");
    }
    return Status::ok();
  }

  Result<std::vector<uint8_t>> compile(const ir::Graph& graph,
                                       const std::vector<OptimizationProfile>& profiles,
                                       const BuilderConfig& config) const override {
    // Tactics are timed with the thread count the engine is built for; the building thread's
    // OpenMP setting is put back afterwards.
    const int caller_threads = omp_get_max_threads();
    if (config.num_threads > 0) omp_set_num_threads(config.num_threads);
    Result<std::vector<uint8_t>> blob = Status::ok();
    try {
      blob = compile_impl(graph, profiles, config);
    } catch (const dnnl::error& e) {
      blob = make_error(StatusCode::kInternal, "cpu backend: compile of '", graph.name,
                        "': oneDNN error: ", e.what());
    } catch (const nlohmann::json::exception& e) {
      blob = make_error(StatusCode::kInternal, "cpu backend: compile of '", graph.name,
                        "': JSON error: ", e.what());
    } catch (const std::bad_alloc&) {
      blob = make_error(StatusCode::kInternal, "cpu backend: compile of '", graph.name,
                        "': out of memory");
    }
    omp_set_num_threads(caller_threads);
    return blob;
  }

  Result<std::unique_ptr<Executable>> load(const ir::Graph& graph,
                                           std::span<const uint8_t> blob) const override {
    for (const ir::Node& node : graph.nodes) MLPRT_RETURN_IF_ERROR(supports(graph, node));
    std::map<std::string, std::vector<cpu::DenseTactic>> tactics;
    int threads = 0;
    std::vector<int64_t> chain_rows;
    std::vector<int64_t> amx_rows;
    try {
      if (!blob.empty()) {
        MLPRT_RETURN_IF_ERROR(parse_blob(graph, blob, tactics, threads, chain_rows, amx_rows));
      }
      MLPRT_ASSIGN_OR_RETURN(auto exe, cpu::CpuExecutable::create(graph, tactics, threads,
                                                                  chain_rows, false, amx_rows));
      return std::unique_ptr<Executable>(std::move(exe));
    } catch (const nlohmann::json::exception& e) {
      return make_error(StatusCode::kCorruptData, "cpu backend: the plan's cpu section for '",
                        graph.name, "' is not valid: ", e.what());
    } catch (const dnnl::error& e) {
      return make_error(StatusCode::kInternal, "cpu backend: loading '", graph.name,
                        "': oneDNN error: ", e.what());
    } catch (const std::bad_alloc&) {
      return make_error(StatusCode::kInternal, "cpu backend: out of memory loading '",
                        graph.name, "'");
    }
  }

  Result<BlobDescription> describe_blob(const ir::Graph& graph,
                                        std::span<const uint8_t> blob) const override {
    // As load() does, with primitive descriptors only: their implementation names are what
    // inspect shows, and no weight is read.
    std::map<std::string, std::vector<cpu::DenseTactic>> tactics;
    int threads = 0;
    std::vector<int64_t> chain_rows;
    std::vector<int64_t> amx_rows;
    try {
      if (!blob.empty()) {
        MLPRT_RETURN_IF_ERROR(parse_blob(graph, blob, tactics, threads, chain_rows, amx_rows));
      }
      MLPRT_ASSIGN_OR_RETURN(auto exe, cpu::CpuExecutable::create(graph, tactics, threads,
                                                                  chain_rows, true, amx_rows));
      return BlobDescription{exe->layer_precisions(), exe->tactic_notes()};
    } catch (const nlohmann::json::exception& e) {
      return make_error(StatusCode::kCorruptData, "cpu backend: the plan's cpu section for '",
                        graph.name, "' is not valid: ", e.what());
    } catch (const dnnl::error& e) {
      return make_error(StatusCode::kInternal, "cpu backend: describing '", graph.name,
                        "': oneDNN error: ", e.what());
    }
  }

  std::vector<std::string> blob_layer_precisions(const ir::Graph& graph,
                                                 std::span<const uint8_t> blob) const override {
    // Dense layers: the precisions of their tactics; the other layers run in fp32.
    std::vector<std::string> out(graph.nodes.size(), "fp32");
    const nlohmann::json json = nlohmann::json::parse(blob.begin(), blob.end(), nullptr, false);
    if (!json.is_object() || !json.contains("format") || json.at("format") != kBlobFormat ||
        !json.contains("layers") || !json.at("layers").is_array()) {
      return {};
    }
    for (const nlohmann::json& layer : json.at("layers")) {
      if (!layer.is_object() || !layer.contains("node") || !layer.at("node").is_string()) continue;
      std::set<std::string> precisions;
      auto add = [&](const nlohmann::json& tactic) {
        if (tactic.is_object() && tactic.contains("precision") &&
            tactic.at("precision").is_string()) {
          precisions.insert(tactic.at("precision").get<std::string>());
        }
      };
      if (layer.contains("runtime")) add(layer.at("runtime"));
      if (layer.contains("opt") && layer.at("opt").is_array()) {
        for (const nlohmann::json& opt : layer.at("opt")) add(opt);
      }
      std::string text;
      for (const std::string_view p : {std::string_view("fp32"), std::string_view("bf16"),
                                        std::string_view("fp16")}) {
        if (!precisions.count(std::string(p))) continue;
        if (!text.empty()) text += '+';
        text.append(p);
      }
      for (size_t i = 0; i < graph.nodes.size(); ++i) {
        if (graph.nodes[i].name == layer.at("node").get<std::string>()) out[i] = text;
      }
    }
    return out;
  }

 private:
  Result<std::vector<uint8_t>> compile_impl(const ir::Graph& graph,
                                            const std::vector<OptimizationProfile>& profiles,
                                            const BuilderConfig& config) const {
    for (const ir::Node& node : graph.nodes) MLPRT_RETURN_IF_ERROR(supports(graph, node));
    MLPRT_RETURN_IF_ERROR(cpu::check_precision_config(graph, config));
    log_host_cpu(config);
    const auto start = std::chrono::steady_clock::now();
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    std::vector<OptimizationProfile> points = profiles;
    const bool all_static = std::all_of(
        graph.inputs.begin(), graph.inputs.end(), [](const ir::TensorInfo& input) {
          return std::all_of(input.shape.begin(), input.shape.end(),
                             [](const ir::Dim& d) { return d.is_static(); });
        });
    // Without profiles a static graph has one implicit opt point; a dynamic one has none
    // and runs on the runtime-M primitives only.
    if (points.empty() && all_static) points.emplace_back();

    // Opt M of every Dense layer per profile.
    std::map<std::string, std::vector<int64_t>> opt_ms;
    std::vector<ir::ShapeMap> opt_shapes;
    for (size_t p = 0; p < points.size(); ++p) {
      MLPRT_ASSIGN_OR_RETURN(ir::ShapeMap inputs, opt_input_shapes(graph, points[p], p));
      MLPRT_ASSIGN_OR_RETURN(ir::ShapeMap shapes, ir::infer_shapes(graph, inputs));
      opt_shapes.push_back(shapes);
      for (const ir::Node& node : graph.nodes) {
        if (node.op != "Dense") continue;
        MLPRT_ASSIGN_OR_RETURN(cpu::DenseSpec spec, cpu::dense_spec(graph, node));
        opt_ms[node.name].push_back(dense_rows(spec, shapes.at(node.inputs[0])));
      }
    }

    detail::TimingCache cache;
    if (!config.timing_cache_path.empty()) {
      MLPRT_ASSIGN_OR_RETURN(cache, detail::TimingCache::load(config.timing_cache_path));
    }
    cpu::Tuner tuner(engine, cache, cpu::timing_hardware_key(config.num_threads));
    const size_t dense_count = opt_ms.size();
    size_t dense_index = 0;
    std::vector<cpu::LayerTactics> chosen_layers;
    for (const ir::Node& node : graph.nodes) {
      if (node.op != "Dense") continue;
      ++dense_index;
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (elapsed > 1.0) {
        detail::log(Severity::kInfo, "cpu backend: timing layer ", dense_index, "/", dense_count,
                    " (", node.name, ") after ", elapsed, " s");
      }
      MLPRT_ASSIGN_OR_RETURN(std::vector<cpu::DensePrecision> precisions,
                             cpu::allowed_precisions(node, config));
      if (config.optimization_level == 0) {
        // No timing: the runtime-M primitive in the first allowed precision (fp32 unless a
        // layer precision is obeyed), serving every M.
        cpu::LayerTactics fixed;
        fixed.node = node.name;
        fixed.runtime.precision = precisions.front();
        chosen_layers.push_back(std::move(fixed));
        continue;
      }
      MLPRT_ASSIGN_OR_RETURN(cpu::LayerTactics chosen,
                             tuner.choose(graph, node, opt_ms[node.name], precisions));
      chosen_layers.push_back(std::move(chosen));
    }
    std::vector<int64_t> chain_rows;
    for (size_t p = 0; p < opt_shapes.size() && config.optimization_level > 0; ++p) {
      MLPRT_ASSIGN_OR_RETURN(bool chain, choose_chain(graph, opt_shapes[p], p, config, tuner,
                                                      chosen_layers));
      if (chain) chain_rows.push_back(opt_shapes[p].at(graph.inputs.front().name).at(0));
    }
    std::vector<int64_t> amx_rows;
    for (size_t p = 0; p < opt_shapes.size() && config.optimization_level > 0; ++p) {
      MLPRT_ASSIGN_OR_RETURN(bool amx, choose_amx(graph, opt_shapes[p], p, config, tuner,
                                                  chosen_layers, chain_rows));
      if (amx) amx_rows.push_back(opt_shapes[p].at(graph.inputs.front().name).at(0));
    }
    nlohmann::json layers = nlohmann::json::array();
    for (const cpu::LayerTactics& chosen : chosen_layers) {
      nlohmann::json opt = nlohmann::json::array();
      for (size_t p = 0; p < chosen.per_profile.size(); ++p) {
        opt.push_back(tactic_to_json(chosen.per_profile[p], static_cast<int64_t>(p),
                                     chosen.profile_m[p]));
      }
      layers.push_back({{"node", chosen.node},
                        {"runtime", tactic_to_json(chosen.runtime, -1, -1)},
                        {"opt", opt}});
    }
    const cpu::TuneStats& stats = tuner.stats();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    detail::log(Severity::kInfo, "cpu backend: tactics: ", stats.timed, " timed, ",
                stats.cached, " from the timing cache, in ", seconds, " s");
    if (!config.timing_cache_path.empty() && cache.modified()) {
      MLPRT_RETURN_IF_ERROR(cache.save(config.timing_cache_path));
    }
    // Only choices go into the blob, never times, so that a given cache gives the same bytes.
    nlohmann::json blob = {{"format", kBlobFormat},
                           {"version", kBlobVersion},
                           {"hardware", hardware_id()},
                           {"onednn", onednn_version()},
                           {"threads", config.num_threads},
                           {"chain_rows", chain_rows},
                           {"layers", layers}};
    if (!amx_rows.empty()) blob["amx_rows"] = amx_rows;
    const std::string text =
        blob.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return std::vector<uint8_t>(text.begin(), text.end());
  }

  // The build log says whether bf16 gets AMX here; a warning where the CPU has AMX and bf16 is
  // permitted but oneDNN cannot use it.
  static void log_host_cpu(const BuilderConfig& config) {
    const HostCpuInfo cpu = host_cpu_info();
    const bool lost = cpu.amx_in_cpu && !cpu.amx_in_use && config.allow_bf16;
    detail::log(lost ? Severity::kWarning : Severity::kInfo, "cpu backend: ", cpu.isa, "; ",
                cpu.amx_note, "; AVX-512 FP16 ", cpu.avx512_fp16 ? "yes" : "no",
                "; mlprt fp32 kernel ", cpu.fp32_kernel ? "yes" : "no");
  }

  // " Dense(784x32,relu) Dense(32x10,none) ...": the graph's part of an engine timing key.
  static Result<std::string> nodes_signature(const ir::Graph& graph) {
    std::string out;
    for (const ir::Node& node : graph.nodes) {
      out += ' ';
      out += node.op;
      if (node.op != "Dense") continue;
      MLPRT_ASSIGN_OR_RETURN(cpu::DenseSpec spec, cpu::dense_spec(graph, node));
      out += '(';
      out += std::to_string(spec.k);
      out += 'x';
      out += std::to_string(spec.n);
      out += ',';
      out += node.get_string("activation", "none");
      if (ir::has_residual(node)) out += ",residual";
      out += ')';
    }
    return out;
  }

  // Whether profile `p` runs its whole chain row-split in one region: times the engine with
  // the per-layer choices against the one with every Dense layer's row split and the chain on;
  // on a win the layers' choices for `p` become their row splits.
  Result<bool> choose_chain(const ir::Graph& graph, const ir::ShapeMap& shapes, size_t p,
                            const BuilderConfig& config, cpu::Tuner& tuner,
                            std::vector<cpu::LayerTactics>& layers) const {
    if (omp_get_max_threads() < 2 || layers.empty() || graph.inputs.empty()) return false;
    const Dims& first = shapes.at(graph.inputs.front().name);
    if (first.empty() || first[0] < 2) return false;
    const int64_t rows = first[0];
    std::map<std::string, std::vector<cpu::DenseTactic>> per_layer;
    std::map<std::string, std::vector<cpu::DenseTactic>> split;
    std::string signature = graph.name;
    signature += " rows=";
    signature += std::to_string(rows);
    std::string per_layer_text;
    std::string split_text;
    double flops = 0;
    for (const cpu::LayerTactics& layer : layers) {
      const cpu::DenseTactic& mine = layer.per_profile[p];
      const cpu::DenseTactic& row_split = layer.split_per_profile[p];
      if (row_split.m < 0) return false;
      per_layer[layer.node] = {layer.runtime};
      if (mine.m >= 0) per_layer[layer.node].push_back(mine);
      split[layer.node] = {layer.runtime, row_split};
      per_layer_text += "; ";
      per_layer_text += describe(mine);
      split_text += "; ";
      split_text += describe(row_split);
    }
    MLPRT_ASSIGN_OR_RETURN(const std::string nodes, nodes_signature(graph));
    signature += nodes;
    for (const ir::Node& node : graph.nodes) {
      if (node.op != "Dense") continue;
      MLPRT_ASSIGN_OR_RETURN(cpu::DenseSpec spec, cpu::dense_spec(graph, node));
      flops += 2.0 * static_cast<double>(rows) * static_cast<double>(spec.k * spec.n);
    }
    if (flops > kChainMaxFlops) {
      detail::log(Severity::kVerbose, "cpu backend: profile ", p, ": whole-chain row split not "
                  "timed: ", flops, " flops per call, above ", kChainMaxFlops);
      return false;
    }
    const std::vector<std::string> keys = {
        "engine " + signature + " | per-layer" + per_layer_text,
        "engine " + signature + " | whole-chain row split" + split_text};
    // A warm cache decides without building the two engines (they were row-wise when timed).
    std::optional<std::vector<double>> times = tuner.cached_engine_times(keys);
    if (!times) {
      MLPRT_ASSIGN_OR_RETURN(times, time_chain_candidates(graph, shapes, p, config, tuner, keys,
                                                          per_layer, split, rows));
      if (!times) return false;
    }
    // The chain must win clearly, as a lower precision must (cpu_tuner.h).
    const bool chain = (*times)[1] < (*times)[0] * 0.97;
    detail::log(Severity::kVerbose, "cpu backend: profile ", p, " rows=", rows, ": per-layer ",
                (*times)[0], " us, whole-chain row split ", (*times)[1], " us: chose ",
                chain ? "the whole-chain row split" : "per-layer tactics");
    if (chain) {
      for (cpu::LayerTactics& layer : layers) layer.per_profile[p] = layer.split_per_profile[p];
    }
    return chain;
  }

  // Whether profile `p` runs on the AMX chain kernel (cpu_amx_mlp.h): where bf16 is allowed
  // in every layer and the graph is such a chain, times the engine as chosen so far against
  // the same engine with the kernel on at the opt rows; the kernel must win clearly.
  Result<bool> choose_amx(const ir::Graph& graph, const ir::ShapeMap& shapes, size_t p,
                          const BuilderConfig& config, cpu::Tuner& tuner,
                          const std::vector<cpu::LayerTactics>& layers,
                          const std::vector<int64_t>& chain_rows) const {
    if (!config.allow_bf16 || layers.empty() || graph.inputs.empty()) return false;
    const std::string why = cpu::CpuExecutable::amx_chain_ineligible(graph);
    const std::string unavailable = cpu::amx_mlp_unavailable();
    if (!why.empty() || !unavailable.empty()) {
      detail::log(Severity::kVerbose, "cpu backend: profile ", p, ": no AMX chain kernel: ",
                  why.empty() ? unavailable : why);
      return false;
    }
    for (const ir::Node& node : graph.nodes) {
      if (node.op != "Dense") continue;
      MLPRT_ASSIGN_OR_RETURN(std::vector<cpu::DensePrecision> precisions,
                             cpu::allowed_precisions(node, config));
      if (std::find(precisions.begin(), precisions.end(), cpu::DensePrecision::kBf16) ==
          precisions.end()) {
        detail::log(Severity::kVerbose, "cpu backend: profile ", p, ": no AMX chain kernel: layer '",
                    node.name, "' may not run in bf16");
        return false;
      }
    }
    const Dims& first = shapes.at(graph.inputs.front().name);
    if (first.empty() || first[0] < 1) return false;
    const int64_t rows = first[0];
    std::map<std::string, std::vector<cpu::DenseTactic>> tactics;
    std::string signature = graph.name;
    signature += " rows=";
    signature += std::to_string(rows);
    for (const cpu::LayerTactics& layer : layers) {
      tactics[layer.node] = {layer.runtime};
      if (layer.per_profile[p].m >= 0) tactics[layer.node].push_back(layer.per_profile[p]);
      signature += "; ";
      signature += describe(layer.per_profile[p]);
    }
    MLPRT_ASSIGN_OR_RETURN(const std::string nodes, nodes_signature(graph));
    signature += nodes;
    const bool chained =
        std::find(chain_rows.begin(), chain_rows.end(), rows) != chain_rows.end();
    const std::vector<std::string> keys = {
        "engine " + signature + (chained ? " | whole-chain row split" : " | per-layer"),
        "engine " + signature + " | AMX chain kernel"};
    std::optional<std::vector<double>> times = tuner.cached_engine_times(keys);
    if (!times) {
      MLPRT_ASSIGN_OR_RETURN(auto current, cpu::CpuExecutable::create(
                                               graph, tactics, config.num_threads,
                                               chained ? std::vector<int64_t>{rows}
                                                       : std::vector<int64_t>{}));
      MLPRT_ASSIGN_OR_RETURN(auto amx, cpu::CpuExecutable::create(graph, tactics,
                                                                  config.num_threads, {}, false,
                                                                  {rows}));
      MLPRT_ASSIGN_OR_RETURN(times, time_engines(graph, shapes, tuner, keys,
                                                 {current.get(), amx.get()}));
    }
    const bool amx = (*times)[1] < (*times)[0] * 0.97;
    detail::log(Severity::kVerbose, "cpu backend: profile ", p, " rows=", rows, ": as chosen ",
                (*times)[0], " us, AMX chain kernel ", (*times)[1], " us: chose ",
                amx ? "the AMX chain kernel" : "the layers as chosen");
    return amx;
  }

  // Builds the per-layer and the whole-chain engine and times both; nullopt when the graph is
  // not row-wise (no chain to time).
  Result<std::optional<std::vector<double>>> time_chain_candidates(
      const ir::Graph& graph, const ir::ShapeMap& shapes, size_t p, const BuilderConfig& config,
      cpu::Tuner& tuner, const std::vector<std::string>& keys,
      const std::map<std::string, std::vector<cpu::DenseTactic>>& per_layer,
      const std::map<std::string, std::vector<cpu::DenseTactic>>& split, int64_t rows) const {
    MLPRT_ASSIGN_OR_RETURN(auto plain, cpu::CpuExecutable::create(graph, per_layer,
                                                                  config.num_threads));
    const std::string why = cpu::ChainRun::why_not_row_wise(*plain, shapes);
    if (!why.empty()) {
      detail::log(Severity::kVerbose, "cpu backend: profile ", p,
                  ": no whole-chain row split: ", why);
      return std::optional<std::vector<double>>();
    }
    MLPRT_ASSIGN_OR_RETURN(auto chained, cpu::CpuExecutable::create(graph, split,
                                                                    config.num_threads, {rows}));
    MLPRT_ASSIGN_OR_RETURN(std::vector<double> times,
                           time_engines(graph, shapes, tuner, keys, {plain.get(), chained.get()}));
    return std::optional<std::vector<double>>(std::move(times));
  }

  // Times each engine at `shapes` on the same inputs (timing cache keys `keys`, one each).
  static Result<std::vector<double>> time_engines(
      const ir::Graph& graph, const ir::ShapeMap& shapes, cpu::Tuner& tuner,
      const std::vector<std::string>& keys, const std::vector<const cpu::CpuExecutable*>& exes) {
    std::vector<std::unique_ptr<BackendContext>> contexts;
    for (const cpu::CpuExecutable* exe : exes) {
      MLPRT_ASSIGN_OR_RETURN(auto context, exe->create_context());
      MLPRT_RETURN_IF_ERROR(context->prepare(shapes));
      contexts.push_back(std::move(context));
    }
    std::map<std::string, std::vector<float>> buffers;
    IoBindings io;
    for (const ir::TensorInfo& input : graph.inputs) {
      MLPRT_ASSIGN_OR_RETURN(int64_t n, volume(shapes.at(input.name)));
      buffers[input.name].assign(static_cast<size_t>(n), 0.5f);
      io.inputs[input.name] = buffers[input.name].data();
    }
    for (const ir::TensorInfo& output : graph.outputs) {
      MLPRT_ASSIGN_OR_RETURN(int64_t n, volume(shapes.at(output.name)));
      buffers[output.name].assign(static_cast<size_t>(n), 0.0f);
      io.outputs[output.name] = buffers[output.name].data();
    }
    return tuner.time_engines(keys, [&](size_t i) { return contexts[i]->execute(io, nullptr); });
  }

  static nlohmann::json tactic_to_json(const cpu::DenseTactic& tactic, int64_t profile,
                                       int64_t m) {
    nlohmann::json out = {{"precision", cpu::precision_name(tactic.precision)},
                          {"kind", tactic.m < 0 ? "runtime" : "fixed"},
                          {"layout", cpu::layout_name(tactic.layout)},
                          {"threads", tactic.threads},
                          {"row_split", tactic.row_split},
                          {"fused", tactic.fused}};
    // Written only for our own fp32 kernel: plans of oneDNN tactics keep their bytes.
    if (tactic.kernel == cpu::DenseKernel::kMlprt) out["kernel"] = cpu::kernel_name(tactic.kernel);
    if (profile >= 0) {
      out["profile"] = profile;
      out["m"] = m;
    }
    return out;
  }

  static Result<cpu::DenseTactic> tactic_from_json(const nlohmann::json& json, const std::string& node) {
    cpu::DenseTactic tactic;
    const std::string precision = json.at("precision").get<std::string>();
    const std::string kind = json.at("kind").get<std::string>();
    const std::string layout = json.at("layout").get<std::string>();
    if ((precision != "fp32" && precision != "bf16" && precision != "fp16") ||
        (kind != "runtime" && kind != "fixed") || (layout != "packed" && layout != "plain")) {
      return make_error(StatusCode::kCorruptData, "cpu backend: the plan's tactic for layer '",
                        node, "' is ", json.dump(), "; allowed: precision fp32|bf16|fp16, kind "
                        "runtime|fixed, layout packed|plain");
    }
    tactic.precision = precision == "bf16"   ? cpu::DensePrecision::kBf16
                       : precision == "fp16" ? cpu::DensePrecision::kFp16
                                             : cpu::DensePrecision::kFp32;
    if (tactic.precision == cpu::DensePrecision::kFp16 && !cpu::fp16_gemm_available()) {
      return make_error(StatusCode::kHardwareMismatch, "cpu backend: layer '", node,
                        "' runs in fp16 in this plan, but this CPU has no AVX-512 FP16; "
                        "rebuild the plan here");
    }
    const std::string kernel = json.value("kernel", std::string("onednn"));
    if (kernel != "onednn" && kernel != "mlprt") {
      return make_error(StatusCode::kCorruptData, "cpu backend: the plan's tactic for layer '",
                        node, "' has kernel '", kernel, "'; allowed: onednn (default), mlprt");
    }
    if (kernel == "mlprt") {
      if (precision != "fp32") {
        return make_error(StatusCode::kCorruptData, "cpu backend: the plan's tactic for layer '",
                          node, "' is ", json.dump(), "; kernel mlprt is allowed with precision "
                          "fp32 only");
      }
      if (!cpu::f32_gemm_available()) {
        return make_error(StatusCode::kHardwareMismatch, "cpu backend: layer '", node,
                          "' runs on the mlprt fp32 kernel in this plan, which needs AVX-512 "
                          "(F, BW, VL, DQ); this CPU (or ONEDNN_MAX_CPU_ISA) has not; rebuild "
                          "the plan here");
      }
      tactic.kernel = cpu::DenseKernel::kMlprt;
    }
    tactic.layout = layout == "plain" ? cpu::WeightLayout::kPlain : cpu::WeightLayout::kPacked;
    tactic.m = kind == "fixed" ? json_integer<int64_t>(json.at("m")) : -1;
    tactic.threads = json_integer<int>(json, "threads", 0);
    tactic.row_split = json.value("row_split", false);
    tactic.fused = json.value("fused", true);
    if (tactic.threads < 0 || (tactic.row_split && (tactic.threads < 1 || kind != "fixed"))) {
      return make_error(StatusCode::kCorruptData, "cpu backend: the plan's tactic for layer '",
                        node, "' has threads = ", tactic.threads, (tactic.row_split ? " with a row split" : ""),
                        "; allowed: 0 or more, 1 or more for a fixed-M row split");
    }
    if (kind == "fixed" && tactic.m <= 0) {
      return make_error(StatusCode::kCorruptData, "cpu backend: the plan's fixed-M tactic for "
                        "layer '", node, "' has M = ", tactic.m, "; allowed: M > 0");
    }
    if (tactic.precision == cpu::DensePrecision::kBf16 && !cpu::cpu_has_bf16()) {
      return make_error(StatusCode::kHardwareMismatch, "cpu backend: layer '", node,
                        "' runs in bf16 in this plan, but this CPU has neither AVX-512 BF16 "
                        "nor AMX; rebuild the plan here");
    }
    return tactic;
  }

  // The blob's optional list `key` of batch row counts, each at least `least`.
  static Status read_rows(const ir::Graph& graph, const nlohmann::json& json, const char* key,
                          int64_t least, const char* what, std::vector<int64_t>& out) {
    for (const nlohmann::json& r : json.value(key, nlohmann::json::array())) {
      const int64_t rows = json_integer<int64_t>(r);
      if (rows < least) {
        return make_error(StatusCode::kCorruptData, "cpu backend: the plan for '", graph.name,
                          "' asks for ", what, " at ", rows, " rows; allowed: ", least,
                          " or more");
      }
      out.push_back(rows);
    }
    return Status::ok();
  }

  Status parse_blob(const ir::Graph& graph, std::span<const uint8_t> blob,
                    std::map<std::string, std::vector<cpu::DenseTactic>>& tactics,
                    int& threads, std::vector<int64_t>& chain_rows,
                    std::vector<int64_t>& amx_rows) const {
    const nlohmann::json json = nlohmann::json::parse(blob.begin(), blob.end());
    if (!json.is_object() || json.value("format", "") != kBlobFormat) {
      return make_error(StatusCode::kCorruptData, "cpu backend: the plan's backend section for '",
                        graph.name, "' is not a cpu backend blob (format '", kBlobFormat,
                        "' expected)");
    }
    const int version = json_integer<int>(json.at("version"));
    if (version != kBlobVersion) {
      return make_error(StatusCode::kVersionMismatch, "cpu backend: blob version ", version,
                        " in the plan for '", graph.name, "'; this build reads version ",
                        kBlobVersion, " (version 3 added row-split and unfused tactics); "
                        "rebuild the plan");
    }
    MLPRT_RETURN_IF_ERROR(read_rows(graph, json, "chain_rows", 2, "a whole-chain row split",
                                    chain_rows));
    // Optional (absent from plans that never chose the AMX chain kernel).
    MLPRT_RETURN_IF_ERROR(read_rows(graph, json, "amx_rows", 1, "the AMX chain kernel", amx_rows));
    threads = json_integer<int>(json, "threads", 0);
    if (threads < 0) {
      return make_error(StatusCode::kCorruptData, "cpu backend: the plan for '", graph.name,
                        "' says threads = ", threads, "; allowed: 0 (default) or more");
    }
    for (const nlohmann::json& layer : json.at("layers")) {
      const std::string node_name = layer.at("node").get<std::string>();
      const auto node = std::find_if(graph.nodes.begin(), graph.nodes.end(),
                                     [&](const ir::Node& n) { return n.name == node_name; });
      if (node == graph.nodes.end() || node->op != "Dense") {
        return make_error(StatusCode::kCorruptData, "cpu backend: the plan's cpu section names "
                          "Dense layer '", node_name, "' which the graph of '", graph.name,
                          "' does not have");
      }
      std::vector<cpu::DenseTactic>& list = tactics[node_name];
      MLPRT_ASSIGN_OR_RETURN(cpu::DenseTactic runtime, tactic_from_json(layer.at("runtime"), node_name));
      if (runtime.m >= 0) {
        return make_error(StatusCode::kCorruptData, "cpu backend: the plan's runtime tactic for "
                          "layer '", node_name, "' is not of kind 'runtime'");
      }
      list.push_back(runtime);
      for (const nlohmann::json& opt : layer.at("opt")) {
        MLPRT_ASSIGN_OR_RETURN(cpu::DenseTactic tactic, tactic_from_json(opt, node_name));
        if (tactic.m >= 0) list.push_back(tactic);
      }
    }
    return Status::ok();
  }

  static std::string onednn_version() {
    const dnnl_version_t* v = dnnl_version();
    return std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
           std::to_string(v->patch);
  }
};

}  // namespace

const Backend& cpu_backend() {
  static const CpuBackend backend;
  return backend;
}

}  // namespace mlprt::backend
