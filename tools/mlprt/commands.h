#pragma once
// The subcommands of mlprt. Each one registers its own flags on the CLI11 app and runs from the
// parsed values, returning the process exit code (see cli_common.h).

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
};
CLI::App* add_build_command(CLI::App& app, BuildOptions& options);
int run_build_command(const BuildOptions& options);

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
