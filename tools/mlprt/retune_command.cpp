// mlprt retune: re-tunes a plan built for other hardware (or another backend, with
// --hardwareMismatch=fallback) for this machine and saves it; and the --hardwareMismatch flag of
// the commands that load a plan.

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>

#include "cli_common.h"
#include "commands.h"
#include "mlprt/builder.h"
#include "mlprt/hardware_policy.h"

namespace mlprt::cli {

void add_hardware_mismatch_flag(CLI::App& cmd, std::string& value) {
  cmd.add_option("--hardwareMismatch", value,
                 "a plan built for other hardware: retune (default: re-tune it here, with a "
                 "warning), refuse, or fallback (also run a plan whose backend cannot run here on "
                 "another backend), e.g. --hardwareMismatch=refuse")
      ->check(CLI::Validator(
          [](std::string& text) {
            Result<HardwareMismatchPolicy> policy = parse_hardware_mismatch_policy(text);
            return policy.is_ok() ? std::string() : policy.status().message();
          },
          ""))
      ->default_str("retune");
}

EngineLoadOptions load_options(const std::string& hardware_mismatch) {
  EngineLoadOptions options;
  // The flag's validator has accepted the value.
  Result<HardwareMismatchPolicy> policy = parse_hardware_mismatch_policy(hardware_mismatch);
  if (policy.is_ok()) options.hardware_mismatch = *policy;
  return options;
}

CLI::App* add_retune_command(CLI::App& app, RetuneOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "retune",
      "Re-tune a plan built on other hardware for this machine: same graph, weights, profiles "
      "and build settings, the backend's tactics timed here");
  cmd->add_option("--loadEngine", options.load_engine, "plan to re-tune, e.g. --loadEngine=a.plan")
      ->required();
  cmd->add_option("--saveEngine", options.save_engine,
                  "where to write the re-tuned plan, e.g. --saveEngine=b.plan")
      ->required();
  cmd->add_option("--hardwareMismatch", options.hardware_mismatch,
                  "retune (default), or fallback: a plan whose backend cannot run here (a cuda "
                  "plan without a GPU) is re-tuned for another backend, e.g. "
                  "--hardwareMismatch=fallback")
      ->check(CLI::Validator(
          [](std::string& text) {
            if (text == "retune" || text == "fallback") return std::string();
            return "hardware-mismatch policy '" + text +
                   "' is not allowed for retune; allowed: retune, fallback";
          },
          ""))
      ->default_str("retune");
  return cmd;
}

int run_retune_command(const RetuneOptions& options) {
  std::ifstream in(options.load_engine, std::ios::binary);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(options.load_engine, ec) || !in) {
    return report_runtime_error(
        Status(StatusCode::kNotFound,
               cat("plan '", options.load_engine, "' does not exist or is not a readable file")));
  }
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  Result<RetunedEngine> retuned = retune_serialized_engine(
      bytes, options.load_engine, load_options(options.hardware_mismatch).hardware_mismatch);
  if (!retuned) return report_runtime_error(retuned.status());
  if (Status s = write_file_atomic(options.save_engine, retuned->engine.bytes); !s) {
    return report_runtime_error(s);
  }
  if (retuned->hardware_matched) {
    std::cout << "Note: '" << options.load_engine << "' was already built for this machine ("
              << retuned->from_backend << ", " << retuned->from_hardware
              << "); its tactics were timed again: an equivalent plan\n";
  }
  std::cout << "Re-tuned:    " << retuned->engine.summary << '\n'
            << "Re-tune time: " << std::fixed << std::setprecision(3)
            << retuned->engine.build_seconds << " s\n"
            << "Saved:       " << options.save_engine << " (" << retuned->engine.bytes.size()
            << " bytes)" << std::endl;
  return kExitOk;
}

}  // namespace mlprt::cli
