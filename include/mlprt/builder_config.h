#pragma once
/// @file builder_config.h
/// What the builder is asked to produce: backend, optimization profiles, timing cache.

#include <string>
#include <vector>

#include "mlprt/optimization_profile.h"

namespace mlprt {

struct BuilderConfig {
  /// "auto" (the best backend available on this machine), or a backend name ("cpu").
  std::string backend = "auto";
  /// One entry per optimization profile. Empty: the network must have static input shapes and
  /// gets one profile with min = opt = max.
  std::vector<OptimizationProfile> profiles;
  /// Read before the build and updated after it when not empty.
  std::string timing_cache_path;
};

}  // namespace mlprt
