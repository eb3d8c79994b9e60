#include <gtest/gtest.h>

#include <thread>

#include "mlprt/builder.h"
#include "mlprt/engine.h"
#include "plan/plan.h"
#include "test_graphs.h"

namespace mlprt {
namespace {

using test::make_mlp_graph;
using test::make_network;

constexpr int64_t kIn = 20, kHidden = 16, kOut = 5;

// These tests check the cpu engine's behaviour: on a machine with a GPU "auto" would pick cuda.
std::unique_ptr<Engine> build_two_profile_engine(const ir::Graph& graph) {
  BuilderConfig config;
  config.backend = "cpu";
  OptimizationProfile small, large;
  EXPECT_TRUE(small.set_dimensions("input", {{1, kIn}, {8, kIn}, {16, kIn}}).is_ok());
  EXPECT_TRUE(large.set_dimensions("input", {{17, kIn}, {64, kIn}, {128, kIn}}).is_ok());
  config.profiles = {small, large};
  auto plan = build_serialized_engine(*make_network(graph), config);
  EXPECT_TRUE(plan.is_ok()) << plan.status().message();
  auto engine = Engine::load(plan->bytes, "two_profiles.plan");
  EXPECT_TRUE(engine.is_ok()) << engine.status().message();
  return std::move(engine).value();
}

TEST(Engine, DescribesIoProfilesAndLayers) {
  auto engine = build_two_profile_engine(make_mlp_graph(-1, kIn, kHidden, kOut, 3));
  const auto& io = engine->io_tensors();
  ASSERT_EQ(io.size(), 2u);
  EXPECT_EQ(io[0].name, "input");
  EXPECT_EQ(io[0].mode, TensorIOMode::kInput);
  EXPECT_EQ(io[0].dims, (Dims{-1, kIn}));
  EXPECT_EQ(io[1].dims, (Dims{-1, kOut}));
  EXPECT_EQ(engine->num_profiles(), 2);
  EXPECT_EQ(engine->info().backend, "cpu");
  EXPECT_EQ(engine->info().plan_hash.size(), 16u);
  ASSERT_EQ(engine->info().layers.size(), 2u);
  EXPECT_EQ(engine->info().layers[0].type, "Dense");
  EXPECT_NE(engine->info().layers[0].detail.find("relu"), std::string::npos);
  EXPECT_NE(engine->to_json().find("\"profiles\""), std::string::npos);
}

TEST(Engine, FindProfileListsEveryRangeWhenNoneFits) {
  auto engine = build_two_profile_engine(make_mlp_graph(-1, kIn, kHidden, kOut, 3));
  EXPECT_EQ(*engine->find_profile({{"input", {16, kIn}}}), 0);
  EXPECT_EQ(*engine->find_profile({{"input", {17, kIn}}}), 1);
  auto none = engine->find_profile({{"input", {129, kIn}}});
  ASSERT_FALSE(none.is_ok());
  const std::string msg = none.status().message();
  EXPECT_NE(msg.find("129x20"), std::string::npos) << msg;
  EXPECT_NE(msg.find("profile 0: input min 1x20 opt 8x20 max 16x20"), std::string::npos) << msg;
  EXPECT_NE(msg.find("profile 1: input min 17x20 opt 64x20 max 128x20"), std::string::npos) << msg;
}

TEST(ExecutionContext, RunsEveryBatchInEveryProfileAgainstFloat64) {
  const ir::Graph graph = make_mlp_graph(-1, kIn, kHidden, kOut, 3);
  auto engine = build_two_profile_engine(graph);
  auto context = engine->create_execution_context();
  ASSERT_TRUE(context.is_ok());
  for (int64_t batch : {1, 16, 5, 17, 128, 40, 2}) {
    const int profile = batch <= 16 ? 0 : 1;
    ASSERT_TRUE((*context)->set_optimization_profile(profile).is_ok());
    ASSERT_TRUE((*context)->set_input_shape("input", {batch, kIn}).is_ok());
    EXPECT_EQ(*(*context)->tensor_shape("output"), (Dims{batch, kOut}));
    std::vector<float> x = test::random_input(batch * kIn, static_cast<uint32_t>(batch));
    ASSERT_TRUE((*context)->set_tensor_address("input", x.data()).is_ok());
    ASSERT_TRUE((*context)->enqueue().is_ok());
    auto y = (*context)->output("output");
    ASSERT_TRUE(y.is_ok());
    EXPECT_EQ(y->dims, (Dims{batch, kOut}));
    std::vector<float> actual(y->as<float>().begin(), y->as<float>().end());
    EXPECT_LE(test::rel_l2(actual, test::reference_output(graph, {batch, kIn}, x)), 1e-5)
        << "batch " << batch;
  }
}

TEST(ExecutionContext, WritesIntoCallerOutputBuffer) {
  const ir::Graph graph = make_mlp_graph(-1, kIn, kHidden, kOut, 4);
  auto engine = build_two_profile_engine(graph);
  auto context = std::move(engine->create_execution_context()).value();
  std::vector<float> x = test::random_input(3 * kIn, 9);
  std::vector<float> y(3 * kOut, -1.0f);
  ASSERT_TRUE(context->set_input_shape("input", {3, kIn}).is_ok());
  ASSERT_TRUE(context->set_tensor_address("input", x.data()).is_ok());
  ASSERT_TRUE(context->set_tensor_address("output", y.data()).is_ok());
  ASSERT_TRUE(context->enqueue().is_ok());
  EXPECT_LE(test::rel_l2(y, test::reference_output(graph, {3, kIn}, x)), 1e-5);
  EXPECT_EQ(context->output("output")->data, y.data());
}

TEST(ExecutionContext, RefusesBadCalls) {
  auto engine = build_two_profile_engine(make_mlp_graph(-1, kIn, kHidden, kOut, 3));
  auto context = std::move(engine->create_execution_context()).value();
  Status s = context->set_optimization_profile(2);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("2 profile"), std::string::npos) << s.message();

  s = context->set_input_shape("input", {17, kIn});  // profile 0 holds 1..16
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("profile 1: input min 17x20"), std::string::npos) << s.message();

  s = context->set_input_shape("nope", {1, kIn});
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("inputs are: input"), std::string::npos) << s.message();

  EXPECT_FALSE(context->set_input_shape("input", {4, kIn + 1}).is_ok());
  EXPECT_FALSE(context->tensor_shape("output").is_ok());
  EXPECT_FALSE(context->enqueue().is_ok());  // no shape yet
  ASSERT_TRUE(context->set_input_shape("input", {4, kIn}).is_ok());
  s = context->enqueue();  // no address
  EXPECT_NE(s.message().find("no address"), std::string::npos) << s.message();

  s = context->set_use_cuda_graph(false);  // a cpu engine has no CUDA graphs
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("no CUDA graphs"), std::string::npos) << s.message();
}

TEST(ExecutionContext, ContextsOnSeveralThreadsShareOneEngine) {
  const ir::Graph graph = make_mlp_graph(-1, kIn, kHidden, kOut, 6);
  auto engine = build_two_profile_engine(graph);
  std::vector<double> errors(4, 1.0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto context = std::move(engine->create_execution_context()).value();
      const int64_t batch = 3 + 4 * t;
      double worst = 0;
      for (int i = 0; i < 20; ++i) {
        std::vector<float> x = test::random_input(batch * kIn, static_cast<uint32_t>(100 * t + i));
        if (!context->set_input_shape("input", {batch, kIn}).is_ok()) return;
        if (!context->set_tensor_address("input", x.data()).is_ok()) return;
        if (!context->enqueue().is_ok()) return;
        auto y = context->output("output");
        std::vector<float> actual(y->as<float>().begin(), y->as<float>().end());
        worst = std::max(worst, test::rel_l2(actual, test::reference_output(graph, {batch, kIn}, x)));
      }
      errors[static_cast<size_t>(t)] = worst;
    });
  }
  for (auto& thread : threads) thread.join();
  for (double e : errors) EXPECT_LE(e, 1e-5);
}

TEST(Engine, RefusesPlanForOtherHardwareOrBackend) {
  auto built = build_serialized_engine(*make_network(make_mlp_graph(2, 4, 4, 2, 1)), {});
  ASSERT_TRUE(built.is_ok());
  auto plan = plan::deserialize_plan(built->bytes, "x.plan");
  ASSERT_TRUE(plan.is_ok()) << plan.status().message();

  plan::Plan future_cpu = *plan;
  future_cpu.hardware = "x86_64 avx10_2_future";
  auto bytes = plan::serialize_plan(future_cpu);
  ASSERT_TRUE(bytes.is_ok());
  // Strict: the 'refuse' policy (the default re-tunes it: test_retune.cpp).
  auto engine = Engine::load(*bytes, "future.plan", {HardwareMismatchPolicy::kRefuse});
  ASSERT_FALSE(engine.is_ok());
  EXPECT_NE(engine.status().message().find("avx10_2_future"), std::string::npos)
      << engine.status().message();
  EXPECT_NE(engine.status().message().find("mlprt build"), std::string::npos);

  plan::Plan other_backend = *plan;
  other_backend.backend = "tpu";
  bytes = plan::serialize_plan(other_backend);
  engine = Engine::load(*bytes, "tpu.plan");
  ASSERT_FALSE(engine.is_ok());
  EXPECT_NE(engine.status().message().find("'tpu'"), std::string::npos)
      << engine.status().message();
}

TEST(ExecutionContext, TwoInputsChangeBatchOneAtATime) {
  // out = Gemm(a + b): both inputs share the batch dim, so after the first set_input_shape
  // they disagree until the second one is set.
  ir::Graph g = make_mlp_graph(-1, 4, 3, 2, 8);
  g.inputs = {{"a", DataType::kFloat32, {ir::Dim{-1, "batch"}, ir::Dim{4, ""}}},
              {"b", DataType::kFloat32, {ir::Dim{-1, "batch"}, ir::Dim{4, ""}}}};
  g.nodes.insert(g.nodes.begin(), ir::Node{"sum", "Add", {"a", "b"}, {"input"}, {}});
  BuilderConfig config;
  OptimizationProfile p;
  ASSERT_TRUE(p.set_dimensions("a", {{1, 4}, {2, 4}, {8, 4}}).is_ok());
  ASSERT_TRUE(p.set_dimensions("b", {{1, 4}, {2, 4}, {8, 4}}).is_ok());
  config.profiles = {p};
  auto plan = build_serialized_engine(*make_network(g), config);
  ASSERT_TRUE(plan.is_ok()) << plan.status().message();
  auto engine = std::move(Engine::load(plan->bytes, "two_inputs.plan")).value();
  auto context = std::move(engine->create_execution_context()).value();
  for (int64_t batch : {2, 5, 3}) {
    std::vector<float> a = test::random_input(batch * 4, 1), b = test::random_input(batch * 4, 2);
    ASSERT_TRUE(context->set_input_shape("a", {batch, 4}).is_ok());
    ASSERT_TRUE(context->set_input_shape("b", {batch, 4}).is_ok());
    ASSERT_TRUE(context->set_tensor_address("a", a.data()).is_ok());
    ASSERT_TRUE(context->set_tensor_address("b", b.data()).is_ok());
    ASSERT_TRUE(context->enqueue().is_ok());
    EXPECT_EQ(context->output("output")->dims, (Dims{batch, 2}));
  }
  ASSERT_TRUE(context->set_input_shape("a", {2, 4}).is_ok());  // b is still 3x4
  Status s = context->enqueue();
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("cannot be broadcast"), std::string::npos) << s.message();
}

TEST(Engine, LoadFileReportsMissingFile) {
  auto engine = Engine::load_file("/nonexistent/model.plan");
  ASSERT_FALSE(engine.is_ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kNotFound);
  EXPECT_NE(engine.status().message().find("/nonexistent/model.plan"), std::string::npos);
}

}  // namespace
}  // namespace mlprt
