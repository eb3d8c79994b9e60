#pragma once
// The subcommands of mlprt. Each one registers its own flags on the CLI11 app and runs from the
// parsed values, returning the process exit code (see cli_common.h).

#include <cstdint>
#include <string>
#include <vector>

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
  bool split_batch = false;  ///< --splitBatch (a --shapes batch past every profile)
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
  bool split_batch = false;        ///< --splitBatch: a batch past every profile runs in chunks
};
CLI::App* add_run_command(CLI::App& app, RunOptions& options);
int run_run_command(const RunOptions& options);

struct InspectOptions {
  std::string load_engine;
  bool json = false;
};
CLI::App* add_inspect_command(CLI::App& app, InspectOptions& options);
int run_inspect_command(const InspectOptions& options);

}  // namespace mlprt::cli
