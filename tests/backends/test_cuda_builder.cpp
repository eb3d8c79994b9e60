// The cuda builder: a second build with a warm timing cache times nothing and writes the same
// plan bytes; per-layer precisions are honoured (a mixed engine), a single one for every layer
// makes a single-precision engine. Skipped where no CUDA device is present.

#include <gtest/gtest.h>

#include <filesystem>

#include "cpu_test_graphs.h"
#include "cuda_skip.h"
#include "mlprt/mlprt.h"

namespace mlprt::testing {
namespace {

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

  std::vector<std::string> logs;
  struct ResetLog {
    ~ResetLog() { set_log_callback(nullptr); }
  } reset_log;
  set_log_callback([&](Severity, std::string_view message) { logs.emplace_back(message); });
  set_log_severity(Severity::kInfo);
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
