#include "bench_profile.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <random>
#include <string_view>

#include "cli_common.h"
#include "mlprt/builder.h"
#include "mlprt/float16.h"
#include "mlprt/profiler.h"

namespace mlprt::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Every layer's time of every recorded call, layers in the order they first reported.
class LayerTimes final : public Profiler {
 public:
  bool recording = false;
  void report_layer_time(std::string_view layer_name, float ms) override {
    if (!recording) return;
    for (auto& [name, times] : m_layers) {
      if (name == layer_name) {
        times.push_back(ms);
        return;
      }
    }
    m_layers.emplace_back(std::string(layer_name), std::vector<float>{ms});
  }
  [[nodiscard]] const std::vector<std::pair<std::string, std::vector<float>>>& layers() const {
    return m_layers;
  }

 private:
  std::vector<std::pair<std::string, std::vector<float>>> m_layers;
};

double median(std::vector<float> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  if (n == 0) return 0.0;
  return n % 2 ? values[n / 2] : (static_cast<double>(values[n / 2 - 1]) + values[n / 2]) / 2;
}

// A context in `profile` with `shapes` bound to random inputs and host output buffers it owns.
Status bind_random_io(const Engine& engine, ExecutionContext& context,
                      const std::map<std::string, Dims>& shapes,
                      std::map<std::string, std::vector<std::byte>>& buffers) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (const auto& [name, dims] : shapes) {
    const TensorDesc* desc = engine.find_io_tensor(name);
    if (desc == nullptr) return Status(StatusCode::kNotFound, cat("no input '", name, "'"));
    if (Status failed = context.set_input_shape(name, dims); !failed) return failed;
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<float> values(static_cast<size_t>(n));
    for (float& v : values) v = uniform(rng);
    std::vector<std::byte>& data = buffers[name];
    data.resize(std::max<size_t>(values.size(), 1) * element_size(desc->dtype));
    convert_floats(values.data(), DataType::kFloat32, data.data(), desc->dtype, values.size());
    if (Status failed = context.set_tensor_address(name, data.data()); !failed) return failed;
  }
  for (const TensorDesc& t : engine.io_tensors()) {
    if (t.mode != TensorIOMode::kOutput) continue;
    Result<Dims> dims = context.tensor_shape(t.name);
    if (!dims) return dims.status();
    int64_t n = 1;
    for (int64_t d : *dims) n *= d;
    std::vector<std::byte>& data = buffers[t.name];
    data.resize(static_cast<size_t>(std::max<int64_t>(n, 1)) * element_size(t.dtype));
    if (Status failed = context.set_tensor_address(t.name, data.data()); !failed) return failed;
  }
  return Status::ok();
}

}  // namespace

Result<LayerProfile> profile_layers(const Engine& engine, int profile,
                                    const std::map<std::string, Dims>& shapes,
                                    const LayerProfileOptions& options) {
  Result<std::unique_ptr<ExecutionContext>> made = engine.create_execution_context();
  if (!made) return made.status();
  ExecutionContext& context = **made;
  Status status = options.threads > 0 ? context.set_num_threads(options.threads) : Status::ok();
  if (status) status = context.set_optimization_profile(profile);
  if (status && options.split_batch) status = context.set_split_batch(true);
  std::map<std::string, std::vector<std::byte>> buffers;
  if (status) status = bind_random_io(engine, context, shapes, buffers);
  LayerTimes times;
  if (status) status = context.set_profiler(&times);
  if (!status) return status;

  const auto warm_until = Clock::now() + std::chrono::milliseconds(options.warm_up_ms);
  do {
    status = context.enqueue();
  } while (status && Clock::now() < warm_until);
  times.recording = true;
  const size_t min_calls = static_cast<size_t>(std::max(options.iterations, 10));
  const auto min_end = Clock::now() + std::chrono::duration<double>(options.duration_s);
  LayerProfile result;
  while (status && (result.calls < min_calls || Clock::now() < min_end)) {
    status = context.enqueue();
    ++result.calls;
  }
  if (status) status = context.set_profiler(nullptr);
  if (!status) return status.with_context("the profiled run");

  for (const auto& [name, ms] : times.layers()) {
    LayerProfileRow row;
    row.name = name;
    for (float t : ms) row.total_ms += t;
    row.average_ms = row.total_ms / static_cast<double>(result.calls);
    row.median_ms = median(ms);
    result.total_average_ms += row.average_ms;
    result.rows.push_back(std::move(row));
  }
  for (LayerProfileRow& row : result.rows) {
    row.percentage =
        result.total_average_ms > 0 ? 100.0 * row.average_ms / result.total_average_ms : 0.0;
  }
  return result;
}

void print_layer_profile(std::ostream& out, const LayerProfile& profile) {
  size_t width = 5;
  for (const LayerProfileRow& row : profile.rows) width = std::max(width, row.name.size());
  out << "=== Profile (" << profile.calls << " iterations, separate from the timed run) ===\n"
      << std::left << std::setw(static_cast<int>(width)) << "Layer" << std::right
      << "   Average(ms)   Median(ms)   Time(%)\n"
      << std::fixed;
  for (const LayerProfileRow& row : profile.rows) {
    out << std::left << std::setw(static_cast<int>(width)) << row.name << std::right
        << std::setprecision(4) << std::setw(14) << row.average_ms << std::setw(13)
        << row.median_ms << std::setprecision(1) << std::setw(10) << row.percentage << '\n';
  }
  out << std::left << std::setw(static_cast<int>(width)) << "Total" << std::right
      << std::setprecision(4) << std::setw(14) << profile.total_average_ms << std::setw(13) << ""
      << std::setprecision(1) << std::setw(10) << 100.0 << '\n';
}

Status export_layer_profile(const std::string& path, const LayerProfile& profile) {
  nlohmann::json json = nlohmann::json::array();
  json.push_back({{"count", profile.calls}, {"totalAverageMs", profile.total_average_ms}});
  for (const LayerProfileRow& row : profile.rows) {
    json.push_back({{"name", row.name},
                    {"timeMs", row.total_ms},
                    {"averageMs", row.average_ms},
                    {"medianMs", row.median_ms},
                    {"percentage", row.percentage}});
  }
  const std::string text = json.dump(1) + "\n";
  return write_file_atomic(
      path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

Status check_export_path(const std::string& flag, const std::string& path) {
  const std::filesystem::path p(path);
  std::error_code ec;
  if (p.filename().empty() || std::filesystem::is_directory(p, ec)) {
    return Status(StatusCode::kInvalidArgument, cat(flag, ": '", path,
                                                    "' is a folder; give a file name, e.g. ",
                                                    flag, "=profile.json"));
  }
  const std::filesystem::path folder = p.has_parent_path() ? p.parent_path() : ".";
  if (!std::filesystem::is_directory(folder, ec)) {
    return Status(StatusCode::kNotFound, cat(flag, ": cannot write '", path, "': folder '",
                                             folder.string(), "' does not exist"));
  }
  return Status::ok();
}

}  // namespace mlprt::cli
