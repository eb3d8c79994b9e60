#pragma once
// mlprt bench's GPU measurement (cuda plans), as trtexec does it: per stream, the bench's own
// pinned host and device buffers, and CUDA events around the input copies (H2D), the engine's
// enqueue (GPU compute) and the output copies (D2H) of every iteration. With transfers, also
// the host path the library itself offers (pinned host memory bound to the context).

#include <map>
#include <string>
#include <vector>

#include "mlprt/engine.h"
#include "mlprt/status.h"

namespace mlprt::cli {

struct GpuBenchOptions {
  int iterations = 10;
  int warm_up_ms = 200;
  double duration_s = 3.0;
  bool use_cuda_graph = false;
  bool split_batch = false;  ///< --splitBatch
  bool no_data_transfers = false;
  int streams = 1;
};

/// One inference on one stream; GPU-event times in microseconds (h2d/d2h 0 without transfers).
struct GpuIteration {
  int stream = 0;
  double start_ms = 0;    ///< host time since the first timed iteration
  double latency_us = 0;  ///< h2d + compute + d2h, from the first event to the last
  double h2d_us = 0;
  double compute_us = 0;
  double d2h_us = 0;
  double enqueue_us = 0;  ///< host time of the enqueue call
};

struct GpuBenchResult {
  std::vector<GpuIteration> iterations;
  double walltime_s = 0;
  /// With transfers, a second run through the path the library gives users: pinned host
  /// buffers bound directly (TensorLocation::kHost), the context copying in and out itself
  /// (copies captured in its CUDA graph, small I/O read in place). Per call: GPU-event time
  /// around enqueue, and host time from enqueue to the outputs being in host memory.
  std::vector<double> host_path_us;
  std::vector<double> host_path_wall_us;
};

/// Runs `engine` (a cuda plan) in `profile` with `shapes` on options.streams contexts, each
/// with its own stream; every round issues one inference per stream and then waits for all.
Result<GpuBenchResult> run_gpu_bench(const Engine& engine, int profile,
                                     const std::map<std::string, Dims>& shapes,
                                     const GpuBenchOptions& options);

}  // namespace mlprt::cli
