#pragma once
// How the cuda builder times things: calls captured into CUDA graphs (as users run engines), and
// the timing cache in front of them.

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <cuda_runtime.h>

#include "backends/cuda/cuda_common.h"
#include "common/check.h"
#include "common/timing_cache.h"
#include "mlprt/status.h"

namespace mlprt::backend::cuda {

/// Per-call times (us) of `fn` as a CUDA graph runs it: 3 warm-up calls on the stream, then
/// `calls` calls captured into one graph, replayed `replays` times, each replay event-timed.
template <typename Fn>
Result<std::vector<double>> graph_call_times_us(cudaStream_t stream, int calls, int replays,
                                                Fn&& fn) {
  constexpr int kWarmUp = 3;
  for (int i = 0; i < kWarmUp; ++i) MLPRT_RETURN_IF_ERROR(fn());
  MLPRT_CUDA_TRY(cudaStreamSynchronize(stream), "a tactic's warm-up");
  MLPRT_CUDA_TRY(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal),
                 "capturing a tactic");
  Status status = Status::ok();
  for (int i = 0; i < calls && status.is_ok(); ++i) status = fn();
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
  if (!status.is_ok()) {
    if (graph != nullptr) cudaGraphDestroy(graph);
    return status;
  }
  MLPRT_CUDA_TRY(ended, "capturing a tactic");
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  MLPRT_CUDA_TRY(made, "instantiating a tactic's graph");
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  std::vector<double> times;
  cudaError_t err = cudaEventCreate(&start);
  if (err == cudaSuccess) err = cudaEventCreate(&stop);
  if (err == cudaSuccess) err = cudaGraphLaunch(exec, stream);  // uploads the graph
  for (int rep = 0; rep < replays && err == cudaSuccess; ++rep) {
    float ms = 0.0f;
    if ((err = cudaEventRecord(start, stream)) != cudaSuccess) break;
    if ((err = cudaGraphLaunch(exec, stream)) != cudaSuccess) break;
    if ((err = cudaEventRecord(stop, stream)) != cudaSuccess) break;
    if ((err = cudaEventSynchronize(stop)) != cudaSuccess) break;
    if ((err = cudaEventElapsedTime(&ms, start, stop)) != cudaSuccess) break;
    times.push_back(static_cast<double>(ms) * 1000.0 / calls);
  }
  if (start != nullptr) cudaEventDestroy(start);
  if (stop != nullptr) cudaEventDestroy(stop);
  cudaGraphExecDestroy(exec);
  MLPRT_CUDA_TRY(err, "timing a tactic");
  return times;
}

/// A tactic's time: 10 calls in one graph, best of 3 replays. Stream-launched back to back, small
/// kernels measure the host's launch cost (cuBLASLt's is several us a call) rather than the
/// GPU's, which made a chain of cuBLASLt layers look slower than it runs in users' graphs.
template <typename Fn>
Result<double> time_us(cudaStream_t stream, Fn&& fn) {
  MLPRT_ASSIGN_OR_RETURN(std::vector<double> times,
                         graph_call_times_us(stream, 10, 3, std::forward<Fn>(fn)));
  return *std::min_element(times.begin(), times.end());
}

/// A whole call's time as users see it: one call per graph launch (its launch cost included),
/// median of 21 launches.
template <typename Fn>
Result<double> time_call_us(cudaStream_t stream, Fn&& fn) {
  MLPRT_ASSIGN_OR_RETURN(std::vector<double> times,
                         graph_call_times_us(stream, 1, 21, std::forward<Fn>(fn)));
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

/// Tactic times through the builder's timing cache: a key names the hardware, the layer's shape
/// and precision and the tactic; a warm cache answers without running anything.
struct TacticTimer {
  detail::TimingCache* cache = nullptr;  // nullptr: no --timingCacheFile
  std::string hardware;
  int timed = 0;
  int cached = 0;

  /// `time_us` of `fn`, or the cache's entry for `what`.
  template <typename Fn>
  Result<double> time(const std::string& what, cudaStream_t stream, Fn&& fn) {
    return cached_or(what, [&] { return time_us(stream, std::forward<Fn>(fn)); });
  }

  /// `measure()`'s result, or the cache's entry for `what`.
  template <typename Measure>
  Result<double> cached_or(const std::string& what, Measure&& measure) {
    const std::string key = key_of(what);
    if (cache != nullptr) {
      if (std::optional<double> us = cache->find(key)) {
        ++cached;
        return *us;
      }
    }
    MLPRT_ASSIGN_OR_RETURN(double us, measure());
    ++timed;
    if (cache != nullptr) cache->insert(key, us);
    return us;
  }

  // "graph": the times are of captured graphs (entries of stream-timed builds do not match).
  std::string key_of(const std::string& what) const { return hardware + " | graph | " + what; }
};

}  // namespace mlprt::backend::cuda
