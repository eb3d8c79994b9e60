#include "backends/cpu/cpu_tuner.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <limits>
#include <new>
#include <set>

#include "backends/cpu/cpu_isa.h"
#include "common/check.h"
#include "common/log.h"

namespace mlprt::backend::cpu {
namespace {

using Clock = std::chrono::steady_clock;
using dnnl::memory;

// A single run longer than this is timed once more (warm) instead of repeated: the wide layers
// at M=4096 take a second each, and the build must stay interactive.
constexpr double kLongRunUs = 20'000.0;
constexpr int kMinReps = 5;
constexpr int kMaxReps = 100;
constexpr double kMinTotalUs = 1'000.0;

const char* requested_precision(const ir::Node& node, const BuilderConfig& config) {
  if (config.precision_constraints == "none") return nullptr;
  auto it = config.layer_precisions.find(node.name);
  if (it == config.layer_precisions.end()) it = config.layer_precisions.find("*");
  return it == config.layer_precisions.end() ? nullptr : it->second.c_str();
}

std::string signature(const DenseSpec& spec, int64_t m) {
  return "Dense k=" + std::to_string(spec.k) + " n=" + std::to_string(spec.n) +
         " m=" + std::to_string(m) + " bias=" + (spec.has_bias ? "1" : "0") +
         " act=" + std::string(ir::activation_name(spec.activation.kind)) + "(" +
         std::to_string(spec.activation.alpha) + "," + std::to_string(spec.activation.beta) +
         ") tx=" + (spec.transpose_x ? "1" : "0") +
         " dtype=f32";
}

}  // namespace

std::string timing_hardware_key(int threads) {
  const dnnl_version_t* v = dnnl_version();
  return cpu_hardware_id() + " onednn=" + std::to_string(v->major) + "." +
         std::to_string(v->minor) + "." + std::to_string(v->patch) +
         " threads=" + std::to_string(threads > 0 ? threads : omp_get_max_threads());
}

Status check_precision_config(const ir::Graph& graph, const BuilderConfig& config) {
  static const std::set<std::string, std::less<>> kConstraints = {"none", "prefer", "obey"};
  static const std::set<std::string, std::less<>> kPrecisions = {"fp32", "fp16", "bf16"};
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
                        "': precision '", precision, "' is not one of fp32, fp16, bf16");
    }
    if (name == "*") continue;
    const std::string& wanted = name;  // clang 14 cannot capture a structured binding
    const auto node = std::find_if(graph.nodes.begin(), graph.nodes.end(),
                                   [&](const ir::Node& n) { return n.name == wanted; });
    if (node == graph.nodes.end()) {
      return make_error(StatusCode::kNotFound, "layer precision '", name, ":", precision,
                        "': the optimized graph of '", graph.name, "' has no layer '", name,
                        "'; its layers (as mlprt inspect lists them) are ", layer_names);
    }
    if (node->op != "Dense" && precision != "fp32" && config.precision_constraints == "obey") {
      return make_error(StatusCode::kUnsupported, "layer precision '", name, ":", precision,
                        "' with constraints 'obey': layer '", name, "' is a ", node->op,
                        ", which the cpu backend runs in fp32 only");
    }
  }
  if (!config.layer_precisions.empty() && config.precision_constraints == "none") {
    detail::log(Severity::kWarning,
                "cpu backend: layer precisions are ignored with precision "
                "constraints 'none'; use --precisionConstraints=obey or prefer");
  }
  if (config.allow_fp16) {
    detail::log(
        Severity::kInfo, "cpu backend: fp16 permitted, but ",
        cpu_has_fp16() ? "the cpu backend has no fp16 kernels yet" : "this CPU has no AVX-512 FP16",
        ": layers run in fp32", config.allow_bf16 ? " or bf16" : "");
  }
  if (config.allow_tf32) {
    detail::log(Severity::kInfo,
                "cpu backend: tf32 permitted, but CPUs have no tf32 math: "
                "layers run in fp32",
                config.allow_bf16 ? " or bf16" : "");
  }
  if (config.allow_bf16 && !cpu_has_bf16()) {
    detail::log(Severity::kInfo,
                "cpu backend: bf16 permitted, but this CPU has neither "
                "AVX-512 BF16 nor AMX: layers run in fp32");
  }
  return Status::ok();
}

Result<std::vector<DensePrecision>> allowed_precisions(const ir::Node& node,
                                                       const BuilderConfig& config) {
  if (const char* requested = requested_precision(node, config)) {
    const std::string precision = requested;
    if (precision == "fp32") return std::vector<DensePrecision>{DensePrecision::kFp32};
    if (precision == "bf16" && cpu_has_bf16()) {
      return std::vector<DensePrecision>{DensePrecision::kBf16};
    }
    const std::string why = precision == "bf16" ? "this CPU has neither AVX-512 BF16 nor AMX"
                                                : "the cpu backend has no fp16 kernels";
    if (config.precision_constraints == "obey") {
      return make_error(StatusCode::kUnsupported, "cpu backend: ", describe(node), ": precision ",
                        precision,
                        " is required (--precisionConstraints=obey), "
                        "but ",
                        why, "; available here: fp32", cpu_has_bf16() ? ", bf16" : "");
    }
    detail::log(Severity::kWarning, "cpu backend: ", describe(node), ": ", precision,
                " preferred, but ", why, "; choosing among the permitted precisions");
  }
  std::vector<DensePrecision> out = {DensePrecision::kFp32};
  if (config.allow_bf16 && cpu_has_bf16()) out.push_back(DensePrecision::kBf16);
  return out;
}

Result<double> Tuner::time_of(const ir::Graph& graph, const ir::Node& node, const DenseSpec& spec,
                              const DenseTactic& tactic, int64_t m) {
  const std::string key = m_hardware + " | " + signature(spec, m) + " | " + describe(tactic);
  if (std::optional<double> cached = m_cache.find(key)) {
    if (!m_measured.count(key)) ++m_stats.cached;
    return *cached;
  }
  MLPRT_ASSIGN_OR_RETURN(double us, measure(graph, node, spec, tactic, m));
  ++m_stats.timed;
  m_cache.insert(key, us);
  m_measured.insert(key);
  detail::log(Severity::kVerbose, "cpu backend: ", describe(node), " M=", m, " ", describe(tactic),
              ": ", us, " us");
  return us;
}

Result<double> Tuner::measure(const ir::Graph& graph, const ir::Node& node, const DenseSpec& spec,
                              const DenseTactic& tactic, int64_t m) {
  try {
    dnnl::stream stream(m_engine);
    MLPRT_ASSIGN_OR_RETURN(DenseVariant variant,
                           make_dense_variant(m_engine, stream, graph, node, spec, tactic));
    const auto rows = static_cast<size_t>(m);
    std::vector<float> src(rows * static_cast<size_t>(spec.k), 0.5f);
    std::vector<float> dst(rows * static_cast<size_t>(spec.n));
    std::vector<float> bias_data(static_cast<size_t>(spec.n), 0.25f);
    std::vector<std::byte> scratch(std::max<size_t>(variant.scratchpad_desc.get_size(), 1));
    memory src_mem(dense_src_desc(spec, m), m_engine, src.data());
    memory dst_mem(dense_dst_desc(spec, m), m_engine, dst.data());
    memory scratch_mem(variant.scratchpad_desc, m_engine, scratch.data());
    memory bias_mem;
    if (spec.has_bias) {
      bias_mem = memory(memory::desc({1, spec.n}, memory::data_type::f32, memory::format_tag::ab),
                        m_engine, bias_data.data());
    }
    const bool bf16 = tactic.precision == DensePrecision::kBf16;
    std::vector<uint16_t> low_data(bf16 ? src.size() : 1);
    memory low_mem;
    if (bf16) {
      low_mem = memory(memory::desc({m, spec.k}, memory::data_type::bf16, memory::dims{spec.k, 1}),
                       m_engine, low_data.data());
    }
    std::array<dnnl_exec_arg_t, 5> args{};
    int nargs = 0;
    args[static_cast<size_t>(nargs++)] = {DNNL_ARG_SRC, bf16 ? low_mem.get() : src_mem.get()};
    args[static_cast<size_t>(nargs++)] = {DNNL_ARG_WEIGHTS, variant.weights.get()};
    if (spec.has_bias) args[static_cast<size_t>(nargs++)] = {DNNL_ARG_BIAS, bias_mem.get()};
    args[static_cast<size_t>(nargs++)] = {DNNL_ARG_DST, dst_mem.get()};
    args[static_cast<size_t>(nargs++)] = {DNNL_ARG_SCRATCHPAD, scratch_mem.get()};

    // Times one call as the context makes it (C API, src conversion included).
    auto run_once = [&]() -> Result<double> {
      const auto start = Clock::now();
      if (bf16) convert_src_to_bf16(spec, m, src.data(), low_data.data());
      dnnl_status_t st =
          dnnl_primitive_execute(variant.primitive.get(), stream.get(), nargs, args.data());
      if (st == dnnl_success) st = dnnl_stream_wait(stream.get());
      if (st != dnnl_success) {
        return make_error(StatusCode::kInternal, "cpu backend: ", describe(node), ": timing ",
                          describe(tactic), " at M=", m, " failed (dnnl status ",
                          static_cast<int>(st), ")");
      }
      return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
    };
    MLPRT_ASSIGN_OR_RETURN(double first, run_once());
    if (first > kLongRunUs) return run_once();
    // The median, not the minimum: a tactic that is fast only now and then (a second thread
    // that must be woken up) must not win on its lucky runs.
    std::vector<double> runs;
    double total = 0;
    for (int rep = 0; rep < kMaxReps && (rep < kMinReps || total < kMinTotalUs); ++rep) {
      MLPRT_ASSIGN_OR_RETURN(double us, run_once());
      runs.push_back(us);
      total += us;
    }
    std::sort(runs.begin(), runs.end());
    return runs[runs.size() / 2];
  } catch (const dnnl::error& e) {
    return dnnl_failure(node, "time a tactic", e);
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kInternal, "cpu backend: ", describe(node),
                      ": out of memory timing M=", m);
  }
}

Result<LayerTactics> Tuner::choose(const ir::Graph& graph, const ir::Node& node,
                                   const std::vector<int64_t>& profile_m,
                                   const std::vector<DensePrecision>& precisions) {
  MLPRT_ASSIGN_OR_RETURN(DenseSpec spec, dense_spec(graph, node));
  LayerTactics out;
  out.node = node.name;
  out.profile_m = profile_m;
  out.runtime = DenseTactic{-1, precisions.front(), WeightLayout::kPacked};
  // The runtime-M primitive serves every M of every profile: least summed time at the opt Ms.
  if (precisions.size() > 1) {
    double best = std::numeric_limits<double>::max();
    for (DensePrecision precision : precisions) {
      const DenseTactic tactic{-1, precision, WeightLayout::kPacked};
      double sum = 0;
      bool any = false;
      for (int64_t m : profile_m) {
        if (m <= 0) continue;
        MLPRT_ASSIGN_OR_RETURN(double us, time_of(graph, node, spec, tactic, m));
        sum += us;
        any = true;
      }
      if (any && sum < best) {
        best = sum;
        out.runtime = tactic;
      }
    }
  }
  for (int64_t m : profile_m) {
    if (m <= 0) {
      out.per_profile.push_back(out.runtime);
      continue;
    }
    DenseTactic best_tactic = out.runtime;
    MLPRT_ASSIGN_OR_RETURN(double best, time_of(graph, node, spec, out.runtime, m));
    std::vector<DenseTactic> candidates;
    for (DensePrecision precision : precisions) {
      candidates.push_back(DenseTactic{m, precision, WeightLayout::kPacked, 0});
      candidates.push_back(DenseTactic{m, precision, WeightLayout::kPlain, 0});
      if (omp_get_max_threads() > 1) {
        candidates.push_back(DenseTactic{m, precision, WeightLayout::kPacked, 1});
      }
    }
    for (const DenseTactic& tactic : candidates) {
      Result<double> us = time_of(graph, node, spec, tactic, m);
      // A tactic oneDNN cannot build here is not a candidate; any other failure is an error.
      if (!us && us.status().code() == StatusCode::kUnsupported) continue;
      if (!us) return us.status();
      if (*us < best) {
        best = *us;
        best_tactic = tactic;
      }
    }
    detail::log(Severity::kVerbose, "cpu backend: ", describe(node), " M=", m, ": chose ",
                describe(best_tactic), " (", best, " us)");
    out.per_profile.push_back(best_tactic);
  }
  return out;
}

}  // namespace mlprt::backend::cpu
