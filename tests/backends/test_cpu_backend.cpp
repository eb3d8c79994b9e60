// Numerics of the cpu backend: every layer op and their combinations against float64 loops.

#include "cpu_test_graphs.h"

namespace mlprt::testing {
namespace {

struct Loaded {
  std::unique_ptr<backend::Executable> exe;
  std::unique_ptr<backend::BackendContext> context;
};

Loaded load_with_context(const ir::Graph& graph,
                         const std::vector<OptimizationProfile>& profiles = {}) {
  Loaded out;
  out.exe = load_cpu(graph, profiles);
  if (!out.exe) return out;
  auto context = out.exe->create_context();
  EXPECT_TRUE(context.is_ok()) << context.status().message();
  if (context.is_ok()) out.context = std::move(context).value();
  return out;
}

TEST(CpuBackendNumerics, SingleDense) {
  GraphMaker g;
  const auto x = g.input("x", {-1, 20});
  g.output(g.dense(x, 20, 7));
  Loaded l = load_with_context(g.graph());
  ASSERT_TRUE(l.context);
  expect_matches_reference(*l.context, g.graph(), {{"x", random_tensor({8, 20}, 1)}});
}

TEST(CpuBackendNumerics, DenseRelu) {
  GraphMaker g;
  const auto x = g.input("x", {-1, 33});
  g.output(g.dense(x, 33, 17, /*bias=*/true, /*relu=*/true));
  Loaded l = load_with_context(g.graph());
  ASSERT_TRUE(l.context);
  const TensorMap inputs = {{"x", random_tensor({9, 33}, 2)}};
  expect_matches_reference(*l.context, g.graph(), inputs);
  // The relu must actually clip: with random weights some outputs are exactly 0.
  TensorMap outputs;
  ASSERT_TRUE(run_context(*l.context, g.graph(), inputs, outputs).is_ok());
  const auto& y = outputs.begin()->second.data;
  EXPECT_GT(std::count(y.begin(), y.end(), 0.0f), 0);
  EXPECT_EQ(std::count_if(y.begin(), y.end(), [](float v) { return v < 0.0f; }), 0);
}

TEST(CpuBackendNumerics, DenseWithoutBias) {
  GraphMaker g;
  const auto x = g.input("x", {-1, 16});
  g.output(g.dense(x, 16, 5, /*bias=*/false));
  Loaded l = load_with_context(g.graph());
  ASSERT_TRUE(l.context);
  expect_matches_reference(*l.context, g.graph(), {{"x", random_tensor({4, 16}, 3)}});
}

TEST(CpuBackendNumerics, TransposeX) {
  GraphMaker g;
  const auto x = g.input("x", {12, -1});  // [K, M]
  g.output(g.dense(x, 12, 6, /*bias=*/true, /*relu=*/false, /*transpose_x=*/true));
  Loaded l = load_with_context(g.graph());
  ASSERT_TRUE(l.context);
  for (int64_t m : {5, 1, 40}) {
    SCOPED_TRACE(m);
    expect_matches_reference(*l.context, g.graph(),
                             {{"x", random_tensor({12, m}, static_cast<unsigned>(m))}});
  }
}

TEST(CpuBackendNumerics, ThreeDimensionalInput) {
  GraphMaker g;
  const auto x = g.input("x", {-1, 6, 10});  // [B, T, K]
  g.output(g.dense(g.dense(x, 10, 8, true, true), 8, 3));
  Loaded l = load_with_context(g.graph());
  ASSERT_TRUE(l.context);
  expect_matches_reference(*l.context, g.graph(), {{"x", random_tensor({3, 6, 10}, 4)}});
}

TEST(CpuBackendNumerics, Mlp784x32x10AtManyBatches) {
  GraphMaker g;
  const auto x = g.input("input", {-1, 784});
  g.output(g.dense(g.dense(g.dense(x, 784, 32, true, true), 32, 32, true, true), 32, 10));
  OptimizationProfile profile;
  ASSERT_TRUE(profile.set_dimensions("input", {{1, 784}, {32, 784}, {64, 784}}).is_ok());
  Loaded l = load_with_context(g.graph(), {profile});
  ASSERT_TRUE(l.context);
  // 32 runs the fixed-M primitive of the opt shape, the others the runtime-M one.
  for (int64_t m : {32, 1, 31, 64, 1000}) {
    SCOPED_TRACE(m);
    expect_matches_reference(*l.context, g.graph(),
                             {{"input", random_tensor({m, 784}, static_cast<unsigned>(m))}});
  }
}

TEST(CpuBackendNumerics, AddWithBroadcastConstants) {
  GraphMaker g;
  const auto x = g.input("x", {-1, 4, 6});
  const auto h = g.dense(x, 6, 5);                  // [B, 4, 5]
  const auto a = g.add(h, g.constant({5}));         // trailing broadcast
  const auto b = g.add(g.constant({4, 1}), a);      // constant on the left, middle broadcast
  const auto c = g.add(b, g.constant({1, 4, 5}));   // leading broadcast
  g.output(g.add(c, h));                            // same shapes, both computed
  Loaded l = load_with_context(g.graph());
  ASSERT_TRUE(l.context);
  expect_matches_reference(*l.context, g.graph(), {{"x", random_tensor({3, 4, 6}, 5)}});
}

TEST(CpuBackendNumerics, AddBroadcastsBothOperands) {
  GraphMaker g;
  const auto a = g.input("a", {-1, 1, 7});
  const auto b = g.input("b", {5, 1});
  g.output(g.relu(g.add(a, b)));
  Loaded l = load_with_context(g.graph());
  ASSERT_TRUE(l.context);
  expect_matches_reference(*l.context, g.graph(),
                           {{"a", random_tensor({2, 1, 7}, 6)}, {"b", random_tensor({5, 1}, 7)}});
}

TEST(CpuBackendNumerics, ReshapeAndFlattenInTheMiddle) {
  GraphMaker g;
  const auto x = g.input("x", {-1, 4, 7});
  const auto f = g.flatten(x, 1);                 // [B, 28]
  const auto d = g.dense(f, 28, 10);              // [B, 10]
  const auto r = g.reshape(d, {0, 2, -1});        // [B, 2, 5]
  const auto rl = g.relu(r);
  const auto back = g.reshape(rl, {-1, 10});      // [B, 10]
  g.output(g.dense(back, 10, 3));
  Loaded l = load_with_context(g.graph());
  ASSERT_TRUE(l.context);
  expect_matches_reference(*l.context, g.graph(), {{"x", random_tensor({6, 4, 7}, 8)}});
}

TEST(CpuBackendNumerics, ViewAsLastNode) {
  GraphMaker g;
  const auto x = g.input("x", {-1, 12});
  g.output(g.flatten(g.reshape(g.dense(x, 12, 8), {-1, 2, 4}), 2));
  Loaded l = load_with_context(g.graph());
  ASSERT_TRUE(l.context);
  expect_matches_reference(*l.context, g.graph(), {{"x", random_tensor({5, 12}, 9)}});
}

TEST(CpuBackendNumerics, GraphOutputThatIsAlsoReadAndViewed) {
  GraphMaker g;
  const auto x = g.input("x", {-1, 9});
  const auto h = g.dense(x, 9, 6, true, true);  // output and read by two nodes
  g.output(h);
  g.output(g.reshape(h, {-1, 3, 2}));
  g.output(g.dense(h, 6, 4));
  g.output(g.reshape(x, {-1, 3, 3}));  // a view of a graph input
  Loaded l = load_with_context(g.graph());
  ASSERT_TRUE(l.context);
  expect_matches_reference(*l.context, g.graph(), {{"x", random_tensor({7, 9}, 10)}});
}

TEST(CpuBackendNumerics, ShapesChangeBetweenCalls) {
  GraphMaker g;
  const auto x = g.input("x", {-1, 30});
  g.output(g.add(g.relu(g.dense(g.dense(x, 30, 20, true, true), 20, 11)), g.constant({11})));
  Loaded l = load_with_context(g.graph());
  ASSERT_TRUE(l.context);
  for (int64_t m : {16, 300, 3, 1, 500, 16}) {
    SCOPED_TRACE(m);
    expect_matches_reference(*l.context, g.graph(),
                             {{"x", random_tensor({m, 30}, static_cast<unsigned>(100 + m))}});
  }
}

TEST(CpuBackendNumerics, BatchOfOneAndOfAThousand) {
  GraphMaker g;
  const auto x = g.input("x", {-1, 64});
  g.output(g.dense(g.dense(x, 64, 48, true, true), 48, 10));
  Loaded l = load_with_context(g.graph());
  ASSERT_TRUE(l.context);
  expect_matches_reference(*l.context, g.graph(), {{"x", random_tensor({1, 64}, 11)}});
  expect_matches_reference(*l.context, g.graph(), {{"x", random_tensor({1000, 64}, 12)}});
}

TEST(CpuBackendNumerics, EmptyBatch) {
  GraphMaker g;
  const auto x = g.input("x", {-1, 8});
  g.output(g.relu(g.dense(x, 8, 4)));
  Loaded l = load_with_context(g.graph());
  ASSERT_TRUE(l.context);
  TensorMap outputs;
  const Status status = run_context(*l.context, g.graph(), {{"x", random_tensor({0, 8}, 13)}},
                                    outputs);
  EXPECT_TRUE(status.is_ok()) << status.message();
  EXPECT_TRUE(outputs.begin()->second.data.empty());
}

}  // namespace
}  // namespace mlprt::testing
