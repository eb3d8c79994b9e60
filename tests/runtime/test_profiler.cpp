// Per-layer profiling through the public API (ExecutionContext::set_profiler): one report per
// layer and enqueue, named and ordered as inspect lists the layers, on cpu (plain and split
// batch) and on cuda (skipped, saying why, without a GPU); results unchanged while profiling.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "backends/registry.h"
#include "mlprt/builder.h"
#include "mlprt/engine.h"
#include "mlprt/profiler.h"
#include "test_graphs.h"

namespace mlprt {
namespace {

constexpr int64_t kIn = 12, kHidden = 16, kOut = 5;

// Every report, in order.
struct Recorder final : Profiler {
  std::vector<std::string> names;
  std::vector<float> ms;
  void report_layer_time(std::string_view layer_name, float t) override {
    names.emplace_back(layer_name);
    ms.push_back(t);
  }
};

// The test MLP (fc1 + relu fuse: two layers), with a row-wise Softmax after it (three).
ir::Graph make_graph(bool softmax) {
  ir::Graph graph = test::make_mlp_graph(-1, kIn, kHidden, kOut, 7);
  if (!softmax) return graph;
  graph.nodes.back().outputs = {"logits"};
  ir::Node node{"softmax", "Softmax", {"logits"}, {"output"}, {}};
  node.attributes["axis"] = int64_t{-1};
  graph.nodes.push_back(node);
  return graph;
}

std::unique_ptr<Engine> build_engine(const std::string& backend, int64_t max_rows,
                                     bool softmax = true) {
  BuilderConfig config;
  config.backend = backend;
  config.optimization_level = 0;
  OptimizationProfile profile;
  EXPECT_TRUE(profile.set_dimensions("input", {{1, kIn}, {max_rows, kIn}, {max_rows, kIn}}).is_ok());
  config.profiles.push_back(profile);
  auto plan = build_serialized_engine(*test::make_network(make_graph(softmax)), config);
  EXPECT_TRUE(plan.is_ok()) << plan.status().message();
  if (!plan.is_ok()) return nullptr;
  auto engine = Engine::load(plan->bytes, "profiled.plan");
  EXPECT_TRUE(engine.is_ok()) << engine.status().message();
  return engine.is_ok() ? std::move(engine).value() : nullptr;
}

std::vector<std::string> inspect_names(const Engine& engine) {
  std::vector<std::string> names;
  for (const LayerInfo& layer : engine.info().layers) names.push_back(layer.name);
  return names;
}

// Runs `batch` rows `calls` times with `profiler` set (nullptr: none) and returns the output.
std::vector<float> run(ExecutionContext& context, int64_t batch, Profiler* profiler, int calls) {
  const std::vector<float> x = test::random_input(batch * kIn, 3);
  EXPECT_TRUE(context.set_input_shape("input", {batch, kIn}).is_ok());
  EXPECT_TRUE(context.set_tensor_address("input", const_cast<float*>(x.data())).is_ok());
  EXPECT_TRUE(context.set_profiler(profiler).is_ok());
  EXPECT_EQ(context.profiler(), profiler);
  for (int i = 0; i < calls; ++i) {
    Status status = context.enqueue();
    EXPECT_TRUE(status.is_ok()) << status.message();
  }
  auto out = context.output("output");
  EXPECT_TRUE(out.is_ok());
  if (!out.is_ok()) return {};
  return {out->as<float>().begin(), out->as<float>().end()};
}

void expect_times_valid(const Recorder& recorder) {
  for (size_t i = 0; i < recorder.ms.size(); ++i) {
    EXPECT_TRUE(std::isfinite(recorder.ms[i]) && recorder.ms[i] >= 0.0f)
        << recorder.names[i] << ": " << recorder.ms[i] << " ms";
  }
}

TEST(Profiler, CpuReportsEveryLayerOncePerEnqueueInInspectOrder) {
  auto engine = build_engine("cpu", 8);
  ASSERT_TRUE(engine);
  const std::vector<std::string> layers = inspect_names(*engine);
  ASSERT_GE(layers.size(), 2u);
  auto context = std::move(engine->create_execution_context()).value();
  EXPECT_EQ(context->profiler(), nullptr);
  const std::vector<float> plain = run(*context, 8, nullptr, 1);
  Recorder recorder;
  const std::vector<float> profiled = run(*context, 8, &recorder, 3);
  std::vector<std::string> expected;
  for (int call = 0; call < 3; ++call) expected.insert(expected.end(), layers.begin(), layers.end());
  EXPECT_EQ(recorder.names, expected);
  expect_times_valid(recorder);
  EXPECT_EQ(profiled, plain) << "profiling changed the results";
  // Off again: no more reports.
  recorder.names.clear();
  run(*context, 8, nullptr, 2);
  EXPECT_TRUE(recorder.names.empty());
}

TEST(Profiler, SplitBatchReportsEachLayerOnceSummedOverTheChunks) {
  auto engine = build_engine("cpu", 4);
  ASSERT_TRUE(engine);
  const std::vector<std::string> layers = inspect_names(*engine);
  auto context = std::move(engine->create_execution_context()).value();
  ASSERT_TRUE(context->set_split_batch(true).is_ok());
  const std::vector<float> plain = run(*context, 19, nullptr, 1);  // 4 chunks of 4 + a tail of 3
  Recorder recorder;
  const std::vector<float> profiled = run(*context, 19, &recorder, 2);
  std::vector<std::string> expected = layers;
  expected.insert(expected.end(), layers.begin(), layers.end());
  EXPECT_EQ(recorder.names, expected);
  expect_times_valid(recorder);
  EXPECT_EQ(profiled, plain);
}

TEST(Profiler, TheDefaultBackendContextRefusesAProfilerRatherThanSkipIt) {
  struct Bare final : backend::BackendContext {
    Status prepare(const ir::ShapeMap&) override { return Status::ok(); }
    Status execute(const backend::IoBindings&, void*) override { return Status::ok(); }
  };
  Bare bare;
  Recorder recorder;
  Status status = bare.set_profiler(&recorder);
  EXPECT_EQ(status.code(), StatusCode::kUnsupported) << status.message();
  EXPECT_TRUE(bare.set_profiler(nullptr).is_ok());
}

TEST(Profiler, CudaReportsEveryLayerOrOneFusedEntry) {
  auto cuda = backend::find_backend("cuda");
  if (!cuda.is_ok()) GTEST_SKIP() << "no CUDA device: " << cuda.status().message();
  if (Status available = (*cuda)->check_available(); !available.is_ok()) {
    GTEST_SKIP() << "no CUDA device: " << available.message();
  }
  // Without the softmax the plan may choose the fused whole-network kernel: one entry.
  for (const auto& [max_rows, softmax] : {std::pair<int64_t, bool>{8, false}, {512, false},
                                          {8, true}, {512, true}}) {
    auto engine = build_engine("cuda", max_rows, softmax);
    ASSERT_TRUE(engine);
    const std::vector<std::string> layers = inspect_names(*engine);
    std::string fused;
    for (const std::string& name : layers) fused += (fused.empty() ? "" : " + ") + name;
    auto context = std::move(engine->create_execution_context()).value();
    const std::vector<float> plain = run(*context, max_rows, nullptr, 2);  // graph captured
    Recorder recorder;
    const std::vector<float> profiled = run(*context, max_rows, &recorder, 2);
    const bool one_entry = recorder.names.size() == 2 && recorder.names[0] == fused;
    if (one_entry) {
      EXPECT_EQ(recorder.names[1], fused);
    } else {
      std::vector<std::string> expected = layers;
      expected.insert(expected.end(), layers.begin(), layers.end());
      EXPECT_EQ(recorder.names, expected) << "rows " << max_rows;
    }
    expect_times_valid(recorder);
    float total = 0.0f;
    for (float t : recorder.ms) total += t;
    EXPECT_GT(total, 0.0f) << "no GPU time measured";
    EXPECT_EQ(profiled, plain) << "rows " << max_rows;
    // Graphs again after profiling.
    EXPECT_EQ(run(*context, max_rows, nullptr, 1), plain);
  }
}

}  // namespace
}  // namespace mlprt
