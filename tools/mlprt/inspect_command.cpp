#include <CLI/CLI.hpp>
#include <iomanip>
#include <iostream>

#include "cli_common.h"
#include "commands.h"
#include "mlprt/engine.h"
#include "mlprt/engine_inspector.h"
#include "mlprt/host_cpu.h"

namespace mlprt::cli {
namespace {

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += ", ";
    out += names[i];
  }
  return out;
}

std::string human_bytes(uint64_t bytes) {
  std::ostringstream os;
  os << bytes << " bytes";
  if (bytes >= 1024) {
    const double kib = static_cast<double>(bytes) / 1024.0;
    os << std::fixed << std::setprecision(1) << " (" << (kib >= 1024.0 ? kib / 1024.0 : kib)
       << (kib >= 1024.0 ? " MiB)" : " KiB)");
  }
  return os.str();
}

// cpu plans: what this machine's CPU gives the cpu backend (AMX in use or why not, kernels).
std::string host_cpu_line() {
  const HostCpuInfo cpu = host_cpu_info();
  std::string kernels;
  for (const std::string& p : cpu.precisions) kernels += (kernels.empty() ? "" : ", ") + p;
  return "This CPU:    " + cpu.isa + "; " + cpu.amx_note + "; cpu kernels: " + kernels + "\n";
}

Status print_plan(const PlanInfo& plan, const std::string& path, std::ostream& out) {
  const EngineInfo& info = plan.info;
  out << "Plan:        " << path << '\n'
      << "Format:      version " << info.format_version << ", built by mlprt "
      << info.producer_version << '\n'
      << "Model:       " << (info.model_name.empty() ? "(unnamed)" : info.model_name) << '\n'
      << "Backend:     " << info.backend << '\n'
      << "Hardware:    " << info.hardware << '\n'
      << (info.backend == "cpu" ? host_cpu_line() : "")
      << "Precision:   " << info.precision << '\n'
      << (info.retuned_from.empty() ? ""
                                    : "Re-tuned:    at load, from " + info.retuned_from + "\n")
      << "Plan hash:   " << info.plan_hash << '\n'
      << "Plan size:   " << human_bytes(info.plan_bytes) << '\n'
      << "Weights:     " << human_bytes(info.weight_bytes) << '\n';

  out << "I/O tensors (" << plan.io_tensors.size() << "):\n";
  std::vector<std::string> inputs;
  for (const TensorDesc& desc : plan.io_tensors) {
    const bool is_input = desc.mode == TensorIOMode::kInput;
    if (is_input) inputs.push_back(desc.name);
    out << "  " << std::left << std::setw(7) << (is_input ? "input" : "output") << ' '
        << std::setw(16) << desc.name << ' ' << std::setw(8) << to_string(desc.dtype) << ' '
        << to_string(desc.dims) << std::right << '\n';
  }

  out << "Profiles (" << plan.profiles.size() << "):\n";
  for (size_t p = 0; p < plan.profiles.size(); ++p) {
    out << "  profile " << p << ":\n";
    for (const std::string& name : inputs) {
      const std::optional<ShapeRange> range = plan.profiles[p].get_dimensions(name);
      if (!range) {
        return Status(StatusCode::kNotFound, "'" + name + "' is not an input of the engine");
      }
      out << "    " << std::left << std::setw(16) << name << std::right << " min "
          << to_string(range->min) << "  opt " << to_string(range->opt) << "  max "
          << to_string(range->max) << '\n';
    }
  }

  out << "Layers after fusion (" << info.layers.size() << "):\n";
  for (size_t i = 0; i < info.layers.size(); ++i) {
    const LayerInfo& layer = info.layers[i];
    out << "  " << std::setw(2) << i << "  " << std::left << std::setw(20) << layer.name << ' '
        << std::setw(8) << layer.type << ' ' << std::setw(5) << layer.precision << ' '
        << std::setw(22) << layer.detail << std::right << ' ' << join(layer.inputs) << " -> "
        << join(layer.outputs);
    if (layer.measured_error >= 0.0) out << "  [measured error " << layer.measured_error << ']';
    out << '\n';
  }
  if (!info.tactics.empty()) {
    out << "Tactics:\n";
    for (const std::string& line : info.tactics) out << "  " << line << '\n';
  }
  if (info.accuracy_budget > 0.0) {
    // Layer errors: the network's error with that layer alone in its precision.
    out << "Accuracy budget: " << info.accuracy_budget
        << " (relative L2 against float64); the chosen mix measured " << info.accuracy_error
        << " on the calibration data\n";
  }
  return Status::ok();
}

}  // namespace

CLI::App* add_inspect_command(CLI::App& app, InspectOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "inspect", "Show a plan: versions, backend, precision, I/O tensors, profiles, layers");
  cmd->add_option("--loadEngine", options.load_engine, "plan to show, e.g. --loadEngine=mlp.plan")
      ->required();
  cmd->add_flag("--json", options.json, "print everything as JSON instead, e.g. --json");
  return cmd;
}

int run_inspect_command(const InspectOptions& options) {
  // The plan's metadata only, unless it must be re-tuned or run on another backend here.
  Result<PlanInfo> plan =
      inspect_plan_file(options.load_engine, load_options(options.hardware_mismatch));
  if (!plan) return report_runtime_error(plan.status());
  if (options.json) {
    std::cout << plan->to_json() << std::endl;
    return kExitOk;
  }
  // Formatted completely before printing, so an error never leaves half a report on stdout.
  std::ostringstream text;
  Status status = print_plan(*plan, options.load_engine, text);
  if (!status) return report_runtime_error(status);
  std::cout << text.str() << std::flush;
  return kExitOk;
}

}  // namespace mlprt::cli
