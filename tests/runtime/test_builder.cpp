#include <gtest/gtest.h>

#include <filesystem>

#include "mlprt/builder.h"
#include "mlprt/engine.h"
#include "test_graphs.h"

namespace mlprt {
namespace {

using test::make_mlp_graph;
using test::make_network;

OptimizationProfile profile(Dims min, Dims opt, Dims max, const std::string& name = "input") {
  OptimizationProfile p;
  EXPECT_TRUE(p.set_dimensions(name, {std::move(min), std::move(opt), std::move(max)}).is_ok());
  return p;
}

std::string build_error(const ir::Graph& graph, const BuilderConfig& config) {
  auto network = make_network(graph);
  auto plan = build_serialized_engine(*network, config);
  EXPECT_FALSE(plan.is_ok());
  return plan.is_ok() ? "" : plan.status().message();
}

TEST(Builder, StaticModelNeedsNoProfile) {
  auto network = make_network(make_mlp_graph(4, 12, 8, 3, 1));
  auto plan = build_serialized_engine(*network, BuilderConfig{});
  ASSERT_TRUE(plan.is_ok()) << plan.status().message();
  EXPECT_GT(plan->bytes.size(), 0u);
  EXPECT_NE(plan->summary.find("2 layers"), std::string::npos) << plan->summary;
  EXPECT_NE(plan->summary.find("Dense 12x8+relu"), std::string::npos) << plan->summary;
  auto engine = Engine::load(plan->bytes, "static.plan");
  ASSERT_TRUE(engine.is_ok()) << engine.status().message();
  EXPECT_EQ((*engine)->num_profiles(), 1);
  auto range = (*engine)->profile_range(0, "input");
  ASSERT_TRUE(range.is_ok());
  EXPECT_EQ(range->min, (Dims{4, 12}));
  EXPECT_EQ(range->max, (Dims{4, 12}));
}

TEST(Builder, DynamicInputWithoutProfileIsRefused) {
  std::string msg = build_error(make_mlp_graph(-1, 12, 8, 3, 1), BuilderConfig{});
  EXPECT_NE(msg.find("input 'input'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--minShapes"), std::string::npos) << msg;
}

TEST(Builder, ProfileErrorsSayWhich) {
  const ir::Graph g = make_mlp_graph(-1, 12, 8, 3, 1);
  BuilderConfig config;
  config.profiles = {profile({1, 12}, {2, 12}, {4, 12}), profile({1, 12}, {2, 12}, {4, 12}, "x")};
  std::string msg = build_error(g, config);
  EXPECT_NE(msg.find("profile 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'x'"), std::string::npos) << msg;

  OptimizationProfile wrong_dim = profile({1, 10}, {2, 10}, {4, 10});
  config.profiles = {wrong_dim};
  msg = build_error(g, config);
  EXPECT_NE(msg.find("dimension 1 is fixed to 12"), std::string::npos) << msg;

  config.profiles = {profile({1, 12, 1}, {2, 12, 1}, {4, 12, 1})};
  msg = build_error(g, config);
  EXPECT_NE(msg.find("rank"), std::string::npos) << msg;

  OptimizationProfile other;
  ASSERT_TRUE(other.set_dimensions("x", {{1}, {1}, {1}}).is_ok());
  config.profiles = {profile({1, 12}, {2, 12}, {4, 12}), other};
  msg = build_error(g, config);
  EXPECT_NE(msg.find("profile 1"), std::string::npos) << msg;
}

TEST(Builder, ProfileMissingDynamicInput) {
  ir::Graph g = make_mlp_graph(-1, 12, 8, 3, 1);
  BuilderConfig config;
  config.profiles = {profile({1, 12}, {2, 12}, {4, 12}), OptimizationProfile{}};
  std::string msg = build_error(g, config);
  EXPECT_NE(msg.find("profile 1 does not cover dynamic input 'input'"), std::string::npos) << msg;
}

TEST(Builder, SameInputsGiveIdenticalPlans) {
  // Tactics are chosen by timing; the same timing cache makes the choice, and so the plan,
  // reproducible (without one, two builds may time differently).
  const auto cache = std::filesystem::temp_directory_path() / "mlprt_same_inputs.cache";
  std::filesystem::remove(cache);
  BuilderConfig config;
  config.timing_cache_path = cache.string();
  config.profiles = {profile({1, 12}, {8, 12}, {16, 12}), profile({17, 12}, {32, 12}, {64, 12})};
  auto a = build_serialized_engine(*make_network(make_mlp_graph(-1, 12, 8, 3, 5)), config);
  auto b = build_serialized_engine(*make_network(make_mlp_graph(-1, 12, 8, 3, 5)), config);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_EQ(a->bytes, b->bytes);
  std::filesystem::remove(cache);
}

TEST(Builder, UnknownBackendIsRefused) {
  BuilderConfig config;
  config.backend = "quantum";
  std::string msg = build_error(make_mlp_graph(2, 4, 4, 2, 1), config);
  EXPECT_NE(msg.find("quantum"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cpu"), std::string::npos) << msg;
}

TEST(Builder, WriteFileAtomicLeavesNoTemporaries) {
  const auto dir = std::filesystem::temp_directory_path() / "mlprt_atomic_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::vector<uint8_t> bytes = {1, 2, 3};
  ASSERT_TRUE(write_file_atomic(dir / "a.plan", bytes).is_ok());
  ASSERT_TRUE(write_file_atomic(dir / "a.plan", bytes).is_ok());
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1u);
  EXPECT_FALSE(write_file_atomic(dir / "missing" / "a.plan", bytes).is_ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mlprt
