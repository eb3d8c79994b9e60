#include <CLI/CLI.hpp>
#include <chrono>
#include <iomanip>
#include <iostream>

#include "accuracy_flags.h"
#include "cli_common.h"
#include "commands.h"
#include "mlprt/builder.h"
#include "mlprt/device.h"
#include "mlprt/network.h"

namespace mlprt::cli {
namespace {

/// "--layerPrecisions=fc1:fp32,fc2:bf16" values -> map; errors are usage errors.
Result<std::map<std::string, std::string>> parse_layer_precisions(
    const std::vector<std::string>& values) {
  std::map<std::string, std::string> out;
  for (const std::string& value : values) {
    for (const std::string& item : split_list(value)) {
      const size_t colon = item.rfind(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == item.size()) {
        return Status(StatusCode::kInvalidArgument,
                      cat("--layerPrecisions: '", item,
                          "' is not name:precision, e.g. --layerPrecisions=fc1:fp32,*:bf16"));
      }
      const std::string precision = item.substr(colon + 1);
      if (precision != "fp32" && precision != "tf32" && precision != "fp16" &&
          precision != "bf16") {
        return Status(StatusCode::kInvalidArgument,
                      cat("--layerPrecisions: '", item, "': precision '", precision,
                          "' is not one of fp32, tf32, fp16, bf16"));
      }
      if (!out.emplace(item.substr(0, colon), precision).second) {
        return Status(StatusCode::kInvalidArgument,
                      cat("--layerPrecisions: layer '", item.substr(0, colon), "' is given twice"));
      }
    }
  }
  return out;
}

/// "--inputIOFormats=fp16:chw,fp32:chw" values -> types, as trtexec spells them.
Result<std::vector<DataType>> parse_io_formats(const char* flag,
                                               const std::vector<std::string>& values) {
  std::vector<DataType> out;
  for (const std::string& value : values) {
    for (const std::string& item : split_list(value)) {
      const size_t colon = item.find(':');
      const std::string type = item.substr(0, colon);
      const std::string layout = colon == std::string::npos ? "chw" : item.substr(colon + 1);
      if (layout != "chw") {
        return Status(StatusCode::kInvalidArgument,
                      cat(flag, ": '", item, "': format '", layout,
                          "' is not supported; mlprt tensors are row-major: chw"));
      }
      if (type == "fp32") {
        out.push_back(DataType::kFloat32);
      } else if (type == "fp16") {
        out.push_back(DataType::kFloat16);
      } else if (type == "bf16") {
        out.push_back(DataType::kBFloat16);
      } else {
        return Status(StatusCode::kInvalidArgument,
                      cat(flag, ": '", item, "': type '", type,
                          "' is not one of fp32, fp16, bf16, e.g. ", flag, "=fp16:chw"));
      }
    }
  }
  return out;
}

}  // namespace

void add_builder_flags(CLI::App& cmd, BuildOptions& options) {
  cmd.add_option("--backend", options.backend,
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
  cmd.add_option("--device", options.device,
                 "GPU to build for (the cuda backend times its tactics there), e.g. --device=1")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--minShapes", options.shape_flags.min_shapes,
                 "smallest shapes of a profile, repeat the trio for more profiles, e.g. "
                 "--minShapes=input:1x784")
      ->allow_extra_args(false);
  cmd.add_option("--optShapes", options.shape_flags.opt_shapes,
                 "shapes a profile is tuned for, e.g. --optShapes=input:32x784")
      ->allow_extra_args(false);
  cmd.add_option("--maxShapes", options.shape_flags.max_shapes,
                 "largest shapes of a profile, e.g. --maxShapes=input:64x784")
      ->allow_extra_args(false);
  cmd.add_option("--timingCacheFile", options.timing_cache_file,
                 "timing cache read before and updated after the build; a warm cache skips "
                 "tactic timing and makes the plan reproducible, e.g. "
                 "--timingCacheFile=timing.cache");
  cmd.add_flag(
      "--fp16", options.fp16,
      "permit fp16 layers where faster (cpu: only with AVX-512 FP16; none yet), e.g. --fp16");
  cmd.add_flag("--bf16", options.bf16,
               "permit bf16 layers where faster (cpu: AVX-512 BF16 or AMX), e.g. --bf16");
  cmd.add_flag("--tf32", options.tf32, "permit tf32 math (GPUs only; cpu: fp32), e.g. --tf32");
  cmd.add_option("--precisionConstraints", options.precision_constraints,
                 "how --layerPrecisions binds: none (ignored), prefer, obey (fail where "
                 "impossible), e.g. --precisionConstraints=obey")
      ->check(CLI::IsMember({"none", "prefer", "obey"}))
      ->default_str("none");
  cmd.add_option("--threads", options.threads,
                 "host threads the engine is built, tuned and run for (cpu: OpenMP threads, "
                 "recorded in the plan); 0: OpenMP's default, e.g. --threads=2")
      ->check(CLI::NonNegativeNumber)
      ->default_str("0");
  cmd.add_option("--layerPrecisions", options.layer_precisions,
                 "per-layer precision, layer names as inspect lists them, * for all, e.g. "
                 "--layerPrecisions=fc1:fp32,*:bf16")
      ->allow_extra_args(false);
  cmd.add_option("--builderOptimizationLevel", options.optimization_level,
                 "0: time no tactic (fastest build, default kernels); 1-5: time every "
                 "candidate tactic, e.g. --builderOptimizationLevel=0")
      ->check(CLI::Range(0, 5))
      ->default_str("3");
  cmd.add_option("--inputIOFormats", options.input_formats,
                 "type of each input (in the model's order, or one for all): fp32, fp16 or "
                 "bf16, layout chw; default: the model's types, e.g. --inputIOFormats=fp16:chw")
      ->allow_extra_args(false);
  cmd.add_option("--outputIOFormats", options.output_formats,
                 "type of each output, as --inputIOFormats, e.g. --outputIOFormats=fp16:chw")
      ->allow_extra_args(false);
  cmd.add_option("--accuracyBudget", options.accuracy_budget,
                 "choose each layer's precision (among fp32 and what --fp16/--bf16/--tf32 "
                 "allow): the fastest mix whose outputs stay within this relative L2 error of "
                 "float64 on the calibration data, e.g. --accuracyBudget=1e-3");
  cmd.add_option("--calibrationInputs", options.calibration_inputs,
                 "calibration data for --accuracyBudget: a .npy for the single input or "
                 "name:file.npy for each; default: random data in profile 0's opt shape, e.g. "
                 "--calibrationInputs=input:calib.npy")
      ->allow_extra_args(false);
}

BuiltPlan build_from_flags(const BuildOptions& options) {
  if (options.device >= 0) {
    if (Status s = set_device(options.device); !s) return {{}, report_runtime_error(s)};
  }
  Result<std::vector<OptimizationProfile>> profiles = profiles_from_flags(options.shape_flags);
  if (!profiles) return {{}, report_usage_error(profiles.status().message())};
  Result<std::map<std::string, std::string>> layer_precisions =
      parse_layer_precisions(options.layer_precisions);
  if (!layer_precisions) return {{}, report_usage_error(layer_precisions.status().message())};
  Result<std::vector<DataType>> input_formats =
      parse_io_formats("--inputIOFormats", options.input_formats);
  if (!input_formats) return {{}, report_usage_error(input_formats.status().message())};
  Result<std::vector<DataType>> output_formats =
      parse_io_formats("--outputIOFormats", options.output_formats);
  if (!output_formats) return {{}, report_usage_error(output_formats.status().message())};

  const auto start = std::chrono::steady_clock::now();
  if (!options.accuracy_budget.empty()) {
    Result<double> budget = parse_accuracy_budget(options.accuracy_budget);
    if (!budget) return {{}, report_usage_error(budget.status().message())};
  }
  Result<std::unique_ptr<Network>> network = Network::from_onnx_file(options.onnx);
  if (!network) return {{}, report_runtime_error(network.status())};

  BuilderConfig config;
  config.backend = options.backend;
  config.profiles = std::move(*profiles);
  config.timing_cache_path = options.timing_cache_file;
  config.allow_fp16 = options.fp16;
  config.allow_bf16 = options.bf16;
  config.allow_tf32 = options.tf32;
  config.precision_constraints = options.precision_constraints;
  config.layer_precisions = std::move(*layer_precisions);
  config.num_threads = options.threads;
  config.optimization_level = options.optimization_level;
  config.input_formats = std::move(*input_formats);
  config.output_formats = std::move(*output_formats);
  if (Status s = apply_accuracy_flags(options.accuracy_budget, options.calibration_inputs,
                                      **network, config);
      !s) {
    return {{}, report_runtime_error(s)};
  }
  Result<SerializedEngine> engine = build_serialized_engine(std::move(*network), config);
  if (!engine) return {{}, report_runtime_error(engine.status())};

  if (!options.save_engine.empty()) {
    Status written = write_file_atomic(options.save_engine, engine->bytes);
    if (!written) return {{}, report_runtime_error(written)};
  }
  const std::chrono::duration<double> total = std::chrono::steady_clock::now() - start;
  std::cout << std::fixed << std::setprecision(2) << "Built "
            << (options.save_engine.empty() ? std::string("an engine")
                                            : "'" + options.save_engine + "'")
            << " from '" << options.onnx << "' in " << engine->build_seconds * 1e3 << " ms ("
            << total.count() * 1e3 << " ms with import and write), " << engine->bytes.size()
            << " bytes\n"
            << std::defaultfloat << engine->summary << std::endl;
  return {std::move(engine->bytes), kExitOk};
}

CLI::App* add_build_command(CLI::App& app, BuildOptions& options) {
  CLI::App* cmd = app.add_subcommand("build", "Build an engine (plan file) from an ONNX model");
  cmd->add_option("--onnx", options.onnx, "ONNX model to build, e.g. --onnx=mlp.onnx")->required();
  cmd->add_option("--saveEngine", options.save_engine,
                  "where to write the plan, e.g. --saveEngine=mlp.plan")
      ->required();
  cmd->add_option("--shapes", options.shape_flags.shapes,
                  "fixed input shapes (min = opt = max, one profile), e.g. "
                  "--shapes=input:8x784 or --shapes=input:8x784,mask:8x10")
      ->allow_extra_args(false);
  add_builder_flags(*cmd, options);
  return cmd;
}

int run_build_command(const BuildOptions& options) { return build_from_flags(options).exit_code; }

}  // namespace mlprt::cli
