// The cuda builder's timing cache: a second build with a warm cache times nothing and writes
// the same plan bytes. Skipped where no CUDA device is present.

#include <gtest/gtest.h>

#include <filesystem>

#include "backends/registry.h"
#include "cpu_test_graphs.h"
#include "mlprt/mlprt.h"

namespace mlprt::testing {
namespace {

TEST(CudaTimingCache, WarmCacheSkipsTimingAndGivesTheSamePlan) {
  auto backend = backend::find_backend("cuda");
  if (!backend.is_ok()) GTEST_SKIP() << "no CUDA device: " << backend.status().message();
  const Status available = (*backend)->check_available();
  if (!available.is_ok()) GTEST_SKIP() << "no CUDA device: " << available.message();
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

}  // namespace
}  // namespace mlprt::testing
