#pragma once
// mlprt bench --dumpProfile / --exportProfile: per-layer times through the ExecutionContext's
// Profiler, measured in a separate run after the timed one (as trtexec's --separateProfileRun),
// so that the latency numbers are those of unprofiled calls.

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "mlprt/engine.h"
#include "mlprt/status.h"

namespace mlprt::cli {

struct LayerProfileOptions {
  int iterations = 10;     ///< --iterations; the profiled run makes at least 10 calls
  double duration_s = 3.0; ///< --duration
  int warm_up_ms = 200;    ///< --warmUp, profiled calls whose times are dropped
  int threads = 0;         ///< --threads (host backends)
  bool split_batch = false;
};

struct LayerProfileRow {
  std::string name;
  double total_ms = 0;  ///< over every profiled call
  double average_ms = 0;
  double median_ms = 0;
  double percentage = 0;  ///< of the sum of the layers' average times
};

struct LayerProfile {
  std::vector<LayerProfileRow> rows;  ///< in the order the layers run
  size_t calls = 0;
  double total_average_ms = 0;  ///< sum of the rows' averages
};

/// Runs `engine` in `profile` with `shapes` (random inputs) on a context of its own with a
/// profiler set, until both options.iterations (at least 10) calls and options.duration_s.
Result<LayerProfile> profile_layers(const Engine& engine, int profile,
                                    const std::map<std::string, Dims>& shapes,
                                    const LayerProfileOptions& options);

/// trtexec's --dumpProfile table: layer, average ms, median ms, % of the total.
void print_layer_profile(std::ostream& out, const LayerProfile& profile);

/// --exportProfile: a JSON list, first {"count": calls, "totalAverageMs": ...}, then one
/// {"name", "timeMs", "averageMs", "medianMs", "percentage"} per layer; written atomically.
Status export_layer_profile(const std::string& path, const LayerProfile& profile);

/// Refuses an --exportProfile path whose folder does not exist, before the runs.
Status check_export_path(const std::string& flag, const std::string& path);

}  // namespace mlprt::cli
