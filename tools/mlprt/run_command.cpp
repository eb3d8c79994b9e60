#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>

#include "cli_common.h"
#include "commands.h"
#include "mlprt/builder.h"
#include "mlprt/device.h"
#include "mlprt/engine.h"
#include "mlprt/float16.h"
#include "npy.h"

namespace mlprt::cli {
namespace {

using Clock = std::chrono::steady_clock;

/// "name:path" or a bare path, split against the engine's tensor names so that names holding
/// ':' work; name is empty for a bare path.
struct NamedPath {
  std::string name;
  std::string path;
};

std::vector<std::string> tensor_names(const Engine& engine, TensorIOMode mode) {
  std::vector<std::string> names;
  for (const TensorDesc& desc : engine.io_tensors()) {
    if (desc.mode == mode) names.push_back(desc.name);
  }
  return names;
}

/// Syntax only (usage errors): every item non-empty with a path.
Status check_named_paths(std::string_view flag, const std::vector<std::string>& values) {
  for (const std::string& value : values) {
    for (const std::string& item : split_list(value)) {
      if (item.empty() || item.back() == ':') {
        return {
            StatusCode::kInvalidArgument,
            cat(flag, ": '", value, "' needs a file for each entry, e.g. ", flag, "=input:x.npy")};
      }
    }
  }
  return Status::ok();
}

Result<NamedPath> resolve_named_path(std::string_view flag, const std::string& item,
                                     const std::vector<std::string>& names, const char* kind) {
  const std::string* best = nullptr;
  for (const std::string& name : names) {
    if (item.size() > name.size() + 1 && item.compare(0, name.size(), name) == 0 &&
        item[name.size()] == ':' && (!best || name.size() > best->size())) {
      best = &name;
    }
  }
  if (best) return NamedPath{*best, item.substr(best->size() + 1)};
  size_t colon = item.find(':');
  if (colon == std::string::npos) return NamedPath{"", item};
  return Status(StatusCode::kNotFound,
                cat(flag, "=", item, ": the engine has no ", kind, " named '",
                    item.substr(0, colon), "'; its ", kind, "s are ", quoted_list(names)));
}

struct Input {
  std::string name;
  std::string path;
  NpyArray array;
  int64_t row_size = 0;  ///< elements per index of axis 0
  DataType dtype = DataType::kFloat32;  ///< the engine's input type
  std::vector<uint16_t> narrow;         ///< the values as float16 / bfloat16 for such inputs

  [[nodiscard]] void* row(int64_t index) {
    const auto offset = static_cast<size_t>(index * row_size);
    if (dtype == DataType::kFloat32) return array.values.data() + offset;
    return narrow.data() + offset;
  }
};

struct Output {
  std::string name;
  Dims dims;  ///< of the concatenation
  std::vector<float> values;
};

/// One pass over the whole input: chunks of `batch` rows along axis 0 (all rows if 0).
class Runner {
 public:
  Runner(const Engine& engine, std::vector<Input>& inputs, std::vector<Output>& outputs,
         int forced_profile, int64_t batch, bool split_batch)
      : m_engine(engine),
        m_inputs(inputs),
        m_outputs(outputs),
        m_forced_profile(forced_profile),
        m_batch(batch),
        m_split_batch(split_batch) {}

  Status run_pass(std::vector<double>* call_us, bool collect) {
    const Input& first = m_inputs.front();
    const int64_t rows = first.array.dims.empty() ? 0 : first.array.dims[0];
    const bool chunked = m_batch > 0 && rows > 0;
    const int64_t step = chunked ? m_batch : std::max<int64_t>(rows, 1);
    if (collect) {
      for (Output& output : m_outputs) {
        output.values.clear();
        output.dims.clear();
      }
    }
    for (int64_t start = 0; start < std::max<int64_t>(rows, 1); start += step) {
      const int64_t count = chunked ? std::min(step, rows - start) : rows;
      std::map<std::string, Dims> shapes;
      for (const Input& input : m_inputs) {
        Dims dims = input.array.dims;
        if (chunked) dims[0] = count;
        shapes[input.name] = dims;
      }
      int profile = m_forced_profile;
      if (profile < 0) {
        Result<int> found = m_engine.find_profile(shapes);
        // --splitBatch: a batch past every profile is the context's to split; any profile will
        // do (it picks the best one for the chunks).
        if (!found && !m_split_batch) return found.status();
        profile = found ? *found : 0;
      }
      // The context resolves shapes as soon as every input has one, so with several inputs a
      // new batch size would be checked against the other inputs' old sizes: start afresh.
      if (!m_context || (m_inputs.size() > 1 && shapes != m_last_shapes)) {
        Result<std::unique_ptr<ExecutionContext>> context = m_engine.create_execution_context();
        if (!context) return context.status();
        m_context = std::move(*context);
        m_profile_set = false;
        if (m_split_batch) {
          Status status = m_context->set_split_batch(true);
          if (!status) return status.with_context("--splitBatch");
        }
      }
      m_last_shapes = shapes;
      const auto begin = Clock::now();
      if (profile != m_context->optimization_profile() || !m_profile_set) {
        Status status = m_context->set_optimization_profile(profile);
        if (!status) return status;
        m_profile_set = true;
      }
      for (Input& input : m_inputs) {
        Status status = m_context->set_input_shape(input.name, shapes[input.name]);
        if (!status) return status;
        status = m_context->set_tensor_address(input.name, input.row(chunked ? start : 0));
        if (!status) return status;
      }
      Status status = m_context->enqueue();
      if (!status) return status;
      const std::chrono::duration<double, std::micro> elapsed = Clock::now() - begin;
      if (call_us) call_us->push_back(elapsed.count());
      if (collect) {
        status = append_outputs(chunked);
        if (!status) return status;
      }
    }
    return Status::ok();
  }

 private:
  Status append_outputs(bool chunked) {
    for (Output& output : m_outputs) {
      Result<TensorView> view = m_context->output(output.name);
      if (!view) return view.status();
      // float16 / bfloat16 outputs are widened (exactly) to float32.
      Result<int64_t> count = volume(view->dims);
      if (!count) return count.status();
      m_widened.resize(static_cast<size_t>(*count));
      convert_floats(view->data, view->dtype, m_widened.data(), DataType::kFloat32,
                     m_widened.size());
      std::span<const float> values = m_widened;
      if (output.dims.empty() && output.values.empty()) {
        output.dims = view->dims;
      } else {
        // Later chunks: same trailing dims, concatenated along axis 0.
        const bool compatible =
            chunked && !view->dims.empty() && view->dims.size() == output.dims.size() &&
            std::equal(view->dims.begin() + 1, view->dims.end(), output.dims.begin() + 1);
        if (!compatible) {
          return {StatusCode::kInvalidArgument,
                  cat("output '", output.name, "' has shape ", to_string(view->dims),
                      " in one batch and ", to_string(output.dims),
                      " so far; --batch needs outputs that split along axis 0")};
        }
        output.dims[0] += view->dims[0];
      }
      output.values.insert(output.values.end(), values.begin(), values.end());
    }
    return Status::ok();
  }

  const Engine& m_engine;
  std::unique_ptr<ExecutionContext> m_context;
  std::vector<float> m_widened;
  std::map<std::string, Dims> m_last_shapes;
  std::vector<Input>& m_inputs;
  std::vector<Output>& m_outputs;
  int m_forced_profile;
  int64_t m_batch;
  bool m_split_batch;
  bool m_profile_set = false;
};

Result<std::vector<Input>> load_inputs(const Engine& engine, const RunOptions& options) {
  const std::vector<std::string> names = tensor_names(engine, TensorIOMode::kInput);
  std::vector<Input> inputs;
  std::set<std::string> given;
  for (const std::string& value : options.load_inputs) {
    for (const std::string& item : split_list(value)) {
      Result<NamedPath> named = resolve_named_path("--loadInputs", item, names, "input");
      if (!named) return named.status();
      if (named->name.empty()) {
        if (names.size() != 1) {
          return Status(StatusCode::kInvalidArgument,
                        cat("--loadInputs=", item, ": the engine has ", names.size(), " inputs (",
                            quoted_list(names), "), name each one, e.g. --loadInputs=",
                            names.empty() ? "input" : names.front(), ":x.npy"));
        }
        named->name = names.front();
      }
      if (!given.insert(named->name).second) {
        return Status(StatusCode::kInvalidArgument,
                      cat("--loadInputs: input '", named->name, "' is given twice"));
      }
      const TensorDesc* desc = engine.find_io_tensor(named->name);
      Result<NpyArray> array = read_npy(named->path);
      if (!array) return array.status();
      Input input{named->name, named->path, std::move(*array), 0, DataType::kFloat32, {}};
      if (desc && desc->dtype != DataType::kFloat32) {
        input.dtype = desc->dtype;
        input.narrow.resize(input.array.values.size());
        convert_floats(input.array.values.data(), DataType::kFloat32, input.narrow.data(),
                       desc->dtype, input.narrow.size());
        if (!(desc->dtype == DataType::kFloat16 && input.array.source_dtype == "<f2")) {
          std::cerr << "mlprt: info: input '" << input.name << "': values of '" << input.path << "' ("
                    << input.array.source_dtype << ") rounded to " << to_string(desc->dtype)
                    << ", the engine's input type\n";
        }
      }
      if (!input.array.dims.empty() && input.array.dims[0] > 0) {
        input.row_size = static_cast<int64_t>(input.array.values.size()) / input.array.dims[0];
      }
      inputs.push_back(std::move(input));
    }
  }
  for (const std::string& name : names) {
    if (!given.count(name)) {
      return Status(
          StatusCode::kInvalidArgument,
          cat("engine input '", name, "' has no data; give it with --loadInputs=", name, ":x.npy"));
    }
  }
  if (options.batch > 0) {
    for (const Input& input : inputs) {
      if (input.array.dims.empty()) {
        return Status(StatusCode::kInvalidArgument,
                      cat("--batch splits axis 0, but input '", input.name, "' from '", input.path,
                          "' is a scalar"));
      }
      if (input.array.dims[0] != inputs.front().array.dims[0]) {
        return Status(StatusCode::kInvalidArgument,
                      cat("--batch splits axis 0 of every input, but '", inputs.front().name,
                          "' has ", inputs.front().array.dims[0], " rows and '", input.name,
                          "' has ", input.array.dims[0]));
      }
    }
  }
  return inputs;
}

/// --exportOutput values resolved to (output index, path), checked before running.
Result<std::vector<std::pair<size_t, std::string>>> resolve_exports(
    const Engine& engine, const RunOptions& options, const std::vector<Output>& outputs) {
  const std::vector<std::string> names = tensor_names(engine, TensorIOMode::kOutput);
  std::vector<std::pair<size_t, std::string>> exports;
  std::set<std::string> paths;
  for (const std::string& value : options.export_outputs) {
    for (const std::string& item : split_list(value)) {
      Result<NamedPath> named = resolve_named_path("--exportOutput", item, names, "output");
      if (!named) return named.status();
      if (names.empty()) {
        return Status(StatusCode::kInvalidArgument, "the engine has no outputs to export");
      }
      if (named->name.empty()) named->name = names.front();
      if (!paths.insert(named->path).second) {
        return Status(StatusCode::kInvalidArgument,
                      cat("--exportOutput: '", named->path, "' is given twice"));
      }
      for (size_t i = 0; i < outputs.size(); ++i) {
        if (outputs[i].name == named->name) exports.emplace_back(i, named->path);
      }
    }
  }
  return exports;
}

// The median of `sorted` (ascending, not empty): the mean of the middle two for an even count.
double median_of_sorted(const std::vector<double>& sorted) {
  const size_t n = sorted.size();
  return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

void print_latency(std::vector<double> call_us, int64_t rows, int64_t batch, int iterations) {
  if (call_us.empty()) return;
  std::sort(call_us.begin(), call_us.end());
  double sum = 0;
  for (double us : call_us) sum += us;
  const size_t n = call_us.size();
  const double median = median_of_sorted(call_us);
  const double rows_per_s = sum > 0 ? static_cast<double>(rows) * iterations / (sum * 1e-6) : 0;
  std::cout << std::fixed << std::setprecision(2) << "Latency: " << n << " calls (batch "
            << (batch > 0 ? std::to_string(batch) : std::string("all")) << ", " << rows
            << " rows x " << iterations << " iterations): mean " << sum / static_cast<double>(n)
            << " us, median " << median << " us, min " << call_us.front() << " us, max "
            << call_us.back() << " us; " << std::setprecision(0) << rows_per_s << " rows/s"
            << std::defaultfloat << std::endl;
}

/// CLI11's own range validators print the type's whole range; this says what is allowed.
CLI::Validator at_least(long long minimum) {
  return CLI::Validator(
      [minimum](std::string& value) {
        long long number = 0;
        if (!CLI::detail::lexical_cast(value, number))
          return cat("'", value, "' is not an integer");
        if (number < minimum) return cat("must be at least ", minimum, ", got ", value);
        return std::string();
      },
      cat(">=", minimum));
}

}  // namespace

CLI::App* add_run_command(CLI::App& app, RunOptions& options) {
  CLI::App* cmd = app.add_subcommand("run", "Run an engine on .npy inputs");
  cmd->add_option("--loadEngine", options.load_engine, "plan to run, e.g. --loadEngine=mlp.plan")
      ->required();
  cmd->add_option("--loadInputs", options.load_inputs,
                  "input data as name:file.npy (float32; float64/float16 are converted), "
                  "repeatable or comma-separated, a bare file for a single-input engine, e.g. "
                  "--loadInputs=input:x.npy")
      ->required()
      ->allow_extra_args(false);
  cmd->add_option("--exportOutput", options.export_outputs,
                  "write an output as float32 .npy with its real shape, name:file.npy or a bare "
                  "file for the first output, repeatable, e.g. --exportOutput=output:y.npy")
      ->allow_extra_args(false);
  cmd->add_option("--profile", options.profile,
                  "optimization profile to use (default: the first that holds the input "
                  "shapes), e.g. --profile=1")
      ->check(at_least(0));
  cmd->add_option("--batch", options.batch,
                  "run the inputs in chunks of N rows along axis 0 and concatenate the outputs, "
                  "e.g. --batch=64")
      ->check(at_least(1));
  cmd->add_option("--iterations", options.iterations,
                  "repeat the whole run N times for timing, e.g. --iterations=10")
      ->check(at_least(1))
      ->default_str("1");
  cmd->add_option("--warmUp", options.warm_up_ms,
                  "run untimed for at least N milliseconds first, e.g. --warmUp=200")
      ->check(at_least(0))
      ->default_str("0");
  cmd->add_flag("--check", options.check,
                "after running, compare every output with the float64 reference evaluator on "
                "the plan's graph; print rel L2 and max abs error; exit 1 above --checkTolerance");
  cmd->add_option("--checkTolerance", options.check_tolerance,
                  "largest rel L2 error --check accepts, e.g. --checkTolerance=1e-3")
      ->check(CLI::PositiveNumber)
      ->default_str("1e-5");
  cmd->add_option("--device", options.device, "GPU to run a cuda plan on, e.g. --device=1")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--splitBatch", options.split_batch,
                "run a batch past every profile's max in chunks of the best profile (the one "
                "with the largest max batch) and concatenate the outputs; only for plans whose "
                "rows the builder proved independent, e.g. --splitBatch");
  return cmd;
}

namespace {

// --check: float64 reference on the same inputs; true if every output is within tolerance.
Result<bool> check_outputs(const Engine& engine, const std::vector<Input>& inputs,
                           const std::vector<Output>& outputs, double tolerance) {
  std::map<std::string, ReferenceTensor> ref_inputs;
  for (const Input& input : inputs) {
    // The values the engine received: rounded to its input type.
    std::vector<float> fed(input.array.values.size());
    convert_floats(input.dtype == DataType::kFloat32 ? static_cast<const void*>(input.array.values.data())
                                                     : input.narrow.data(),
                   input.dtype, fed.data(), DataType::kFloat32, fed.size());
    ref_inputs[input.name] =
        ReferenceTensor{input.array.dims, std::vector<double>(fed.begin(), fed.end())};
  }
  auto computed = engine.reference_outputs(ref_inputs);
  if (!computed) return computed.status();
  const std::map<std::string, ReferenceTensor>& reference = *computed;
  bool ok = true;
  for (const Output& output : outputs) {
    const ReferenceTensor& ref = reference.at(output.name);
    if (ref.dims != output.dims) {
      std::cout << "Check '" << output.name << "': shape " << to_string(output.dims)
                << " but the reference has " << to_string(ref.dims) << ": FAIL\n";
      ok = false;
      continue;
    }
    double num = 0.0, den = 0.0, max_abs = 0.0;
    for (size_t i = 0; i < ref.values.size(); ++i) {
      const double d = static_cast<double>(output.values[i]) - ref.values[i];
      num += d * d;
      den += ref.values[i] * ref.values[i];
      max_abs = std::max(max_abs, std::abs(d));
    }
    // An all-zero reference: the absolute L2 error stands in for the relative one.
    const double rel = den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
    const bool pass = rel <= tolerance && std::isfinite(rel);
    ok = ok && pass;
    std::cout << std::scientific << std::setprecision(3) << "Check '" << output.name
              << "': rel L2 " << rel << ", max abs " << max_abs << " (tolerance " << tolerance
              << "): " << (pass ? "PASS" : "FAIL") << '\n';
  }
  return ok;
}

}  // namespace

int run_run_command(const RunOptions& options) {
  for (const auto& [flag, values] : {std::pair{"--loadInputs", &options.load_inputs},
                                     std::pair{"--exportOutput", &options.export_outputs}}) {
    Status syntax = check_named_paths(flag, *values);
    if (!syntax) return report_usage_error(syntax.message());
  }

  if (options.device >= 0) {
    if (Status s = set_device(options.device); !s) return report_runtime_error(s);
  }
  const auto load_start = Clock::now();
  Result<std::unique_ptr<Engine>> loaded = Engine::load_file(
      options.load_engine, load_options(options.hardware_mismatch));
  if (!loaded) return report_runtime_error(loaded.status());
  const double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - load_start).count();
  const Engine& engine = **loaded;
  if (options.profile >= engine.num_profiles()) {
    return report_runtime_error(
        Status(StatusCode::kOutOfRange,
               cat("--profile=", options.profile, ": '", options.load_engine, "' has ",
                   engine.num_profiles(), " profile(s), numbered from 0")));
  }

  Result<std::vector<Input>> inputs = load_inputs(engine, options);
  if (!inputs) return report_runtime_error(inputs.status());
  if (inputs->empty()) {
    return report_runtime_error(Status(StatusCode::kInvalidArgument, "the engine has no inputs"));
  }
  std::vector<Output> outputs;
  for (const std::string& name : tensor_names(engine, TensorIOMode::kOutput)) {
    outputs.push_back(Output{name, {}, {}});
  }
  auto exports = resolve_exports(engine, options, outputs);
  if (!exports) return report_runtime_error(exports.status());

  Runner runner(engine, *inputs, outputs, options.profile, options.batch, options.split_batch);

  // Cold start: the first call of the process (profile, shapes, inference; the context is
  // created before it), timed as every call is, whether warm-up or timed.
  double first_call_us = -1.0;
  auto pass = [&](std::vector<double>* times, bool keep) {
    if (first_call_us >= 0.0) return runner.run_pass(times, keep);
    std::vector<double> first;
    Status status = runner.run_pass(&first, keep);
    if (!first.empty()) first_call_us = first.front();
    if (times != nullptr) times->insert(times->end(), first.begin(), first.end());
    return status;
  };
  if (options.warm_up_ms > 0) {
    const auto until = Clock::now() + std::chrono::milliseconds(options.warm_up_ms);
    do {
      Status status = pass(nullptr, false);
      if (!status) return report_runtime_error(status);
    } while (Clock::now() < until);
  }
  std::vector<double> call_us;
  for (int i = 0; i < options.iterations; ++i) {
    Status status = pass(&call_us, i + 1 == options.iterations);
    if (!status) return report_runtime_error(status);
  }

  // Encode everything first so that a failure leaves no output file behind.
  std::vector<std::pair<std::string, std::vector<uint8_t>>> files;
  for (const auto& [index, path] : *exports) {
    Result<std::vector<uint8_t>> bytes = encode_npy(outputs[index].dims, outputs[index].values);
    if (!bytes) return report_runtime_error(bytes.status());
    files.emplace_back(path, std::move(*bytes));
  }
  for (const auto& [path, bytes] : files) {
    Status status = write_file_atomic(path, bytes);
    if (!status) return report_runtime_error(status);
  }

  const Input& first = inputs->front();
  const int64_t rows = first.array.dims.empty() ? 1 : first.array.dims[0];
  print_latency(call_us, rows, options.batch, options.iterations);
  if (!call_us.empty()) {
    std::vector<double> sorted = call_us;
    std::sort(sorted.begin(), sorted.end());
    const double median = median_of_sorted(sorted);
    std::cout << std::fixed << std::setprecision(3) << "Cold start: load " << load_ms
              << " ms, first call " << first_call_us << " us ("
              << (median > 0.0 ? first_call_us / median : 0.0) << "x the median)\n";
  }
  for (const Output& output : outputs) {
    std::cout << "Output '" << output.name << "': " << to_string(output.dims);
    for (const auto& [index, path] : *exports) {
      if (outputs[index].name == output.name) std::cout << " -> " << path;
    }
    std::cout << '\n';
  }
  if (options.check) {
    Result<bool> ok = check_outputs(engine, *inputs, outputs, options.check_tolerance);
    if (!ok) return report_runtime_error(ok.status());
    std::cout.flush();
    if (!*ok) return kExitRuntimeError;
  }
  std::cout.flush();
  return kExitOk;
}

}  // namespace mlprt::cli
