#pragma once
// The subcommands of mlprt. Each one registers its own flags on the CLI11 app and runs from the
// parsed values, returning the process exit code (see cli_common.h).

#include <cstdint>
#include <string>
#include <vector>

#include "mlprt/hardware_policy.h"
#include "shape_flags.h"

namespace CLI {
class App;
}

namespace mlprt::cli {

struct BuildOptions {
  std::string onnx;
  std::string save_engine;
  std::string backend = "auto";
  ShapeFlags shape_flags;
  std::string timing_cache_file;
  int device = -1;  ///< -1: not given (the current GPU)
  bool fp16 = false;
  bool bf16 = false;
  bool tf32 = false;
  std::string precision_constraints = "none";
  std::vector<std::string> layer_precisions;  ///< "name:prec,..." values, as given
  int threads = 0;                            ///< --threads; 0: OpenMP's default
  int optimization_level = 3;                 ///< --builderOptimizationLevel
  std::vector<std::string> input_formats;     ///< --inputIOFormats values, as given
  std::vector<std::string> output_formats;    ///< --outputIOFormats values, as given
  std::string accuracy_budget;                  ///< --accuracyBudget, as given; empty: none
  std::vector<std::string> calibration_inputs;  ///< --calibrationInputs values, as given
};
/// Adds the builder flags (backend, shapes, precision, timing cache) shared by build and bench;
/// --onnx and --saveEngine are left to the caller.
void add_builder_flags(CLI::App& cmd, BuildOptions& options);
/// Builds from the flags: prints the build report and writes --saveEngine when given. Returns
/// the plan bytes, or the exit code to return (usage error 2, runtime error 1).
struct BuiltPlan {
  std::vector<uint8_t> bytes;
  int exit_code = 0;  ///< non-zero: failed, already reported
};
BuiltPlan build_from_flags(const BuildOptions& options);
CLI::App* add_build_command(CLI::App& app, BuildOptions& options);
int run_build_command(const BuildOptions& options);

struct BenchOptions {
  BuildOptions build;
  std::string load_engine;
  int iterations = 10;
  int warm_up_ms = 200;
  double duration_s = 3.0;
  std::string export_times;
  std::string percentiles = "90,95,99";
  bool use_cuda_graph = false;
  bool no_data_transfers = false;
  int inf_streams = 1;
  std::string hardware_mismatch = "retune";  ///< --hardwareMismatch (with --loadEngine)
  bool split_batch = false;  ///< --splitBatch (a --shapes batch past every profile)
  bool dump_profile = false;   ///< --dumpProfile: per-layer table after the timed run
  std::string export_profile;  ///< --exportProfile: per-layer times as JSON
};
CLI::App* add_bench_command(CLI::App& app, BenchOptions& options);
int run_bench_command(const BenchOptions& options);

struct RunOptions {
  std::string load_engine;
  std::vector<std::string> load_inputs;
  std::vector<std::string> export_outputs;
  int profile = -1;     ///< -1: the first profile that holds the input shapes
  long long batch = 0;  ///< 0: the whole input in one call
  int iterations = 1;
  int warm_up_ms = 0;
  bool check = false;              ///< compare with the float64 reference evaluator
  double check_tolerance = 1e-5;   ///< largest rel L2 error --check accepts
  int device = -1;                 ///< -1: not given (the current GPU)
  std::string hardware_mismatch = "retune";  ///< --hardwareMismatch
  bool split_batch = false;        ///< --splitBatch: a batch past every profile runs in chunks
};
CLI::App* add_run_command(CLI::App& app, RunOptions& options);
int run_run_command(const RunOptions& options);

struct InspectOptions {
  std::string load_engine;
  bool json = false;
  std::string hardware_mismatch = "retune";  ///< --hardwareMismatch
};
CLI::App* add_inspect_command(CLI::App& app, InspectOptions& options);
int run_inspect_command(const InspectOptions& options);

struct RefitOptions {
  std::string load_engine;
  std::string onnx;
  std::string weights;
  std::string save_engine;
};
CLI::App* add_refit_command(CLI::App& app, RefitOptions& options);
int run_refit_command(const RefitOptions& options);

/// --hardwareMismatch=retune|refuse|fallback on a command that loads a plan (retune_command.cpp).
void add_hardware_mismatch_flag(CLI::App& cmd, std::string& value);
/// The load options of a validated --hardwareMismatch value.
EngineLoadOptions load_options(const std::string& hardware_mismatch);

struct RetuneOptions {
  std::string load_engine;
  std::string save_engine;
  std::string hardware_mismatch = "retune";
};
CLI::App* add_retune_command(CLI::App& app, RetuneOptions& options);
int run_retune_command(const RetuneOptions& options);

}  // namespace mlprt::cli
