// The cuda builder: a second build with a warm timing cache times nothing and writes the same
// plan bytes; whole-engine timings decide the fused kernels' choice; per-layer precisions are honoured (a mixed engine), a single one for every layer
// makes a single-precision engine. Skipped where no CUDA device is present.

#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "backends/cuda/cuda_engine_timing.h"
#include "cpu_test_graphs.h"
#include "cuda_skip.h"
#include "mlprt/mlprt.h"

namespace mlprt::testing {
namespace {

// The log's lines down to `severity` while in scope; then the default callback and severity.
struct LogLines {
  explicit LogLines(Severity severity) {
    set_log_callback([this](Severity, std::string_view message) { lines.emplace_back(message); });
    set_log_severity(severity);
  }
  ~LogLines() {
    set_log_callback(nullptr);
    set_log_severity(Severity::kWarning);
  }
  std::vector<std::string> lines;
};

TEST(CudaTimingCache, WarmCacheSkipsTimingAndGivesTheSamePlan) {
  SKIP_WITHOUT_GPU();
  GraphMaker maker(5);
  const std::string x = maker.input("x", {-1, 128});
  maker.output(maker.dense(maker.dense(x, 128, 256, true, true), 256, 16));
  Network network(std::make_unique<ir::Graph>(maker.graph()));
  const std::filesystem::path cache =
      std::filesystem::temp_directory_path() / "mlprt_cuda_timing_cache_test.json";
  std::filesystem::remove(cache);
  BuilderConfig config;
  config.backend = "cuda";
  config.timing_cache_path = cache.string();
  OptimizationProfile small, large;
  ASSERT_TRUE(small.set_dimensions("x", {{1, 128}, {8, 128}, {64, 128}}).is_ok());
  ASSERT_TRUE(large.set_dimensions("x", {{65, 128}, {512, 128}, {4096, 128}}).is_ok());
  config.profiles = {small, large};

  LogLines log(Severity::kInfo);
  const std::vector<std::string>& logs = log.lines;
  auto cold = build_serialized_engine(network, config);
  ASSERT_TRUE(cold.is_ok()) << cold.status().message();
  ASSERT_TRUE(std::filesystem::exists(cache));
  auto warm = build_serialized_engine(network, config);
  ASSERT_TRUE(warm.is_ok()) << warm.status().message();

  std::vector<std::string> tactic_lines;
  for (const std::string& line : logs) {
    if (line.find("cuda backend: tactics:") != std::string::npos) tactic_lines.push_back(line);
  }
  ASSERT_EQ(tactic_lines.size(), 2u);
  EXPECT_EQ(tactic_lines[0].find(" 0 timed"), std::string::npos) << tactic_lines[0];
  EXPECT_NE(tactic_lines[1].find(" 0 timed"), std::string::npos) << tactic_lines[1];
  EXPECT_EQ(cold->bytes, warm->bytes);
  std::filesystem::remove(cache);
}

// Every profile with a fused candidate is timed as whole engines, and the plan takes the fastest:
// the fp32 fused kernel where it won (runs below fused_max_rows), the tensor-core one where it won.
TEST(CudaBuilder, WholeEngineTimesDecideTheFusedChoice) {
  SKIP_WITHOUT_GPU();
  GraphMaker maker(7);
  const std::string x = maker.input("x", {-1, 64});
  maker.output(maker.dense(maker.dense(x, 64, 64, true, true), 64, 16));
  Network network(std::make_unique<ir::Graph>(maker.graph()));
  BuilderConfig config;
  config.backend = "cuda";
  const std::vector<int64_t> opts = {1, 32, 4096, 262144};
  for (const int64_t opt : opts) {
    OptimizationProfile profile;
    ASSERT_TRUE(profile.set_dimensions("x", {{opt, 64}, {opt, 64}, {opt, 64}}).is_ok());
    config.profiles.push_back(profile);
  }
  LogLines log(Severity::kVerbose);
  std::vector<std::string>& logs = log.lines;
  for (const bool fp16 : {false, true}) {
    logs.clear();
    config.allow_fp16 = fp16;
    auto built = build_serialized_engine(network, config);
    ASSERT_TRUE(built.is_ok()) << built.status().message();
    auto engine = Engine::load(built->bytes, "whole");
    ASSERT_TRUE(engine.is_ok()) << engine.status().message();
    std::string notes;
    for (const std::string& line : (*engine)->info().tactics) notes += line + "\n";
    const std::regex whole(
        R"(profile (\d+) at M=(\d+), whole engine: cuBLASLt layers ([0-9.e+-]+) us(, fp32 fused ([0-9.e+-]+) us)?(, tensor-core fused ([0-9.e+-]+) us)?)");
    int timed = 0;
    for (const std::string& line : logs) {
      std::smatch m;
      if (!std::regex_search(line, m, whole)) continue;
      ++timed;
      const double layers = std::stod(m[3]);
      const double fp32 = m[5].matched ? std::stod(m[5]) : 1e30;
      const double tc = m[7].matched ? std::stod(m[7]) : 1e30;
      EXPECT_GT(layers, 0.0) << line;
      const std::string profile = "profile " + m[1].str() + " (rows " + m[2].str() + "..";
      const size_t at = notes.find(profile);
      ASSERT_NE(at, std::string::npos) << notes;
      const bool tc_chosen = notes.compare(notes.find("): ", at) + 3, 7, "chosen,") == 0;
      EXPECT_EQ(tc_chosen, tc < std::min(layers, fp32)) << line << "\n" << notes;
    }
    EXPECT_EQ(timed, static_cast<int>(opts.size())) << (fp16 ? "fp16" : "fp32");
  }
}

// The timing cache's key of a whole-engine time: the same for the same structure, choices and
// shapes whatever the weights (a warm cache must answer the next build), different when any of
// those three differ. Host-only: no device needed.
TEST(CudaBuilder, EngineTimingKeysNameStructureChoicesAndShapes) {
  auto make = [](unsigned seed, int64_t width, bool relu) {
    GraphMaker maker(seed);
    const std::string x = maker.input("x", {-1, 64});
    maker.output(maker.dense(maker.dense(x, 64, width, true, relu), width, 16));
    return maker.graph();
  };
  const ir::Graph graph = make(1, 64, true);
  const ir::ShapeMap shapes = {{"x", {4096, 64}}};
  const std::string blob = R"({"fused_max_rows":0})";
  const std::string key = backend::cuda::engine_timing_key(graph, blob, shapes);
  EXPECT_EQ(key.rfind("engine v1 ", 0), 0u) << key;
  EXPECT_EQ(key, backend::cuda::engine_timing_key(graph, blob, shapes));
  EXPECT_EQ(key, backend::cuda::engine_timing_key(make(2, 64, true), blob, shapes))
      << "other weight values, same key";
  EXPECT_NE(key, backend::cuda::engine_timing_key(make(1, 32, true), blob, shapes));
  EXPECT_NE(key, backend::cuda::engine_timing_key(make(1, 64, false), blob, shapes));
  EXPECT_NE(key, backend::cuda::engine_timing_key(graph, R"({"fused_max_rows":4096})", shapes));
  EXPECT_NE(key, backend::cuda::engine_timing_key(graph, blob, {{"x", {4097, 64}}}));
}

TEST(CudaBuilder, LayerPrecisionsAreHonouredPerLayer) {
  SKIP_WITHOUT_GPU();
  GraphMaker maker(6);
  const std::string x = maker.input("x", {-1, 32});
  maker.output(maker.dense(maker.dense(x, 32, 32, true, true), 32, 8));
  Network network(std::make_unique<ir::Graph>(maker.graph()));
  const std::string first = network.graph().nodes.front().name;
  BuilderConfig config;
  config.backend = "cuda";
  config.allow_fp16 = true;
  OptimizationProfile profile;
  ASSERT_TRUE(profile.set_dimensions("x", {{1, 32}, {8, 32}, {64, 32}}).is_ok());
  config.profiles = {profile};
  config.precision_constraints = "obey";
  config.layer_precisions = {{first, "fp32"}};  // the rest: fp16, as --fp16 makes them
  auto mixed = build_serialized_engine(network, config);
  ASSERT_TRUE(mixed.is_ok()) << mixed.status().message();
  auto engine = Engine::load(mixed->bytes, "mixed");
  ASSERT_TRUE(engine.is_ok()) << engine.status().message();
  const auto& layers = (*engine)->info().layers;
  EXPECT_EQ(layers.front().precision.rfind("fp32", 0), 0u) << layers.front().precision;
  EXPECT_EQ(layers.back().precision.rfind("fp16", 0), 0u) << layers.back().precision;
  EXPECT_NE(layers.back().precision.find("cast kernel: input 0 from fp32"), std::string::npos)
      << layers.back().precision;
  config.layer_precisions = {{"*", "fp16"}};  // one precision: a single-precision engine
  auto single = build_serialized_engine(network, config);
  ASSERT_TRUE(single.is_ok());
  auto single_engine = Engine::load(single->bytes, "single");
  ASSERT_TRUE(single_engine.is_ok());
  for (const LayerInfo& layer : (*single_engine)->info().layers) {
    EXPECT_EQ(layer.precision.find("cast kernel"), std::string::npos) << layer.precision;
    EXPECT_EQ(layer.precision.find("writing fp32"), std::string::npos) << layer.precision;
  }
  config.layer_precisions = {{"no_such_layer", "fp16"}};
  EXPECT_EQ(build_serialized_engine(network, config).status().code(), StatusCode::kNotFound);
  config.precision_constraints = "prefer";
  config.layer_precisions = {{first, "fp32"}};
  EXPECT_TRUE(build_serialized_engine(network, config).is_ok());
}

}  // namespace
}  // namespace mlprt::testing
