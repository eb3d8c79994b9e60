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
  /// Lower precisions the builder may pick where the backend has a faster kernel in them, as
  /// TensorRT's BuilderFlag::kFP16 / kBF16 / kTF32; fp32 is always allowed. `inspect` shows the
  /// precision each layer runs in.
  bool allow_fp16 = false;
  bool allow_bf16 = false;
  bool allow_tf32 = false;
};

}  // namespace mlprt
