// mlprt bench: trtexec's performance measurement. Builds (--onnx) or loads (--loadEngine) an
// engine, feeds random inputs of the --shapes given, warms up, then times enqueue calls until
// both --iterations and --duration are reached, and prints a summary (and --exportTimes JSON).

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <random>

#include "bench_cpu_stats.h"
#include "bench_gpu.h"
#include "bench_profile.h"
#include "cli_common.h"
#include "commands.h"
#include "mlprt/builder.h"
#include "mlprt/device.h"
#include "mlprt/engine.h"
#include "mlprt/float16.h"
#include "mlprt/host_cpu.h"

namespace mlprt::cli {
namespace {

using Clock = std::chrono::steady_clock;

Result<std::vector<double>> parse_percentiles(const std::string& text) {
  std::vector<double> out;
  for (const std::string& item : split_list(text)) {
    double value = 0;
    if (!CLI::detail::lexical_cast(item, value) || !(value > 0.0 && value <= 100.0)) {
      return Status(StatusCode::kInvalidArgument,
                    cat("--percentile: '", item, "' in '", text,
                        "' is not a number in (0, 100], e.g. --percentile=90,95,99"));
    }
    out.push_back(value);
  }
  return out;
}

/// Nearest-rank percentile of sorted values.
double percentile(const std::vector<double>& sorted, double p) {
  const auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

std::string percentile_name(double p) {
  std::ostringstream os;
  os << p;
  return os.str();
}

/// Input shapes: --shapes where given, else the static dims, else profile 0's opt.
Result<std::map<std::string, Dims>> input_shapes(const Engine& engine, const ShapeList& given) {
  std::map<std::string, Dims> shapes;
  for (const auto& [name, dims] : given) {
    const TensorDesc* desc = engine.find_io_tensor(name);
    if (desc == nullptr || desc->mode != TensorIOMode::kInput) {
      std::vector<std::string> names;
      for (const TensorDesc& t : engine.io_tensors()) {
        if (t.mode == TensorIOMode::kInput) names.push_back(t.name);
      }
      return Status(StatusCode::kNotFound, cat("--shapes: the engine has no input '", name,
                                               "'; its inputs are ", quoted_list(names)));
    }
    shapes[name] = dims;
  }
  for (const TensorDesc& t : engine.io_tensors()) {
    if (t.mode != TensorIOMode::kInput || shapes.count(t.name)) continue;
    if (std::all_of(t.dims.begin(), t.dims.end(), [](int64_t d) { return d >= 0; })) {
      shapes[t.name] = t.dims;
      continue;
    }
    Result<ShapeRange> range = engine.profile_range(0, t.name);
    if (!range) return range.status();
    shapes[t.name] = range->opt;
  }
  return shapes;
}

struct Summary {
  double walltime_s = 0;
  double qps = 0;
  double min = 0, max = 0, mean = 0, median = 0;
  std::vector<std::pair<double, double>> percentiles;  ///< (p, us)
};

Summary summarize(const std::vector<double>& latency_us, double walltime_s,
                  const std::vector<double>& ps) {
  std::vector<double> sorted = latency_us;
  std::sort(sorted.begin(), sorted.end());
  Summary s;
  s.walltime_s = walltime_s;
  const size_t n = sorted.size();
  s.qps = walltime_s > 0 ? static_cast<double>(n) / walltime_s : 0;
  s.min = sorted.front();
  s.max = sorted.back();
  double sum = 0;
  for (double v : sorted) sum += v;
  s.mean = sum / static_cast<double>(n);
  s.median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  for (double p : ps) s.percentiles.emplace_back(p, percentile(sorted, p));
  return s;
}

nlohmann::json stats_json(const Summary& s) {
  nlohmann::json pct = nlohmann::json::object();
  for (const auto& [p, us] : s.percentiles) pct[percentile_name(p)] = us;
  return {{"min", s.min}, {"max", s.max}, {"mean", s.mean}, {"median", s.median},
          {"percentiles", pct}};
}

void print_stats(std::ostream& out, const char* label, const Summary& s) {
  out << label << ": min = " << s.min << " us, max = " << s.max << " us, mean = " << s.mean
      << " us, median = " << s.median << " us";
  for (const auto& [p, us] : s.percentiles) {
    out << ", percentile(" << percentile_name(p) << "%) = " << us << " us";
  }
  out << '\n';
}

std::string shapes_text(const std::map<std::string, Dims>& shapes) {
  std::ostringstream os;
  for (const auto& [name, dims] : shapes) {
    os << (os.tellp() > 0 ? "," : "") << name << ':' << to_string(dims);
  }
  return os.str();
}

Status write_json(const std::string& path, const nlohmann::json& json) {
  const std::string text = json.dump(1) + "\n";
  return write_file_atomic(
      path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

// --dumpProfile / --exportProfile: the per-layer run, after the timed one, appended to `out`.
Status append_layer_profile(const Engine& engine, const BenchOptions& options,
                            const std::map<std::string, Dims>& shapes, int profile,
                            std::ostream& out) {
  if (!options.dump_profile && options.export_profile.empty()) return Status::ok();
  LayerProfileOptions profiling;
  profiling.iterations = options.iterations;
  profiling.duration_s = options.duration_s;
  profiling.warm_up_ms = options.warm_up_ms;
  profiling.threads = options.build.threads;
  profiling.split_batch = options.split_batch;
  Result<LayerProfile> layers = profile_layers(engine, profile, shapes, profiling);
  if (!layers) return layers.status();
  if (options.dump_profile) print_layer_profile(out, *layers);
  if (!options.export_profile.empty()) {
    Status written = export_layer_profile(options.export_profile, *layers);
    if (!written) return written;
    out << "Profile written to " << options.export_profile << '\n';
  }
  return Status::ok();
}

// cuda plans: trtexec's GPU summary (H2D / GPU compute / D2H split) from bench_gpu.
int bench_gpu(const Engine& engine, const std::string& source, const BenchOptions& options,
              const std::map<std::string, Dims>& shapes, int profile,
              const std::vector<double>& ps) {
  GpuBenchOptions gpu;
  gpu.iterations = options.iterations;
  gpu.warm_up_ms = options.warm_up_ms;
  gpu.duration_s = options.duration_s;
  gpu.use_cuda_graph = options.use_cuda_graph;
  gpu.split_batch = options.split_batch;
  gpu.no_data_transfers = options.no_data_transfers;
  gpu.streams = options.inf_streams;
  Result<GpuBenchResult> result = run_gpu_bench(engine, profile, shapes, gpu);
  if (!result) return report_runtime_error(result.status());
  const std::vector<GpuIteration>& its = result->iterations;
  auto series = [&](double GpuIteration::*field) {
    std::vector<double> v;
    v.reserve(its.size());
    for (const GpuIteration& it : its) v.push_back(it.*field);
    return summarize(v, result->walltime_s, ps);
  };
  const Summary latency = series(&GpuIteration::latency_us);
  const Summary h2d = series(&GpuIteration::h2d_us);
  const Summary compute = series(&GpuIteration::compute_us);
  const Summary d2h = series(&GpuIteration::d2h_us);
  const Summary enqueue = series(&GpuIteration::enqueue_us);
  int64_t batch = 0;
  if (!shapes.empty() && !shapes.begin()->second.empty()) batch = shapes.begin()->second[0];

  std::ostringstream out;
  const bool transfers = !options.no_data_transfers;
  out << std::fixed << std::setprecision(3) << "=== Performance summary ===\n"
      << "Engine: " << source << " (cuda, " << engine.info().precision << "), shapes "
      << shapes_text(shapes) << ", streams " << options.inf_streams << ", CUDA graph "
      << (options.use_cuda_graph ? "on" : "off") << ", data transfers "
      << (transfers ? "on" : "off") << '\n'
      << "Throughput: " << latency.qps << " qps ("
      << latency.qps * static_cast<double>(std::max<int64_t>(batch, 1)) << " rows/s)\n";
  print_stats(out, transfers ? "Latency (H2D + GPU compute + D2H)" : "Latency (GPU compute)",
              latency);
  if (transfers) print_stats(out, "H2D Latency", h2d);
  print_stats(out, "GPU Compute Time", compute);
  if (transfers) print_stats(out, "D2H Latency", d2h);
  print_stats(out, "Enqueue Time (host)", enqueue);
  out << std::setprecision(6) << "Total host walltime: " << result->walltime_s
      << " s, iterations: " << its.size() << '\n';
  // Memory against the weights: the process's peak RSS (host), and the device memory mlprt
  // holds (the engine's weights plus every bench context's buffers and workspaces).
  const double rss_mib = peak_rss_mib();
  const DeviceMemoryUsage device = device_memory_usage();
  constexpr double kMiB = 1024.0 * 1024.0;
  out << std::setprecision(3) << "Memory: peak RSS " << rss_mib << " MiB"
      << (options.load_engine.empty() ? " (the build included; --loadEngine for the run alone)"
                                      : "")
      << ", device memory held by mlprt " << static_cast<double>(device.current_bytes) / kMiB
      << " MiB (peak " << static_cast<double>(device.peak_bytes) / kMiB << " MiB, "
      << options.inf_streams << " context(s)), weights "
      << static_cast<double>(engine.info().weight_bytes) / kMiB << " MiB\n";
  std::optional<Summary> host_path, host_wall;
  if (transfers) {
    const double host_s = [&] {
      double total = 0;
      for (double us : result->host_path_wall_us) total += us;
      return total * 1e-6;
    }();
    host_path = summarize(result->host_path_us, host_s, ps);
    host_wall = summarize(result->host_path_wall_us, host_s, ps);
    out << std::setprecision(3)
        << "Host path (pinned host buffers bound to the context: the library copies in and out "
           "itself, inside its CUDA graph; "
        << result->host_path_us.size() << " calls):\n";
    print_stats(out, "  Latency (GPU events around enqueue)", *host_path);
    print_stats(out, "  Latency (host, enqueue to outputs in host memory)", *host_wall);
  }

  if (!options.export_times.empty()) {
    nlohmann::json times = nlohmann::json::array();
    for (const GpuIteration& it : its) {
      times.push_back({{"stream", it.stream}, {"start_ms", it.start_ms},
                       {"latency_us", it.latency_us}, {"h2d_us", it.h2d_us},
                       {"compute_us", it.compute_us}, {"d2h_us", it.d2h_us},
                       {"enqueue_us", it.enqueue_us}});
    }
    nlohmann::json json = {
        {"summary",
         {{"engine", source},
          {"backend", "cuda"},
          {"precision", engine.info().precision},
          {"plan_hash", engine.info().plan_hash},
          {"shapes", shapes_text(shapes)},
          {"streams", options.inf_streams},
          {"cuda_graph", options.use_cuda_graph},
          {"data_transfers", transfers},
          {"iterations", its.size()},
          {"walltime_s", result->walltime_s},
          {"throughput_qps", latency.qps},
          {"latency_us", stats_json(latency)},
          {"h2d_us", stats_json(h2d)},
          {"compute_us", stats_json(compute)},
          {"d2h_us", stats_json(d2h)},
          {"enqueue_us", stats_json(enqueue)},
          {"peak_rss_mib", rss_mib},
          {"device_bytes", device.current_bytes},
          {"device_peak_bytes", device.peak_bytes},
          {"weight_bytes", engine.info().weight_bytes}}},
        {"times", times}};
    if (host_path) {
      json["summary"]["host_path_us"] = stats_json(*host_path);
      json["summary"]["host_path_wall_us"] = stats_json(*host_wall);
    }
    if (Status written = write_json(options.export_times, json); !written) {
      return report_runtime_error(written);
    }
    out << "Times written to " << options.export_times << '\n';
  }
  if (Status layers = append_layer_profile(engine, options, shapes, profile, out); !layers) {
    return report_runtime_error(layers);
  }
  std::cout << out.str() << std::flush;
  return kExitOk;
}

}  // namespace

CLI::App* add_bench_command(CLI::App& app, BenchOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure an engine's latency and throughput (trtexec's performance summary)");
  cmd->add_option("--loadEngine", options.load_engine, "plan to time, e.g. --loadEngine=mlp.plan");
  cmd->add_option("--onnx", options.build.onnx,
                  "build this ONNX model first (with the build flags), e.g. --onnx=mlp.onnx");
  cmd->add_option("--saveEngine", options.build.save_engine,
                  "with --onnx: also write the plan, e.g. --saveEngine=mlp.plan");
  cmd->add_option("--shapes", options.build.shape_flags.shapes,
                  "input shapes to run (with --onnx also the build profile), e.g. "
                  "--shapes=input:64x784")
      ->allow_extra_args(false);
  add_builder_flags(*cmd, options.build);
  cmd->add_option("--iterations", options.iterations,
                  "time at least N calls, e.g. --iterations=100")
      ->check(CLI::PositiveNumber)
      ->default_str("10");
  cmd->add_option("--warmUp", options.warm_up_ms,
                  "run untimed for N milliseconds first, e.g. --warmUp=200")
      ->check(CLI::NonNegativeNumber)
      ->default_str("200");
  cmd->add_option("--duration", options.duration_s,
                  "time calls for at least S seconds, e.g. --duration=3")
      ->check(CLI::NonNegativeNumber)
      ->default_str("3");
  cmd->add_option("--exportTimes", options.export_times,
                  "write every iteration's time and the summary as JSON, e.g. "
                  "--exportTimes=times.json");
  cmd->add_option("--percentile", options.percentiles,
                  "latency percentiles to report, e.g. --percentile=90,95,99")
      ->default_str("90,95,99");
  cmd->add_flag("--useCudaGraph", options.use_cuda_graph,
                "capture the enqueue in a CUDA graph (cuda plans only), e.g. --useCudaGraph");
  cmd->add_flag("--noDataTransfers", options.no_data_transfers,
                "leave host/device copies out (cuda plans only), e.g. --noDataTransfers");
  cmd->add_option("--infStreams", options.inf_streams,
                  "parallel inference streams (cuda plans only), e.g. --infStreams=2")
      ->check(CLI::PositiveNumber)
      ->default_str("1");
  cmd->add_flag("--splitBatch", options.split_batch,
                "run a --shapes batch past every profile's max in chunks of the best profile "
                "(see mlprt run --splitBatch), e.g. --splitBatch");
  cmd->add_flag("--dumpProfile", options.dump_profile,
                "after the timed run, time each layer in a separate run (as many calls, at "
                "least 10) and print a per-layer table, e.g. --dumpProfile");
  cmd->add_option("--exportProfile", options.export_profile,
                  "write the per-layer times of that run as JSON, e.g. "
                  "--exportProfile=profile.json");
  return cmd;
}

int run_bench_command(const BenchOptions& options) {
  const bool from_onnx = !options.build.onnx.empty();
  if (from_onnx == !options.load_engine.empty()) {
    return report_usage_error("bench needs exactly one of --loadEngine=m.plan or --onnx=m.onnx");
  }
  if (!from_onnx &&
      (!options.build.save_engine.empty() || !options.build.shape_flags.min_shapes.empty())) {
    return report_usage_error(
        "--saveEngine and --minShapes/--optShapes/--maxShapes build an "
        "engine: they need --onnx, not --loadEngine");
  }
  Result<std::vector<double>> ps = parse_percentiles(options.percentiles);
  if (!ps) return report_usage_error(ps.status().message());
  if (!options.export_profile.empty()) {
    // Refused now, not after the runs.
    Status path = check_export_path("--exportProfile", options.export_profile);
    if (!path) return report_runtime_error(path);
  }
  ShapeList shapes_given;
  for (const std::string& value : options.build.shape_flags.shapes) {
    Result<ShapeList> list = parse_shape_list("--shapes", value);
    if (!list) return report_usage_error(list.status().message());
    shapes_given.insert(shapes_given.end(), list->begin(), list->end());
  }

  std::unique_ptr<Engine> engine;
  std::string source = options.load_engine;
  // Cold start: load, context creation and first call are timed and reported (cpu plans).
  auto load_start = Clock::now();
  if (from_onnx) {
    BuiltPlan built = build_from_flags(options.build);
    if (built.exit_code != kExitOk) return built.exit_code;
    source = options.build.onnx;
    load_start = Clock::now();
    Result<std::unique_ptr<Engine>> loaded = Engine::load(built.bytes, source);
    if (!loaded) return report_runtime_error(loaded.status());
    engine = std::move(*loaded);
  } else {
    Result<std::unique_ptr<Engine>> loaded = Engine::load_file(
        options.load_engine, load_options(options.hardware_mismatch));
    if (!loaded) return report_runtime_error(loaded.status());
    engine = std::move(*loaded);
  }
  const std::string& backend = engine->info().backend;
  if (backend != "cuda" && backend != "tensorrt") {
    for (const auto& [used, flag] : {std::pair{options.use_cuda_graph, "--useCudaGraph"},
                                     std::pair{options.no_data_transfers, "--noDataTransfers"},
                                     std::pair{options.inf_streams != 1, "--infStreams"}}) {
      if (used) {
        return report_usage_error(cat(flag, " applies to cuda plans; '", source, "' is a ", backend,
                                      " plan, which runs on the host without streams "
                                      "or transfers"));
      }
    }
  }

  Result<std::map<std::string, Dims>> shapes = input_shapes(*engine, shapes_given);
  if (!shapes) return report_runtime_error(shapes.status());
  Result<int> profile = engine->find_profile(*shapes);
  // --splitBatch: a batch past every profile runs in the context's chunks, from any profile.
  if (!profile && options.split_batch) profile = 0;
  if (!profile) return report_runtime_error(profile.status());
  if (backend == "cuda") return bench_gpu(*engine, source, options, *shapes, *profile, *ps);
  const double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - load_start).count();
  const auto context_start = Clock::now();
  Result<std::unique_ptr<ExecutionContext>> made = engine->create_execution_context();
  if (!made) return report_runtime_error(made.status());
  ExecutionContext& context = **made;
  if (options.build.threads > 0) {
    Status status = context.set_num_threads(options.build.threads);
    if (!status) return report_runtime_error(status);
  }
  Status status = context.set_optimization_profile(*profile);
  if (!status) return report_runtime_error(status);
  if (options.split_batch) {
    status = context.set_split_batch(true);
    if (!status) return report_runtime_error(status.with_context("--splitBatch"));
  }

  std::mt19937 rng(42);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::map<std::string, std::vector<std::byte>> buffers;
  int64_t batch = 0;
  for (const auto& [name, dims] : *shapes) {
    const TensorDesc* desc = engine->find_io_tensor(name);
    status = context.set_input_shape(name, dims);
    if (!status) return report_runtime_error(status);
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    if (batch == 0 && !dims.empty()) batch = dims[0];
    std::vector<float> values(static_cast<size_t>(n));
    for (float& v : values) v = uniform(rng);
    std::vector<std::byte>& data = buffers[name];
    data.resize(values.size() * element_size(desc->dtype));
    convert_floats(values.data(), DataType::kFloat32, data.data(), desc->dtype, values.size());
  }
  for (auto& [name, data] : buffers) {
    status = context.set_tensor_address(name, data.data());
    if (!status) return report_runtime_error(status);
  }
  for (const TensorDesc& t : engine->io_tensors()) {
    if (t.mode != TensorIOMode::kOutput) continue;
    Result<Dims> dims = context.tensor_shape(t.name);
    if (!dims) return report_runtime_error(dims.status());
    int64_t n = 1;
    for (int64_t d : *dims) n *= d;
    std::vector<std::byte>& data = buffers[t.name];
    data.resize(static_cast<size_t>(std::max<int64_t>(n, 1)) * element_size(t.dtype));
    status = context.set_tensor_address(t.name, data.data());
    if (!status) return report_runtime_error(status);
  }

  const double context_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - context_start).count();
  const auto first_start = Clock::now();
  status = context.enqueue();
  if (!status) return report_runtime_error(status);
  const double first_call_us =
      std::chrono::duration<double, std::micro>(Clock::now() - first_start).count();
  const auto warm_until = Clock::now() + std::chrono::milliseconds(options.warm_up_ms);
  do {
    status = context.enqueue();
    if (!status) return report_runtime_error(status);
  } while (Clock::now() < warm_until);

  std::vector<double> start_ms;
  std::vector<double> latency_us;
  const auto begin = Clock::now();
  const auto min_end = begin + std::chrono::duration<double>(options.duration_s);
  auto now = begin;
  while (latency_us.size() < static_cast<size_t>(options.iterations) || now < min_end) {
    const auto t0 = Clock::now();
    status = context.enqueue();
    now = Clock::now();
    if (!status) return report_runtime_error(status);
    start_ms.push_back(std::chrono::duration<double, std::milli>(t0 - begin).count());
    latency_us.push_back(std::chrono::duration<double, std::micro>(now - t0).count());
  }
  const Summary s = summarize(latency_us, std::chrono::duration<double>(now - begin).count(), *ps);

  std::ostringstream out;
  out << std::fixed << std::setprecision(3) << "=== Performance summary ===\n"
      << "Engine: " << source << " (" << backend << ", " << engine->info().precision << "), shapes "
      << shapes_text(*shapes) << ", threads "
      << (options.build.threads > 0 ? std::to_string(options.build.threads) : "default") << '\n'
      << "Throughput: " << s.qps << " qps ("
      << s.qps * static_cast<double>(std::max<int64_t>(batch, 1)) << " rows/s)\n";
  print_stats(out, "Latency", s);
  out << std::setprecision(6) << "Total host walltime: " << s.walltime_s
      << " s, iterations: " << latency_us.size() << '\n';
  // Cold start, memory (before the peak measurement below allocates its own matrices) and the
  // CPU's matmul peak at the engine's lowest precision on the same threads, measured now.
  const double rss_mib = peak_rss_mib();
  const double weight_mib = static_cast<double>(engine->info().weight_bytes) / (1024.0 * 1024.0);
  const double flops = engine_flops(*engine, *shapes);
  const double gflops = s.median > 0 ? flops / s.median / 1e3 : 0.0;
  const std::string peak_prec = peak_precision(engine->info());
  Result<double> peak = measure_cpu_matmul_peak(peak_prec, options.build.threads);
  out << std::setprecision(3) << "Cold start: load " << load_ms << " ms, context " << context_ms
      << " ms, first call " << first_call_us << " us (" << first_call_us / s.median
      << "x the median)\n"
      << "Memory: peak RSS " << rss_mib << " MiB"
      << (from_onnx ? " (the build included; --loadEngine for the run alone)" : "")
      << ", weights " << weight_mib << " MiB\n"
      << "Matmul: " << gflops << " GFLOP/s at the median (" << flops / 1e9
      << " GFLOP a call); CPU peak ";
  if (peak) {
    out << peak_prec << " " << *peak << " GFLOP/s on these threads (" << 100.0 * gflops / *peak
        << "% of it)\n";
  } else {
    out << "not measured: " << peak.status().message() << '\n';
  }

  if (!options.export_times.empty()) {
    nlohmann::json times = nlohmann::json::array();
    for (size_t i = 0; i < latency_us.size(); ++i) {
      times.push_back({{"start_ms", start_ms[i]}, {"latency_us", latency_us[i]}});
    }
    const nlohmann::json json = {{"summary",
                                  {{"engine", source},
                                   {"backend", backend},
                                   {"precision", engine->info().precision},
                                   {"plan_hash", engine->info().plan_hash},
                                   {"shapes", shapes_text(*shapes)},
                                   {"threads", options.build.threads},
                                   {"iterations", latency_us.size()},
                                   {"walltime_s", s.walltime_s},
                                   {"throughput_qps", s.qps},
                                   {"latency_us", stats_json(s)},
                                   {"load_ms", load_ms},
                                   {"context_ms", context_ms},
                                   {"first_call_us", first_call_us},
                                   {"peak_rss_mib", rss_mib},
                                   {"weight_bytes", engine->info().weight_bytes},
                                   {"gflop_per_call", flops / 1e9},
                                   {"gflops", gflops},
                                   {"peak_precision", peak_prec},
                                   {"cpu_peak_gflops", peak ? nlohmann::json(*peak)
                                                            : nlohmann::json(nullptr)}}},
                                 {"times", times}};
    status = write_json(options.export_times, json);
    if (!status) return report_runtime_error(status);
    out << "Times written to " << options.export_times << '\n';
  }
  status = append_layer_profile(*engine, options, *shapes, *profile, out);
  if (!status) return report_runtime_error(status);
  std::cout << out.str() << std::flush;
  return kExitOk;
}

}  // namespace mlprt::cli
