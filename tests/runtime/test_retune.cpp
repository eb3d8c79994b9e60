// Portable plans (mlprt/hardware_policy.h): a plan built for other hardware is re-tuned at load,
// refused, or run on another backend. Other hardware is made by relabelling a plan built here
// (its hardware id, or its backend as cuda with a cuda blob that holds no tactics); the CLI tests
// also use real ISA differences (ONEDNN_MAX_CPU_ISA).

#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backends/registry.h"
#include "mlprt/builder.h"
#include "mlprt/engine.h"
#include "mlprt/host_cpu.h"
#include "mlprt/hardware_policy.h"
#include "mlprt/logger.h"
#include "plan/plan.h"
#include "test_graphs.h"

namespace mlprt {
namespace {

using test::make_mlp_graph;
using test::make_network;

constexpr int64_t kIn = 12, kHidden = 16, kOut = 5;

class Logs {
 public:
  Logs() {
    set_log_severity(Severity::kWarning);
    set_log_callback([this](Severity severity, std::string_view message) {
      std::lock_guard<std::mutex> lock(m_mutex);
      if (severity == Severity::kWarning) m_warnings.emplace_back(message);
    });
  }
  ~Logs() { set_log_callback({}); }
  std::vector<std::string> warnings() {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_warnings;
  }
  int count(const std::string& text) {
    int n = 0;
    for (const std::string& w : warnings()) n += w.find(text) != std::string::npos;
    return n;
  }

 private:
  std::mutex m_mutex;
  std::vector<std::string> m_warnings;
};

std::string cpu_id() { return (*backend::find_backend("cpu"))->hardware_id(); }

// An id of real x86 hardware that is not this machine's.
std::string other_cpu_id() {
  return cpu_id() == "x86_64 avx2" ? "x86_64 avx512_core" : "x86_64 avx2";
}

bool cuda_runs_here() {
  auto cuda = backend::find_backend("cuda");
  return cuda.is_ok() && (*cuda)->check_available().is_ok();
}

ir::Graph graph() { return make_mlp_graph(-1, kIn, kHidden, kOut, 11); }

plan::Plan build_plan(BuilderConfig config = {}) {
  config.backend = "cpu";
  OptimizationProfile p;
  EXPECT_TRUE(p.set_dimensions("input", {{1, kIn}, {8, kIn}, {32, kIn}}).is_ok());
  config.profiles = {p};
  auto built = build_serialized_engine(*make_network(graph()), config);
  EXPECT_TRUE(built.is_ok()) << built.status().message();
  auto plan = plan::deserialize_plan(built->bytes, "built.plan");
  EXPECT_TRUE(plan.is_ok()) << plan.status().message();
  return std::move(plan).value();
}

std::vector<uint8_t> bytes_of(const plan::Plan& plan) {
  auto bytes = plan::serialize_plan(plan);
  EXPECT_TRUE(bytes.is_ok()) << bytes.status().message();
  return std::move(bytes).value();
}

plan::Plan as_cuda_plan(plan::Plan plan, const std::string& precision) {
  plan.backend = "cuda";
  plan.hardware = "NVIDIA H200 sm_90 cudart 12080 cublasLt 120804";
  const std::string blob =
      nlohmann::json{{"format", "mlprt.cuda"}, {"version", 0}, {"precision", precision}}.dump();
  plan.backend_blob.assign(blob.begin(), blob.end());
  return plan;
}

plan::Plan with_build_setting(plan::Plan plan, const std::string& key, nlohmann::json value) {
  nlohmann::json config = nlohmann::json::parse(plan.build_config_json);
  config[key] = std::move(value);
  plan.build_config_json = config.dump();
  return plan;
}

// Worst rel L2 error of the engine's output against float64 over a few batches.
double worst_error(const Engine& engine) {
  auto context = std::move(engine.create_execution_context()).value();
  const ir::Graph g = graph();
  double worst = 0;
  for (int64_t batch : {1, 8, 29}) {
    std::vector<float> x = test::random_input(batch * kIn, static_cast<uint32_t>(batch));
    EXPECT_TRUE(context->set_input_shape("input", {batch, kIn}).is_ok());
    EXPECT_TRUE(context->set_tensor_address("input", x.data()).is_ok());
    Status s = context->enqueue();
    EXPECT_TRUE(s.is_ok()) << s.message();
    auto y = context->output("output");
    std::vector<float> actual(y->as<float>().begin(), y->as<float>().end());
    worst = std::max(worst, test::rel_l2(actual, test::reference_output(g, {batch, kIn}, x)));
  }
  return worst;
}

EngineLoadOptions policy(HardwareMismatchPolicy p) { return EngineLoadOptions{p}; }

TEST(HardwarePolicy, NamesParseAndBadOnesListTheAllowed) {
  for (auto p : {HardwareMismatchPolicy::kRetune, HardwareMismatchPolicy::kRefuse,
                 HardwareMismatchPolicy::kFallback}) {
    auto parsed = parse_hardware_mismatch_policy(to_string(p));
    ASSERT_TRUE(parsed.is_ok());
    EXPECT_EQ(*parsed, p);
  }
  auto bad = parse_hardware_mismatch_policy("rebuild");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("'rebuild'"), std::string::npos);
  EXPECT_NE(bad.status().message().find("retune, refuse, fallback"), std::string::npos);
  EXPECT_EQ(EngineLoadOptions{}.hardware_mismatch, HardwareMismatchPolicy::kRetune);
}

TEST(HardwarePolicy, PlanBuiltHereLoadsUntouchedUnderEveryPolicy) {
  const std::vector<uint8_t> bytes = bytes_of(build_plan());
  for (auto p : {HardwareMismatchPolicy::kRetune, HardwareMismatchPolicy::kRefuse,
                 HardwareMismatchPolicy::kFallback}) {
    Logs logs;
    auto engine = Engine::load(bytes, "here.plan", policy(p));
    ASSERT_TRUE(engine.is_ok()) << engine.status().message();
    EXPECT_TRUE((*engine)->info().retuned_from.empty());
    EXPECT_TRUE((*engine)->retuned_plan().empty());
    EXPECT_TRUE(logs.warnings().empty());
  }
}

TEST(HardwarePolicy, DefaultRetunesPlanForOtherCpuWithWarningAndTime) {
  plan::Plan plan = build_plan();
  plan.hardware = other_cpu_id();
  Logs logs;
  auto engine = Engine::load(bytes_of(plan), "other_cpu.plan");
  ASSERT_TRUE(engine.is_ok()) << engine.status().message();
  const EngineInfo& info = (*engine)->info();
  EXPECT_EQ(info.hardware, cpu_id());
  EXPECT_EQ(info.retuned_from, "cpu (" + other_cpu_id() + ")");
  EXPECT_GT(info.retune_seconds, 0.0);
  EXPECT_LE(worst_error(**engine), 1e-5);
  ASSERT_EQ(logs.count("re-tuned for cpu (" + cpu_id() + ")"), 1)
      << testing::PrintToString(logs.warnings());
  EXPECT_EQ(logs.count("'" + other_cpu_id() + "'"), 1);
  EXPECT_EQ(logs.count(" s (hardware-mismatch policy 'retune'"), 1);

  // The re-tuned plan names this machine and loads under 'refuse'; graph and weights kept.
  const std::vector<uint8_t>& retuned = (*engine)->retuned_plan();
  ASSERT_FALSE(retuned.empty());
  auto again = plan::deserialize_plan(retuned, "retuned.plan");
  ASSERT_TRUE(again.is_ok()) << again.status().message();
  EXPECT_EQ(again->hardware, cpu_id());
  EXPECT_EQ(again->graph.constants.size(), plan.graph.constants.size());
  for (const auto& [name, constant] : plan.graph.constants) {
    EXPECT_EQ(again->graph.constants.at(name).data, constant.data) << name;
  }
  EXPECT_EQ(nlohmann::json::parse(again->build_config_json).at("retuned_from").at("hardware"),
            other_cpu_id());
  auto strict = Engine::load(retuned, "retuned.plan", policy(HardwareMismatchPolicy::kRefuse));
  ASSERT_TRUE(strict.is_ok()) << strict.status().message();
  EXPECT_LE(worst_error(**strict), 1e-5);
}

TEST(HardwarePolicy, RefuseRefusesAnyOtherHardwareSayingWhatDiffers) {
  for (const std::string& hardware : {other_cpu_id(), std::string("x86_64 avx10_2_future")}) {
    plan::Plan plan = build_plan();
    plan.hardware = hardware;
    auto engine =
        Engine::load(bytes_of(plan), "strict.plan", policy(HardwareMismatchPolicy::kRefuse));
    ASSERT_FALSE(engine.is_ok());
    EXPECT_EQ(engine.status().code(), StatusCode::kHardwareMismatch);
    const std::string m = engine.status().message();
    EXPECT_NE(m.find("'" + hardware + "'"), std::string::npos) << m;
    EXPECT_NE(m.find("'" + cpu_id() + "'"), std::string::npos) << m;
    EXPECT_NE(m.find("'refuse'"), std::string::npos) << m;
    EXPECT_NE(m.find("mlprt build"), std::string::npos) << m;
  }
}

TEST(HardwarePolicy, CudaPlanWithoutGpuNeedsFallbackAndRunsOnCpu) {
  if (cuda_runs_here()) GTEST_SKIP() << "a GPU is here: the cuda plan would be re-tuned on it";
  const std::vector<uint8_t> bytes = bytes_of(as_cuda_plan(build_plan(), "fp32"));
  auto retune = Engine::load(bytes, "h200.plan");
  ASSERT_FALSE(retune.is_ok());
  EXPECT_NE(retune.status().message().find("'fallback'"), std::string::npos)
      << retune.status().message();
  EXPECT_NE(retune.status().message().find("cuda backend"), std::string::npos);
  auto refuse = Engine::load(bytes, "h200.plan", policy(HardwareMismatchPolicy::kRefuse));
  ASSERT_FALSE(refuse.is_ok());
  EXPECT_NE(refuse.status().message().find("cannot run here"), std::string::npos);

  Logs logs;
  auto engine = Engine::load(bytes, "h200.plan", policy(HardwareMismatchPolicy::kFallback));
  ASSERT_TRUE(engine.is_ok()) << engine.status().message();
  EXPECT_EQ((*engine)->info().backend, "cpu");
  EXPECT_EQ((*engine)->info().device, -1);
  EXPECT_NE((*engine)->info().retuned_from.find("cuda (NVIDIA H200"), std::string::npos);
  EXPECT_LE(worst_error(**engine), 1e-5);
  EXPECT_EQ(logs.count("it runs on the cpu backend"), 1) << testing::PrintToString(logs.warnings());
}

TEST(HardwarePolicy, Fp16CudaPlanDegradesPerLayerOnCpu) {
  if (cuda_runs_here()) GTEST_SKIP() << "a GPU is here: the cuda plan would be re-tuned on it";
  BuilderConfig fp16;
  fp16.allow_fp16 = true;
  plan::Plan plan = as_cuda_plan(build_plan(fp16), "fp16");
  ASSERT_EQ(plan.precision, "fp32+fp16");
  Logs logs;
  auto engine =
      Engine::load(bytes_of(plan), "h200_fp16.plan", policy(HardwareMismatchPolicy::kFallback));
  ASSERT_TRUE(engine.is_ok()) << engine.status().message();
  EXPECT_LE(worst_error(**engine), 2e-2);
  // One warning per layer that ran in fp16 there (every layer of a cuda fp16 plan). A build
  // without the cuda backend cannot read the cuda blob's per-layer choice: it says the plan
  // permitted fp16 instead.
  if (host_cpu_info().avx512_fp16) {
    // The cpu backend has fp16 kernels here: a layer either runs in fp16 again (no warning) or
    // was timed slower in it, and the warning says so; fp16 is never "not available".
    for (const LayerInfo& layer : (*engine)->info().layers) {
      const std::string prefix = "layer '" + layer.name + "' (" + layer.type + "): ";
      const int warned =
          logs.count(prefix + "ran in fp16") + logs.count(prefix + "the plan permitted fp16");
      EXPECT_LE(warned, 1) << layer.name;
      if (layer.type == "Dense" && layer.precision.rfind("fp16", 0) == 0) {
        EXPECT_EQ(warned, 0) << layer.name << " runs in fp16 here";
      }
    }
    EXPECT_EQ(logs.count("fp16 is not available on cpu"), 0);
    return;
  }
  for (const LayerInfo& layer : (*engine)->info().layers) {
    const std::string prefix = "layer '" + layer.name + "' (" + layer.type + "): ";
    EXPECT_EQ(logs.count(prefix + "ran in fp16") + logs.count(prefix + "the plan permitted fp16"),
              1)
        << layer.name << ": " << testing::PrintToString(logs.warnings());
  }
  EXPECT_GE(logs.count("fp16 is not available on cpu"), 1);
}

TEST(HardwarePolicy, ObeyedPrecisionTheNewHardwareLacksFailsNamingTheLayer) {
  if (cuda_runs_here()) GTEST_SKIP() << "a GPU is here: the cuda plan would be re-tuned on it";
  BuilderConfig fp16;
  fp16.allow_fp16 = true;
  plan::Plan plan = as_cuda_plan(build_plan(fp16), "fp16");
  plan = with_build_setting(plan, "precision_constraints", "obey");
  plan = with_build_setting(plan, "layer_precisions", {{"*", "fp16"}});
  auto engine =
      Engine::load(bytes_of(plan), "h200_obey.plan", policy(HardwareMismatchPolicy::kFallback));
  if (host_cpu_info().avx512_fp16) {
    // This CPU has the cpu backend's fp16 kernel: the obeyed fp16 is honoured, every Dense
    // layer runs in it.
    ASSERT_TRUE(engine.is_ok()) << engine.status().message();
    for (const LayerInfo& layer : (*engine)->info().layers) {
      if (layer.type == "Dense") {
        EXPECT_EQ(layer.precision.rfind("fp16 (", 0), 0u) << layer.precision;
      }
    }
    return;
  }
  ASSERT_FALSE(engine.is_ok());
  const std::string m = engine.status().message();
  EXPECT_NE(m.find("cannot be re-tuned for cpu"), std::string::npos) << m;
  EXPECT_NE(m.find("'" + plan.graph.nodes.front().name + "' (Dense)"), std::string::npos) << m;
  EXPECT_NE(m.find("fp16"), std::string::npos) << m;
  EXPECT_NE(m.find("obey"), std::string::npos) << m;
}

TEST(HardwarePolicy, CudaPlanForAnotherGpuIsRetunedOnThisOne) {
  if (!cuda_runs_here()) GTEST_SKIP() << "no CUDA device: runs on the GPU machine";
  BuilderConfig config;
  config.backend = "cuda";
  OptimizationProfile p;
  ASSERT_TRUE(p.set_dimensions("input", {{1, kIn}, {8, kIn}, {32, kIn}}).is_ok());
  config.profiles = {p};
  auto built = build_serialized_engine(*make_network(graph()), config);
  ASSERT_TRUE(built.is_ok()) << built.status().message();
  plan::Plan plan = std::move(plan::deserialize_plan(built->bytes, "gpu.plan")).value();
  const std::string here = plan.hardware;
  plan.hardware = "NVIDIA A100-SXM4-80GB sm_80 cudart 12000 cublasLt 120000";
  Logs logs;
  auto engine = Engine::load(bytes_of(plan), "a100.plan");
  ASSERT_TRUE(engine.is_ok()) << engine.status().message();
  EXPECT_EQ((*engine)->info().backend, "cuda");
  EXPECT_EQ((*engine)->info().hardware, here);
  EXPECT_LE(worst_error(**engine), 1e-5);
  EXPECT_EQ(logs.count("re-tuned for cuda"), 1) << testing::PrintToString(logs.warnings());
  auto strict = Engine::load(bytes_of(plan), "a100.plan", policy(HardwareMismatchPolicy::kRefuse));
  ASSERT_FALSE(strict.is_ok());
  EXPECT_EQ(strict.status().code(), StatusCode::kHardwareMismatch);
}

TEST(HardwarePolicy, UnknownBackendFallsBackOnlyUnderFallback) {
  plan::Plan plan = build_plan();
  plan.backend = "tpu";
  const std::vector<uint8_t> bytes = bytes_of(plan);
  auto retune = Engine::load(bytes, "tpu.plan");
  ASSERT_FALSE(retune.is_ok());
  EXPECT_NE(retune.status().message().find("'tpu'"), std::string::npos);
  EXPECT_NE(retune.status().message().find("'fallback'"), std::string::npos);
  auto engine = Engine::load(bytes, "tpu.plan", policy(HardwareMismatchPolicy::kFallback));
  ASSERT_TRUE(engine.is_ok()) << engine.status().message();
  EXPECT_FALSE((*engine)->info().backend.empty());
  EXPECT_NE((*engine)->info().backend, "tpu");
}

TEST(HardwarePolicy, PlanWithoutRecordedSettingsCannotBeRetunedAndSaysRebuild) {
  plan::Plan plan = build_plan();
  plan.hardware = other_cpu_id();
  nlohmann::json config = nlohmann::json::parse(plan.build_config_json);
  config.erase("optimization_level");
  plan.build_config_json = config.dump();
  auto engine = Engine::load(bytes_of(plan), "old.plan");
  ASSERT_FALSE(engine.is_ok());
  EXPECT_NE(engine.status().message().find("'optimization_level'"), std::string::npos)
      << engine.status().message();
  EXPECT_NE(engine.status().message().find("mlprt build"), std::string::npos);
}

TEST(HardwarePolicy, RetuneReadsAndWritesNoTimingCache) {
  const std::filesystem::path cache =
      std::filesystem::path(::testing::TempDir()) / "retune_no_cache.cache";
  std::filesystem::remove(cache);
  BuilderConfig config;
  config.timing_cache_path = cache.string();
  plan::Plan plan = build_plan(config);
  ASSERT_TRUE(std::filesystem::exists(cache));
  std::filesystem::remove(cache);
  plan.hardware = other_cpu_id();
  auto engine = Engine::load(bytes_of(plan), "cached.plan");
  ASSERT_TRUE(engine.is_ok()) << engine.status().message();
  EXPECT_FALSE(std::filesystem::exists(cache));
  // Not in the working folder either (the plan records the cache's file name only).
  EXPECT_FALSE(std::filesystem::exists(cache.filename()));
}

TEST(HardwarePolicy, RetuneSerializedEngineRetunesEvenAMatchingPlan) {
  const std::vector<uint8_t> bytes = bytes_of(build_plan());
  auto same = retune_serialized_engine(bytes, "here.plan");
  ASSERT_TRUE(same.is_ok()) << same.status().message();
  EXPECT_TRUE(same->hardware_matched);
  auto loaded = Engine::load(same->engine.bytes, "b.plan", policy(HardwareMismatchPolicy::kRefuse));
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().message();

  plan::Plan other = build_plan();
  other.hardware = other_cpu_id();
  auto retuned = retune_serialized_engine(bytes_of(other), "a.plan");
  ASSERT_TRUE(retuned.is_ok()) << retuned.status().message();
  EXPECT_FALSE(retuned->hardware_matched);
  EXPECT_EQ(retuned->from_hardware, other_cpu_id());
  EXPECT_GT(retuned->engine.build_seconds, 0.0);

  auto refuse = retune_serialized_engine(bytes, "a.plan", HardwareMismatchPolicy::kRefuse);
  ASSERT_FALSE(refuse.is_ok());
  EXPECT_EQ(refuse.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mlprt
