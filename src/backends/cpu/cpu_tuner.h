#pragma once
// Tactic choice for the cpu backend's Dense layers, made at build time by timing.
//
// Per Dense layer and profile, at the profile's opt M, the candidates are: the layer's
// runtime-M primitive, a fixed-M primitive with packed (blocked) weights, one with plain
// weights, one planned for a single thread, and a row split over the engine's threads, each in
// every precision the layer may run in (fp32; bf16 where permitted and the CPU has it), and
// with an activation also the fixed-M packed one with the activation as a separate pass
// (unfused). In fp32 on AVX-512 CPUs, for layers of up to 4 MiB of weights, also our own kernel
// (cpu_f32_gemm.h): on the team, on one thread and row-split at the opt M, and as a runtime-M
// candidate. Fixed-M primitives only serve
// their own M, so every layer also keeps one runtime-M primitive, valid over the whole min..max
// range: its precision is the one with the least summed time over the profiles' opt M. Per
// profile the fastest candidate wins; a runtime-M winner adds no primitive.
//
// Timing: the candidates of one layer and M run round-robin, a burst of calls each per round
// (one untimed call first: a multi-thread candidate's OpenMP threads fall asleep while the
// others run, and waking them is not what a steady stream of inferences pays), as the
// context runs them (bf16 conversion, separate activation and OpenMP region included), until
// each has kMinReps calls and kMinTotalUs of time; each scores its median. Round-robin makes a
// burst of load on the shared machine hit every candidate alike. A lower precision or an
// unfused epilogue must beat the best fp32 fused time by kMarginFraction to be chosen, so that
// noise does not flip the choice between two equally fast tactics.
//
// Times come from the timing cache where it has them (key: layer signature + tactic + hardware,
// see timing_key); only the others are measured, so a warm cache makes the build skip timing and
// makes the choice, and so the plan, reproducible.

#include <cstdint>
#include <functional>
#include <optional>
#include <oneapi/dnnl/dnnl.hpp>
#include <set>
#include <string>
#include <vector>

#include "backends/cpu/cpu_dense.h"
#include "common/timing_cache.h"
#include "ir/graph.h"
#include "mlprt/builder_config.h"

namespace mlprt::backend::cpu {

/// The precisions a Dense layer may run in, from the builder flags and constraints; the first
/// is the default when nothing can be timed.
Result<std::vector<DensePrecision>> allowed_precisions(const ir::Node& node,
                                                       const BuilderConfig& config);

/// Checks --layerPrecisions / --precisionConstraints against the graph; logs what the CPU
/// cannot honour (fp16, tf32).
Status check_precision_config(const ir::Graph& graph, const BuilderConfig& config);

/// What the build chose for one Dense layer.
struct LayerTactics {
  std::string node;
  DenseTactic runtime;                   ///< m = -1
  std::vector<DenseTactic> per_profile;  ///< one per profile; m = -1: the runtime primitive
  std::vector<int64_t> profile_m;        ///< opt M per profile (0: no rows)
  /// Per profile the fastest row-split tactic (what the whole-chain split runs); m = -1: none.
  std::vector<DenseTactic> split_per_profile;
};

struct TuneStats {
  int timed = 0;
  int cached = 0;
};

class Tuner {
 public:
  Tuner(const dnnl::engine& engine, detail::TimingCache& cache, std::string hardware_key)
      : m_engine(engine), m_cache(cache), m_hardware(std::move(hardware_key)) {}

  /// Chooses the tactics of `node` given each profile's opt M.
  Result<LayerTactics> choose(const ir::Graph& graph, const ir::Node& node,
                              const std::vector<int64_t>& profile_m,
                              const std::vector<DensePrecision>& precisions);

  /// Times whole engines (e.g. per-layer plan vs whole-chain split) under `keys`, round-robin
  /// as for layers; a key found in the cache is not timed. `run(i)` runs engine i once.
  /// Every key's time from the timing cache, or nullopt if any is missing (then nothing counts
  /// as cached): lets a caller skip building what it would time.
  std::optional<std::vector<double>> cached_engine_times(const std::vector<std::string>& keys);
  Result<std::vector<double>> time_engines(const std::vector<std::string>& keys,
                                           const std::function<Status(size_t)>& run);

  [[nodiscard]] const TuneStats& stats() const noexcept { return m_stats; }
  [[nodiscard]] const std::string& hardware() const noexcept { return m_hardware; }

 private:
  /// Times of `tactics` at `m`; nullopt where oneDNN has no implementation of the tactic.
  Result<std::vector<std::optional<double>>> times_of(const ir::Graph& graph, const ir::Node& node,
                                                      const DenseSpec& spec,
                                                      const std::vector<DenseTactic>& tactics,
                                                      int64_t m);

  dnnl::engine m_engine;
  detail::TimingCache& m_cache;
  std::string m_hardware;
  TuneStats m_stats;
  /// Keys counted in this build, timed or from the cache: each counts once (the runtime-M
  /// tactic is looked up in the runtime choice and again among each profile's candidates).
  std::set<std::string> m_counted;
};

/// Medians of calls run round-robin: `run(i)` runs candidate i once and returns its time in
/// microseconds. Candidates whose first call takes over kLongRunUs are run once more only.
Result<std::vector<double>> time_round_robin(size_t count,
                                             const std::function<Result<double>(size_t)>& run);

/// The timing cache's hardware part: ISA, oneDNN version, thread count, tuner version.
std::string timing_hardware_key(int threads);

}  // namespace mlprt::backend::cpu
