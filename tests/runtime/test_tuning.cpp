// The builder's tactic timing, timing cache, precision flags and the context's thread count.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>

#include "mlprt/builder.h"
#include "mlprt/engine.h"
#include "mlprt/host_cpu.h"
#include "mlprt/logger.h"
#include "test_graphs.h"

namespace mlprt {
namespace {

using test::make_mlp_graph;
using test::make_network;

constexpr int64_t kIn = 96;
constexpr int64_t kHidden = 64;
constexpr int64_t kOut = 10;

OptimizationProfile profile(Dims min, Dims opt, Dims max) {
  OptimizationProfile p;
  EXPECT_TRUE(p.set_dimensions("input", {std::move(min), std::move(opt), std::move(max)}).is_ok());
  return p;
}

// The cpu tuner's behaviour: on a machine with a GPU "auto" would pick cuda.
BuilderConfig cpu_config() {
  BuilderConfig config;
  config.backend = "cpu";
  return config;
}

BuilderConfig three_profiles() {
  BuilderConfig config = cpu_config();
  config.profiles = {profile({1, kIn}, {1, kIn}, {1, kIn}), profile({2, kIn}, {16, kIn}, {32, kIn}),
                     profile({33, kIn}, {64, kIn}, {128, kIn})};
  return config;
}

// Captures the builder's "tactics: N timed, M from the timing cache" line.
struct TacticCounts {
  int timed = -1;
  int cached = -1;
};

class LogCapture {
 public:
  LogCapture() {
    set_log_severity(Severity::kInfo);
    set_log_callback([this](Severity, std::string_view message) {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_lines.emplace_back(message);
    });
  }
  ~LogCapture() {
    set_log_callback({});
    set_log_severity(Severity::kWarning);
  }
  TacticCounts counts() {
    std::lock_guard<std::mutex> lock(m_mutex);
    const std::regex pattern(R"(tactics: (\d+) timed, (\d+) from the timing cache)");
    TacticCounts counts;
    for (const std::string& line : m_lines) {
      std::smatch match;
      if (std::regex_search(line, match, pattern)) {
        counts.timed = std::stoi(match[1]);
        counts.cached = std::stoi(match[2]);
      }
    }
    m_lines.clear();
    return counts;
  }

 private:
  std::mutex m_mutex;
  std::vector<std::string> m_lines;
};

std::filesystem::path fresh_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("mlprt_tuning_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

SerializedEngine build_ok(const ir::Graph& graph, const BuilderConfig& config) {
  auto plan = build_serialized_engine(*make_network(graph), config);
  EXPECT_TRUE(plan.is_ok()) << plan.status().message();
  return plan.is_ok() ? std::move(*plan) : SerializedEngine{};
}

// Runs `batch` rows through profile `profile`, returns rel L2 vs the float64 reference.
double run_rel_l2(const Engine& engine, const ir::Graph& graph, int profile, int64_t batch,
                  int threads = 0) {
  auto context = std::move(engine.create_execution_context()).value();
  if (threads > 0) {
    EXPECT_TRUE(context->set_num_threads(threads).is_ok());
  }
  EXPECT_TRUE(context->set_optimization_profile(profile).is_ok());
  EXPECT_TRUE(context->set_input_shape("input", {batch, kIn}).is_ok());
  std::vector<float> x = test::random_input(batch * kIn, static_cast<uint32_t>(batch + 7));
  EXPECT_TRUE(context->set_tensor_address("input", x.data()).is_ok());
  EXPECT_TRUE(context->enqueue().is_ok());
  auto y = context->output("output");
  EXPECT_TRUE(y.is_ok());
  std::vector<float> actual(y->as<float>().begin(), y->as<float>().end());
  return test::rel_l2(actual, test::reference_output(graph, {batch, kIn}, x));
}

TEST(TimingCache, WarmCacheSkipsTimingAndGivesIdenticalPlan) {
  const auto dir = fresh_dir("warm");
  const ir::Graph graph = make_mlp_graph(-1, kIn, kHidden, kOut, 11);
  BuilderConfig config = three_profiles();
  config.timing_cache_path = (dir / "timing.cache").string();
  LogCapture log;

  const SerializedEngine cold = build_ok(graph, config);
  const TacticCounts cold_counts = log.counts();
  // 2 Dense layers x 3 profiles x at least (runtime, fixed packed, fixed plain) in fp32.
  EXPECT_GE(cold_counts.timed, 18);
  EXPECT_EQ(cold_counts.cached, 0);
  ASSERT_TRUE(std::filesystem::is_regular_file(config.timing_cache_path));

  const SerializedEngine warm = build_ok(graph, config);
  const TacticCounts warm_counts = log.counts();
  EXPECT_EQ(warm_counts.timed, 0);
  EXPECT_EQ(warm_counts.cached, cold_counts.timed);
  EXPECT_EQ(cold.bytes, warm.bytes) << "same model, flags and cache must give the same plan";

  // Another thread count is other hardware for the cache: timed again, entries added. With
  // one thread there is no single-thread or row-split variant to try: exactly the 3 tactics
  // per layer/profile, plus the unfused twin on the layer with an activation (3 profiles),
  // plus, where the cpu backend's own fp32 kernel runs, its fixed-M and runtime-M tactics.
  config.num_threads = 1;
  (void)build_ok(graph, config);
  EXPECT_EQ(log.counts().timed, 18 + 3 + (host_cpu_info().fp32_kernel ? 2 * 6 : 0));
  config.num_threads = 0;
  (void)build_ok(graph, config);
  EXPECT_EQ(log.counts().timed, 0);
  std::filesystem::remove_all(dir);
}

TEST(TimingCache, TunedPlanRunsEveryProfileAgainstFloat64) {
  const ir::Graph graph = make_mlp_graph(-1, kIn, kHidden, kOut, 12);
  auto engine = Engine::load(build_ok(graph, three_profiles()).bytes, "tuned.plan");
  ASSERT_TRUE(engine.is_ok()) << engine.status().message();
  for (auto [profile, batch] : {std::pair{0, int64_t{1}}, {1, 16}, {1, 5}, {2, 64}, {2, 100}}) {
    EXPECT_LE(run_rel_l2(**engine, graph, profile, batch), 1e-5) << "batch " << batch;
    EXPECT_LE(run_rel_l2(**engine, graph, profile, batch, 1), 1e-5) << "1 thread, batch " << batch;
  }
}

TEST(TimingCache, MalformedCacheIsAnErrorNamingTheFile) {
  const auto dir = fresh_dir("bad");
  const auto path = dir / "broken.cache";
  std::ofstream(path) << "{\"format\": \"something else\"}";
  BuilderConfig config = three_profiles();
  config.timing_cache_path = path.string();
  auto plan =
      build_serialized_engine(*make_network(make_mlp_graph(-1, kIn, kHidden, kOut, 1)), config);
  ASSERT_FALSE(plan.is_ok());
  EXPECT_NE(plan.status().message().find("broken.cache"), std::string::npos)
      << plan.status().message();
  std::filesystem::remove_all(dir);
}

bool has_bf16() {
  // What the backend reports: bf16 layers appear in plans only on such CPUs.
  BuilderConfig config = cpu_config();
  config.precision_constraints = "obey";
  config.layer_precisions = {{"*", "bf16"}};
  return build_serialized_engine(*make_network(make_mlp_graph(2, 8, 8, 2, 1)), config).is_ok();
}

TEST(Precision, ForcedBf16RunsInBf16WithinTolerance) {
  const ir::Graph graph = make_mlp_graph(-1, kIn, kHidden, kOut, 13);
  BuilderConfig config = three_profiles();
  config.precision_constraints = "obey";
  config.layer_precisions = {{"*", "bf16"}};
  auto plan = build_serialized_engine(*make_network(graph), config);
  if (!has_bf16()) {
    ASSERT_FALSE(plan.is_ok());
    EXPECT_NE(plan.status().message().find("bf16"), std::string::npos);
    GTEST_SKIP() << "this CPU has no native bf16: obey refuses, as checked";
  }
  ASSERT_TRUE(plan.is_ok()) << plan.status().message();
  auto engine = Engine::load(plan->bytes, "bf16.plan");
  ASSERT_TRUE(engine.is_ok()) << engine.status().message();
  EXPECT_EQ((*engine)->info().precision, "fp32");
  int dense = 0;
  for (const LayerInfo& layer : (*engine)->info().layers) {
    if (layer.type != "Dense") continue;
    ++dense;
    EXPECT_EQ(layer.precision.rfind("bf16 (", 0), 0u) << layer.precision;
  }
  EXPECT_EQ(dense, 2);
  for (auto [profile, batch] : {std::pair{0, int64_t{1}}, {1, 16}, {1, 7}, {2, 64}, {2, 128}}) {
    const double err = run_rel_l2(**engine, graph, profile, batch);
    EXPECT_LE(err, 2e-2) << "batch " << batch;
    // bf16 really ran: its 8-bit mantissa leaves an error far above fp32's.
    EXPECT_GT(err, 1e-5) << "batch " << batch;
  }
}

TEST(Precision, Fp32ConstraintWinsOverBf16Flag) {
  const ir::Graph graph = make_mlp_graph(-1, kIn, kHidden, kOut, 14);
  BuilderConfig config = three_profiles();
  config.allow_bf16 = true;
  config.precision_constraints = "obey";
  config.layer_precisions = {{"*", "fp32"}};
  auto engine = Engine::load(build_ok(graph, config).bytes, "fp32.plan");
  ASSERT_TRUE(engine.is_ok()) << engine.status().message();
  EXPECT_EQ((*engine)->info().precision, "fp32+bf16");
  for (const LayerInfo& layer : (*engine)->info().layers) {
    EXPECT_EQ(layer.precision.rfind("fp32 (", 0), 0u) << layer.precision;
  }
  EXPECT_LE(run_rel_l2(**engine, graph, 1, 16), 1e-5);
}

TEST(Precision, PermittedBf16StaysWithinBf16Tolerance) {
  const ir::Graph graph = make_mlp_graph(-1, kIn, kHidden, kOut, 15);
  BuilderConfig config = three_profiles();
  config.allow_bf16 = true;
  auto engine = Engine::load(build_ok(graph, config).bytes, "mixed.plan");
  ASSERT_TRUE(engine.is_ok()) << engine.status().message();
  for (auto [profile, batch] : {std::pair{0, int64_t{1}}, {1, 16}, {2, 64}, {2, 99}}) {
    EXPECT_LE(run_rel_l2(**engine, graph, profile, batch), 2e-2) << "batch " << batch;
  }
}

TEST(Precision, BadConstraintsSayWhatIsAllowed) {
  const ir::Graph graph = make_mlp_graph(-1, kIn, kHidden, kOut, 16);
  BuilderConfig config = three_profiles();
  config.precision_constraints = "obey";
  config.layer_precisions = {{"no_such_layer", "fp32"}};
  auto plan = build_serialized_engine(*make_network(graph), config);
  ASSERT_FALSE(plan.is_ok());
  EXPECT_NE(plan.status().message().find("no_such_layer"), std::string::npos);
  EXPECT_NE(plan.status().message().find("its layers"), std::string::npos)
      << plan.status().message();

  // A precision the cpu cannot run here: fp16 without AVX-512 FP16, tf32 anywhere.
  const std::string impossible = host_cpu_info().avx512_fp16 ? "tf32" : "fp16";
  config.layer_precisions = {{"*", impossible}};
  plan = build_serialized_engine(*make_network(graph), config);
  ASSERT_FALSE(plan.is_ok());
  EXPECT_NE(plan.status().message().find(impossible), std::string::npos)
      << plan.status().message();

  config.precision_constraints = "prefer";  // falls back with a warning instead
  EXPECT_TRUE(build_serialized_engine(*make_network(graph), config).is_ok());

  config.precision_constraints = "always";
  plan = build_serialized_engine(*make_network(graph), config);
  ASSERT_FALSE(plan.is_ok());
  EXPECT_NE(plan.status().message().find("none, prefer, obey"), std::string::npos);
}

TEST(ExecutionContext, NegativeThreadCountIsRefused) {
  const ir::Graph graph = make_mlp_graph(4, kIn, kHidden, kOut, 17);
  auto engine = Engine::load(build_ok(graph, cpu_config()).bytes, "t.plan");
  ASSERT_TRUE(engine.is_ok());
  auto context = std::move((*engine)->create_execution_context()).value();
  const Status status = context->set_num_threads(-1);
  ASSERT_FALSE(status.is_ok());
  EXPECT_NE(status.message().find("-1"), std::string::npos);
}

}  // namespace
}  // namespace mlprt
