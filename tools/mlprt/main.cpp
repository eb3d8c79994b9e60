// mlprt: build, run and inspect engines from the command line, with trtexec's flag names.

#include <CLI/CLI.hpp>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <iostream>
#include <new>

#include "cli_common.h"
#include "commands.h"
#include "mlprt/logger.h"
#include "mlprt/version.h"

namespace {

using namespace mlprt::cli;

const char* severity_name(mlprt::Severity severity) {
  switch (severity) {
    case mlprt::Severity::kError:
      return "error";
    case mlprt::Severity::kWarning:
      return "warning";
    case mlprt::Severity::kInfo:
      return "info";
    case mlprt::Severity::kVerbose:
      return "verbose";
  }
  return "log";
}

int run_cli(int argc, char** argv) {
  CLI::App app("mlprt: build, run and inspect inference engines for multi-layer perceptrons",
               "mlprt");
  app.set_version_flag(
      "--version",
      mlprt::cli::cat("mlprt ", mlprt::kVersionString, " (plan format ", mlprt::kPlanFormatVersion, ")"),
      "print the version and the plan format, e.g. --version");
  app.require_subcommand(1);
  app.get_formatter()->column_width(36);

  bool verbose = false;
  BuildOptions build_options;
  RunOptions run_options;
  InspectOptions inspect_options;
  BenchOptions bench_options;
  RefitOptions refit_options;
  RetuneOptions retune_options;
  CLI::App* build = add_build_command(app, build_options);
  CLI::App* run = add_run_command(app, run_options);
  CLI::App* inspect = add_inspect_command(app, inspect_options);
  CLI::App* bench = add_bench_command(app, bench_options);
  CLI::App* refit = add_refit_command(app, refit_options);
  CLI::App* retune = add_retune_command(app, retune_options);
  add_hardware_mismatch_flag(*run, run_options.hardware_mismatch);
  add_hardware_mismatch_flag(*inspect, inspect_options.hardware_mismatch);
  add_hardware_mismatch_flag(*bench, bench_options.hardware_mismatch);
  for (CLI::App* cmd : {build, run, inspect, bench, refit, retune}) {
    cmd->add_flag("--verbose", verbose, "log every step of the library, e.g. --verbose");
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    if (what.empty()) what = e.get_name();
    return report_usage_error(what);
  }

  // Info lines (build progress, tactic counts) are part of the report on stdout; warnings,
  // errors and --verbose detail go to stderr.
  mlprt::set_log_callback([](mlprt::Severity severity, std::string_view message) {
    std::ostream& out = severity == mlprt::Severity::kInfo ? std::cout : std::cerr;
    out << "mlprt: " << severity_name(severity) << ": " << message << std::endl;
  });
  const bool reports_info =
      build->parsed() || bench->parsed() || refit->parsed() || retune->parsed();
  mlprt::set_log_severity(verbose          ? mlprt::Severity::kVerbose
                          : reports_info ? mlprt::Severity::kInfo
                                         : mlprt::Severity::kWarning);

  if (build->parsed()) return run_build_command(build_options);
  if (run->parsed()) return run_run_command(run_options);
  if (inspect->parsed()) return run_inspect_command(inspect_options);
  if (bench->parsed()) return run_bench_command(bench_options);
  if (refit->parsed()) return run_refit_command(refit_options);
  if (retune->parsed()) return run_retune_command(retune_options);
  return report_usage_error(
      "a subcommand is required: build, run, inspect, bench, refit or retune");
}

}  // namespace

int main(int argc, char** argv) {
#if defined(__GLIBC__)
  // A fixed mmap threshold: glibc's adaptive one rises to the size of the largest block freed
  // (up to 32 MiB), after which freed weight copies (16 MiB layers packed for timing, the
  // optimizer's sources) stay in the heap instead of going back to the system, and the peak
  // RSS of `build` grew by them (358 -> 203 MiB on bench's wide MLP).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
  // The library never throws; this catches allocation failures and CLI11 surprises so that the
  // user gets a message and exit 1 rather than an abort.
  try {
    return run_cli(argc, argv);
  } catch (const std::bad_alloc&) {
    return report_error("out of memory", kExitRuntimeError);
  } catch (const std::exception& e) {
    return report_error(e.what(), kExitRuntimeError);
  }
}
