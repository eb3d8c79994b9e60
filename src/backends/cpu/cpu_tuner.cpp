#include "backends/cpu/cpu_tuner.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <limits>
#include <memory>
#include <new>
#include <set>

#include "backends/cpu/cpu_dense_run.h"
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
constexpr int kMinReps = 9;
constexpr int kMaxReps = 200;
constexpr int kBurst = 4;  // timed calls per round-robin turn
constexpr double kMinTotalUs = 2'000.0;
// A lower precision or an unfused epilogue must be this much faster than fp32 fused.
constexpr double kMarginFraction = 0.03;
// Part of the timing cache key: times measured by an older tuner (other timing method, no row
// split, scalar bf16 conversion) are not reused.
constexpr int kTunerVersion = 2;

// Our fp32 kernel (cpu_f32_gemm.h) holds its own packed copy of a layer's weights: it is offered
// for layers of up to this many weight bytes only. Bigger layers are bound by memory bandwidth
// or by the FMAs, where a oneDNN call's fixed 0.5-1 us is noise, and a second copy of their
// weights would cost the engine's memory (the 1024-4096-4096-1024 model: +100 MB).
constexpr int64_t kOwnKernelMaxWeightBytes = int64_t{4} << 20;

bool dense_transposed(const ir::Node& node) { return node.get_int("transpose_x", 0) != 0; }

bool own_kernel_candidate(const DenseSpec& spec) {
  return f32_gemm_available() && !spec.transpose_x &&
         spec.k * spec.n * static_cast<int64_t>(sizeof(float)) <= kOwnKernelMaxWeightBytes;
}

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
         " threads=" + std::to_string(threads > 0 ? threads : omp_get_max_threads()) +
         " tuner=" + std::to_string(kTunerVersion);
}

Status check_precision_config(const ir::Graph& graph, const BuilderConfig& config) {
  // The builder has checked the constraint mode, the precision values and the layer names.
  for (const auto& [name, precision] : config.layer_precisions) {
    if (name == "*") continue;
    const std::string& wanted = name;  // clang 14 cannot capture a structured binding
    const auto node = std::find_if(graph.nodes.begin(), graph.nodes.end(),
                                   [&](const ir::Node& n) { return n.name == wanted; });
    if (node != graph.nodes.end() && node->op != "Dense" && precision != "fp32" &&
        config.precision_constraints == "obey") {
      return make_error(StatusCode::kUnsupported, "layer precision '", name, ":", precision,
                        "' with constraints 'obey': layer '", name, "' is a ", node->op,
                        ", which the cpu backend runs in fp32 only");
    }
  }
  if (config.allow_fp16 && !fp16_gemm_available()) {
    detail::log(Severity::kInfo,
                fp16_kernel_compiled()
                    ? "cpu backend: fp16 permitted, but this CPU has no AVX-512 FP16 (the cpu "
                      "backend's fp16 kernel needs it): layers run in fp32"
                    : "cpu backend: fp16 permitted, but this build's compiler had no AVX-512 "
                      "FP16, so the fp16 kernel is not compiled in: layers run in fp32",
                config.allow_bf16 ? " or bf16" : "");
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
    const bool fp16_ok = fp16_gemm_available() && !dense_transposed(node);
    if (precision == "fp16" && fp16_ok) return std::vector<DensePrecision>{DensePrecision::kFp16};
    const std::string why = precision == "bf16" ? "this CPU has neither AVX-512 BF16 nor AMX"
                            : precision == "tf32"
                                ? "CPUs have no tf32 math"
                                : (fp16_gemm_available()
                                       ? "the cpu backend's fp16 kernel reads X row-major only "
                                         "(transpose_x = 1 here)"
                                       : "this CPU has no AVX-512 FP16 (the cpu backend's fp16 "
                                         "kernel needs it)");
    if (config.precision_constraints == "obey") {
      return make_error(StatusCode::kUnsupported, "cpu backend: ", describe(node), ": precision ",
                        precision,
                        " is required (--precisionConstraints=obey), "
                        "but ",
                        why, "; available here: fp32", cpu_has_bf16() ? ", bf16" : "",
                        fp16_ok ? ", fp16" : "");
    }
    detail::log(Severity::kWarning, "cpu backend: ", describe(node), ": ", precision,
                " preferred, but ", why, "; choosing among the permitted precisions");
  }
  std::vector<DensePrecision> out = {DensePrecision::kFp32};
  if (config.allow_bf16 && cpu_has_bf16()) out.push_back(DensePrecision::kBf16);
  if (config.allow_fp16 && fp16_gemm_available() && !dense_transposed(node)) {
    out.push_back(DensePrecision::kFp16);
  }
  return out;
}

Result<std::vector<double>> time_round_robin(size_t count,
                                             const std::function<Result<double>(size_t)>& run) {
  std::vector<std::vector<double>> runs(count);
  std::vector<double> total(count, 0.0);
  std::vector<bool> long_run(count, false);
  // Warm-up call (first touch of buffers and weights, thread wake-up), not counted.
  for (size_t i = 0; i < count; ++i) {
    MLPRT_ASSIGN_OR_RETURN(double us, run(i));
    long_run[i] = us > kLongRunUs;
  }
  for (int rep = 0; rep < kMaxReps; ++rep) {
    bool more = false;
    for (size_t i = 0; i < count; ++i) {
      const bool done = long_run[i] ? !runs[i].empty()
                                    : runs[i].size() >= static_cast<size_t>(kMinReps) &&
                                          total[i] >= kMinTotalUs;
      if (done) continue;
      // A burst per turn: one untimed call wakes the candidate's OpenMP threads (which sleep
      // while other candidates run), then back-to-back calls as an engine runs them.
      if (!long_run[i]) MLPRT_RETURN_IF_ERROR(run(i).status());
      for (int call = 0; call < (long_run[i] ? 1 : kBurst); ++call) {
        MLPRT_ASSIGN_OR_RETURN(double us, run(i));
        runs[i].push_back(us);
        total[i] += us;
      }
      more = true;
    }
    if (!more) break;
  }
  std::vector<double> medians(count);
  for (size_t i = 0; i < count; ++i) {
    std::sort(runs[i].begin(), runs[i].end());
    // The median, not the minimum: a tactic that is fast only now and then (a second thread
    // that must be woken up) must not win on its lucky runs.
    medians[i] = runs[i][runs[i].size() / 2];
  }
  return medians;
}

Result<std::vector<std::optional<double>>> Tuner::times_of(const ir::Graph& graph,
                                                           const ir::Node& node,
                                                           const DenseSpec& spec,
                                                           const std::vector<DenseTactic>& tactics,
                                                           int64_t m) {
  std::vector<std::optional<double>> out(tactics.size());
  std::vector<std::string> keys(tactics.size());
  // The candidates to time, each built as the engine would build it.
  struct Timed {
    size_t index = 0;
    DenseLayer layer;
    DenseRun run;
    ThreadPoolResources pool;
    std::vector<std::byte> scratchpad;
  };
  std::vector<std::unique_ptr<Timed>> timed;
  // The candidates' variants so far: a candidate whose primitive wants the weights in a layout
  // an earlier one packed shares that copy (the wide MLP's 4096x4096 layer held one 64 MiB
  // packed copy per candidate), as the engine's variants of one layer do.
  std::vector<DenseVariant> packed;
  try {
    dnnl::stream stream(m_engine);
    for (size_t i = 0; i < tactics.size(); ++i) {
      keys[i] = m_hardware + " | " + signature(spec, m) + " | " + describe(tactics[i]);
      if (std::optional<double> cached = m_cache.find(keys[i])) {
        if (m_counted.insert(keys[i]).second) ++m_stats.cached;
        out[i] = *cached;
        continue;
      }
      auto t = std::make_unique<Timed>();
      t->index = i;
      Result<DenseLayer> layer =
          make_dense_layer(m_engine, graph, node, {tactics[i]}, false, false, &packed);
      // A tactic oneDNN cannot build here is not a candidate; any other failure is an error.
      if (!layer && layer.status().code() == StatusCode::kUnsupported) continue;
      if (!layer) return layer.status();
      t->layer = std::move(layer).value();
      packed.insert(packed.end(), t->layer.variants.begin(), t->layer.variants.end());
      size_t scratch = 64;
      for (const DenseVariant& v : t->layer.variants) scratch = std::max(scratch, v.scratchpad_desc.get_size());
      if (tactics[i].row_split) {
        const std::vector<RowRange> blocks = split_rows(m, tactics[i].threads);
        MLPRT_RETURN_IF_ERROR(t->pool.reserve(m_engine, static_cast<int>(blocks.size()), scratch));
        MLPRT_RETURN_IF_ERROR(t->run.prepare_blocks(m_engine, node.name, t->layer, blocks, t->pool));
      } else {
        t->scratchpad.resize(scratch);
        MLPRT_RETURN_IF_ERROR(t->run.prepare_whole(m_engine, node.name, t->layer, m, stream,
                                                   t->scratchpad.data()));
      }
      timed.push_back(std::move(t));
    }
    if (timed.empty()) return out;
    const auto rows = static_cast<size_t>(m);
    std::vector<float> src(rows * static_cast<size_t>(spec.k), 0.5f);
    std::vector<float> dst(rows * static_cast<size_t>(spec.n));
    MLPRT_ASSIGN_OR_RETURN(
        std::vector<double> medians,
        time_round_robin(timed.size(), [&](size_t i) -> Result<double> {
          const auto start = Clock::now();
          MLPRT_RETURN_IF_ERROR(timed[i]->run.run(src.data(), dst.data()));
          return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
        }));
    for (size_t j = 0; j < timed.size(); ++j) {
      const size_t i = timed[j]->index;
      out[i] = medians[j];
      ++m_stats.timed;
      m_cache.insert(keys[i], medians[j]);
      m_counted.insert(keys[i]);
      detail::log(Severity::kVerbose, "cpu backend: ", describe(node), " M=", m, " ",
                  describe(tactics[i]), ": ", medians[j], " us");
    }
    return out;
  } catch (const dnnl::error& e) {
    return dnnl_failure(node, "time a tactic", e);
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kInternal, "cpu backend: ", describe(node),
                      ": out of memory timing M=", m);
  }
}

std::optional<std::vector<double>> Tuner::cached_engine_times(
    const std::vector<std::string>& keys) {
  std::vector<double> out;
  for (const std::string& key : keys) {
    std::optional<double> cached = m_cache.find(m_hardware + " | " + key);
    if (!cached) return std::nullopt;
    out.push_back(*cached);
  }
  for (const std::string& key : keys) {
    if (m_counted.insert(m_hardware + " | " + key).second) ++m_stats.cached;
  }
  return out;
}

Result<std::vector<double>> Tuner::time_engines(const std::vector<std::string>& keys,
                                                const std::function<Status(size_t)>& run) {
  std::vector<double> out(keys.size(), 0.0);
  std::vector<size_t> missing;
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string key = m_hardware + " | " + keys[i];
    if (std::optional<double> cached = m_cache.find(key)) {
      if (m_counted.insert(key).second) ++m_stats.cached;
      out[i] = *cached;
    } else {
      missing.push_back(i);
    }
  }
  if (missing.empty()) return out;
  MLPRT_ASSIGN_OR_RETURN(std::vector<double> medians,
                         time_round_robin(missing.size(), [&](size_t j) -> Result<double> {
                           const auto start = Clock::now();
                           MLPRT_RETURN_IF_ERROR(run(missing[j]));
                           return std::chrono::duration<double, std::micro>(Clock::now() - start)
                               .count();
                         }));
  for (size_t j = 0; j < missing.size(); ++j) {
    const std::string key = m_hardware + " | " + keys[missing[j]];
    out[missing[j]] = medians[j];
    ++m_stats.timed;
    m_cache.insert(key, medians[j]);
    m_counted.insert(key);
    detail::log(Severity::kVerbose, "cpu backend: ", keys[missing[j]], ": ", medians[j], " us");
  }
  return out;
}

namespace {

// The fastest of `tactics` by `times`; a tactic that is not fp32 and fused must beat the best
// fp32 fused one by the margin. Returns the index, or nullopt when none has a time.
std::optional<size_t> pick(const std::vector<DenseTactic>& tactics,
                           const std::vector<std::optional<double>>& times) {
  std::optional<size_t> best_plain;
  std::optional<size_t> best_other;
  for (size_t i = 0; i < tactics.size(); ++i) {
    if (!times[i]) continue;
    const bool plain = tactics[i].precision == DensePrecision::kFp32 && tactics[i].fused;
    std::optional<size_t>& best = plain ? best_plain : best_other;
    if (!best || *times[i] < *times[*best]) best = i;
  }
  if (!best_plain) return best_other;
  if (best_other && *times[*best_other] < *times[*best_plain] * (1.0 - kMarginFraction)) {
    return best_other;
  }
  return best_plain;
}

}  // namespace

Result<LayerTactics> Tuner::choose(const ir::Graph& graph, const ir::Node& node,
                                   const std::vector<int64_t>& profile_m,
                                   const std::vector<DensePrecision>& precisions) {
  MLPRT_ASSIGN_OR_RETURN(DenseSpec spec, dense_spec(graph, node));
  LayerTactics out;
  out.node = node.name;
  out.profile_m = profile_m;
  out.runtime = DenseTactic{-1, precisions.front(), WeightLayout::kPacked};
  // The runtime-M primitive serves every M of every profile: least summed time at the opt Ms.
  // Our fp32 kernel serves every M too (no oneDNN call: a batch away from the opt M, e.g. 1 in
  // a 1..64 profile, then skips oneDNN's runtime-M gemm, which costs 1.6 us at 784x32 where
  // our kernel takes 0.8).
  std::vector<DenseTactic> runtimes;
  for (DensePrecision precision : precisions) {
    runtimes.push_back(DenseTactic{-1, precision, WeightLayout::kPacked, 0, false,
                                   precision != DensePrecision::kFp16 ||
                                       spec.activation.kind == ir::ActivationKind::kNone});
    if (precision == DensePrecision::kFp32 && own_kernel_candidate(spec)) {
      DenseTactic own{-1, precision, WeightLayout::kPacked, 0};
      own.kernel = DenseKernel::kMlprt;
      runtimes.push_back(own);
    }
  }
  if (runtimes.size() > 1) {
    std::vector<std::optional<double>> sums(runtimes.size());
    for (int64_t m : profile_m) {
      if (m <= 0) continue;
      MLPRT_ASSIGN_OR_RETURN(auto times, times_of(graph, node, spec, runtimes, m));
      for (size_t i = 0; i < runtimes.size(); ++i) {
        if (times[i]) sums[i] = sums[i].value_or(0.0) + *times[i];
      }
    }
    if (std::optional<size_t> best = pick(runtimes, sums)) out.runtime = runtimes[*best];
  }
  const int threads = omp_get_max_threads();
  for (int64_t m : profile_m) {
    DenseTactic none;
    if (m <= 0) {
      out.per_profile.push_back(out.runtime);
      out.split_per_profile.push_back(none);
      continue;
    }
    std::vector<DenseTactic> candidates = {out.runtime};
    for (DensePrecision precision : precisions) {
      if (precision == DensePrecision::kFp16) {
        // One layout (our panels), the activation always a separate pass.
        const bool fused = spec.activation.kind == ir::ActivationKind::kNone;
        candidates.push_back(DenseTactic{m, precision, WeightLayout::kPacked, 0, false, fused});
        if (threads > 1) {
          candidates.push_back(DenseTactic{m, precision, WeightLayout::kPacked, 1, false, fused});
          if (m > 1) {
            candidates.push_back(
                DenseTactic{m, precision, WeightLayout::kPacked, threads, true, fused});
          }
        }
        continue;
      }
      candidates.push_back(DenseTactic{m, precision, WeightLayout::kPacked, 0});
      candidates.push_back(DenseTactic{m, precision, WeightLayout::kPlain, 0});
      if (precision == DensePrecision::kFp32 && own_kernel_candidate(spec)) {
        // Our own kernel (cpu_f32_gemm.h), no oneDNN call: on the team, on one thread, and
        // row-split as oneDNN's tactics are.
        const auto own = [&](int t, bool split) {
          DenseTactic tactic{m, precision, WeightLayout::kPacked, t, split};
          tactic.kernel = DenseKernel::kMlprt;
          return tactic;
        };
        candidates.push_back(own(0, false));
        if (threads > 1) {
          candidates.push_back(own(1, false));
          if (m > 1) candidates.push_back(own(threads, true));
        }
      }
      if (spec.activation.kind != ir::ActivationKind::kNone) {
        // Fused vs unfused, timed in the same rounds as the rest.
        candidates.push_back(DenseTactic{m, precision, WeightLayout::kPacked, 0, false, false});
      }
      if (threads > 1) {
        candidates.push_back(DenseTactic{m, precision, WeightLayout::kPacked, 1});
        if (m > 1 && !spec.transpose_x) {
          candidates.push_back(DenseTactic{m, precision, WeightLayout::kPacked, threads, true});
        }
      }
    }
    MLPRT_ASSIGN_OR_RETURN(auto times, times_of(graph, node, spec, candidates, m));
    const std::optional<size_t> best = pick(candidates, times);
    const DenseTactic chosen = best ? candidates[*best] : out.runtime;
    detail::log(Severity::kVerbose, "cpu backend: ", describe(node), " M=", m, ": chose ",
                describe(chosen), best ? " (" + std::to_string(*times[*best]) + " us)" : "");
    out.per_profile.push_back(chosen);
    // The row split the whole-chain mode would run: the fastest row split (margin rule too).
    std::vector<DenseTactic> splits;
    std::vector<std::optional<double>> split_times;
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (candidates[i].row_split) {
        splits.push_back(candidates[i]);
        split_times.push_back(times[i]);
      }
    }
    const std::optional<size_t> split = pick(splits, split_times);
    out.split_per_profile.push_back(split ? splits[*split] : none);
  }
  return out;
}

}  // namespace mlprt::backend::cpu
