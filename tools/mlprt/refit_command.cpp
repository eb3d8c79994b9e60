// mlprt refit: new weights into a built plan, keeping its tactics (see mlprt/refitter.h).

#include <CLI/CLI.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>

#include "cli_common.h"
#include "commands.h"
#include "mlprt/builder.h"
#include "mlprt/refitter.h"

namespace mlprt::cli {

CLI::App* add_refit_command(CLI::App& app, RefitOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "refit", "replace a plan's weights without rebuilding it (tactics kept): from an ONNX model "
               "of the same graph, a PyTorch state_dict (.pth) or .safetensors");
  cmd->add_option("--loadEngine", options.load_engine, "the plan to refit, e.g. --loadEngine=a.plan")
      ->required();
  cmd->add_option("--onnx", options.onnx,
                  "an ONNX model of the same graph with new initializers, e.g. --onnx=new.onnx");
  cmd->add_option("--weights", options.weights,
                  "new weights by torch or ONNX name: torch.save(model.state_dict()) .pth, or "
                  ".safetensors, e.g. --weights=new.pth");
  cmd->add_option("--saveEngine", options.save_engine, "the refitted plan, e.g. --saveEngine=b.plan")
      ->required();
  return cmd;
}

int run_refit_command(const RefitOptions& options) {
  if (options.onnx.empty() == options.weights.empty()) {
    return report_usage_error("refit needs exactly one of --onnx=new.onnx and --weights=new.pth|new.safetensors");
  }
  const auto start = std::chrono::steady_clock::now();
  std::ifstream in(options.load_engine, std::ios::binary);
  if (!in) return report_error(cat("cannot open '", options.load_engine, "'"), kExitRuntimeError);
  const std::vector<uint8_t> plan((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto refitter = Refitter::create_for_plan(plan, options.load_engine);
  if (!refitter) return report_runtime_error(refitter.status());
  const std::string source = options.onnx.empty() ? options.weights : options.onnx;
  if (Status s = (*refitter)->set_weights_from_file(source); !s.is_ok()) return report_runtime_error(s);
  auto bytes = (*refitter)->refit_serialized();
  if (!bytes) return report_runtime_error(bytes.status());
  if (Status s = write_file_atomic(options.save_engine, *bytes); !s.is_ok()) return report_runtime_error(s);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "refitted " << (*refitter)->get_all_weights().size() << " weights from '" << source << "' into '"
            << options.save_engine << "' (" << bytes->size() << " bytes) in " << seconds << " s; tactics kept\n";
  return kExitOk;
}

}  // namespace mlprt::cli
