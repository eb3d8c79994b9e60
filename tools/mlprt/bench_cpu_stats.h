#pragma once
// `mlprt bench` on cpu plans: the figures beside the latency summary (cold start, memory, how
// close the engine's matmul work comes to the CPU's measured peak).

#include <map>
#include <string>

#include "mlprt/engine.h"

namespace mlprt::cli {

/// Peak resident set size of this process so far, in MiB (getrusage).
double peak_rss_mib();

/// Matmul work of one call: 2*M*K*N summed over the Dense layers, M the rows of the first
/// input at `shapes` (all dims but the last). 0 when the engine has no Dense layer.
double engine_flops(const Engine& engine, const std::map<std::string, Dims>& shapes);

/// The lowest precision the engine's layers run in ("bf16" for "fp32+bf16"): the precision
/// whose matmul peak bounds it.
std::string peak_precision(const EngineInfo& info);

}  // namespace mlprt::cli
