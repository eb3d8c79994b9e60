#include <CLI/CLI.hpp>
#include <chrono>
#include <iomanip>
#include <iostream>

#include "cli_common.h"
#include "commands.h"
#include "mlprt/builder.h"
#include "mlprt/device.h"
#include "mlprt/network.h"

namespace mlprt::cli {

CLI::App* add_build_command(CLI::App& app, BuildOptions& options) {
  CLI::App* cmd = app.add_subcommand("build", "Build an engine (plan file) from an ONNX model");
  cmd->add_option("--onnx", options.onnx, "ONNX model to build, e.g. --onnx=mlp.onnx")->required();
  cmd->add_option("--saveEngine", options.save_engine,
                  "where to write the plan, e.g. --saveEngine=mlp.plan")
      ->required();
  cmd->add_option("--backend", options.backend,
                  "backend to build for: auto (best available), cpu or cuda, e.g. --backend=cpu")
      // A validator without a type text: {auto,cpu,cuda} would push the help text off its line.
      ->check(CLI::Validator(
          [](std::string& value) {
            return value == "auto" || value == "cpu" || value == "cuda"
                       ? std::string()
                       : "backend '" + value + "' is not one of auto, cpu, cuda";
          },
          ""))
      ->default_str("auto");
  cmd->add_option("--shapes", options.shape_flags.shapes,
                  "fixed input shapes (min = opt = max, one profile), e.g. "
                  "--shapes=input:8x784 or --shapes=input:8x784,mask:8x10")
      ->allow_extra_args(false);
  cmd->add_option("--minShapes", options.shape_flags.min_shapes,
                  "smallest shapes of a profile, repeat the trio for more profiles, e.g. "
                  "--minShapes=input:1x784")
      ->allow_extra_args(false);
  cmd->add_option("--optShapes", options.shape_flags.opt_shapes,
                  "shapes a profile is tuned for, e.g. --optShapes=input:32x784")
      ->allow_extra_args(false);
  cmd->add_option("--maxShapes", options.shape_flags.max_shapes,
                  "largest shapes of a profile, e.g. --maxShapes=input:64x784")
      ->allow_extra_args(false);
  cmd->add_option("--timingCacheFile", options.timing_cache_file,
                  "timing cache read before and updated after the build, e.g. "
                  "--timingCacheFile=timing.cache");
  cmd->add_option("--device", options.device,
                  "GPU to build for (the cuda backend times its tactics there), e.g. --device=1")
      ->check(CLI::NonNegativeNumber);
  return cmd;
}

int run_build_command(const BuildOptions& options) {
  if (options.device >= 0) {
    if (Status s = set_device(options.device); !s) return report_runtime_error(s);
  }
  Result<std::vector<OptimizationProfile>> profiles = profiles_from_flags(options.shape_flags);
  if (!profiles) return report_usage_error(profiles.status().message());

  const auto start = std::chrono::steady_clock::now();
  Result<std::unique_ptr<Network>> network = Network::from_onnx_file(options.onnx);
  if (!network) return report_runtime_error(network.status());

  BuilderConfig config;
  config.backend = options.backend;
  config.profiles = std::move(*profiles);
  config.timing_cache_path = options.timing_cache_file;
  Result<SerializedEngine> engine = build_serialized_engine(**network, config);
  if (!engine) return report_runtime_error(engine.status());

  Status written = write_file_atomic(options.save_engine, engine->bytes);
  if (!written) return report_runtime_error(written);
  const std::chrono::duration<double> total = std::chrono::steady_clock::now() - start;

  std::cout << std::fixed << std::setprecision(2) << "Built '" << options.save_engine << "' from '"
            << options.onnx << "' in " << engine->build_seconds * 1e3 << " ms ("
            << total.count() * 1e3 << " ms with import and write), " << engine->bytes.size()
            << " bytes\n"
            << std::defaultfloat << engine->summary << std::endl;
  return kExitOk;
}

}  // namespace mlprt::cli
