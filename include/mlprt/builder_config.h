#pragma once
/// @file builder_config.h
/// What the builder is asked to produce: backend, optimization profiles, timing cache.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mlprt/optimization_profile.h"
#include "mlprt/tensor.h"

namespace mlprt {

/// One calibration input for an accuracy-budget build: float32 values, row-major, in `dims`.
struct CalibrationTensor {
  Dims dims;
  std::vector<float> values;
};

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
  /// How `layer_precisions` bind, as trtexec's --precisionConstraints: "none" (ignored),
  /// "prefer" (used where the backend has a kernel in that precision, else a warning and the
  /// backend's own choice), "obey" (the build fails where it has none).
  std::string precision_constraints = "none";
  /// Layer name (after fusion, as `mlprt inspect` lists them; "*": every layer) -> "fp32",
  /// "tf32", "fp16" or "bf16". The cuda backend runs each layer in its own precision (casts
  /// between them fused into a Dense layer's epilogue where cuBLASLt can write the next
  /// layer's type); the cpu backend has bf16 Dense layers (fp32 for the rest).
  std::map<std::string, std::string> layer_precisions;
  /// Data types of the engine's inputs and outputs, as trtexec's --inputIOFormats /
  /// --outputIOFormats: kFloat32, kFloat16 or kBFloat16, one per input (output) in the model's
  /// order, or a single one for all. Empty: the model's own types. The engine converts at its
  /// boundary where a type differs from the precision its first or last layer runs in.
  std::vector<DataType> input_formats;
  std::vector<DataType> output_formats;
  /// As trtexec's --builderOptimizationLevel (0..5, default 3): 0 times no tactic (every layer
  /// on its backend's default kernel: the fastest build, for tests and fuzzing); 1..5 time
  /// every candidate tactic (mlprt has one search depth).
  int optimization_level = 3;
  /// Host threads the engine is built, tuned and run for (cpu: OpenMP threads; recorded in the
  /// plan, used for the kernels created at load and by every context unless
  /// ExecutionContext::set_num_threads says otherwise); 0: OpenMP's default (OMP_NUM_THREADS
  /// or every core). Timing cache entries are per thread count.
  int num_threads = 0;
  /// As `mlprt build --accuracyBudget`: the largest relative L2 error of the outputs against
  /// float64 (the plan graph's reference evaluator) on the calibration inputs. Set, the builder
  /// measures each layer's error and speed in every allowed precision (fp32, plus fp16 / bf16 /
  /// tf32 where allowed and the backend has kernels in it) and builds the fastest assignment
  /// within the budget (greedy by time saved per error added, then verified on the whole network
  /// and backed off until within budget); `layer_precisions` and `precision_constraints` are
  /// then chosen by the builder. The plan records each layer's precision and measured error.
  /// Must be a finite number > 0. Unset: no budget.
  std::optional<double> accuracy_budget;
  /// Calibration inputs by input name (every input of the network). Empty: random data
  /// (uniform in [-1, 1], seed 0) in profile 0's opt shapes.
  std::map<std::string, CalibrationTensor> calibration_inputs;
  /// Where the calibration inputs came from, for the log and the plan (e.g. "x.npy").
  std::string calibration_source;
};

}  // namespace mlprt
