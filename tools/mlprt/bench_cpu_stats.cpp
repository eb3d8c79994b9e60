#include "bench_cpu_stats.h"

#include <sys/resource.h>

#include <cstdio>

namespace mlprt::cli {

double peak_rss_mib() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0.0;
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux: KiB
}

double engine_flops(const Engine& engine, const std::map<std::string, Dims>& shapes) {
  if (shapes.empty()) return 0.0;
  const Dims& first = shapes.begin()->second;
  double rows = 1.0;
  for (size_t i = 0; i + 1 < first.size(); ++i) rows *= static_cast<double>(first[i]);
  double flops = 0.0;
  for (const LayerInfo& layer : engine.info().layers) {
    long long k = 0, n = 0;
    // detail starts "KxN", e.g. "784x32 +bias relu".
    if (layer.type != "Dense" || std::sscanf(layer.detail.c_str(), "%lldx%lld", &k, &n) != 2) {
      continue;
    }
    flops += 2.0 * rows * static_cast<double>(k) * static_cast<double>(n);
  }
  return flops;
}

std::string peak_precision(const EngineInfo& info) {
  for (const char* low : {"bf16", "fp16"}) {
    if (info.precision.find(low) != std::string::npos) return low;
  }
  return "fp32";
}

}  // namespace mlprt::cli
