// Split batch: a batch past every profile's max runs in chunks (ExecutionContext::set_split_batch)
// on the cpu backend, against the float64 reference; the refusals; enqueue does not allocate.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "mlprt/builder.h"
#include "mlprt/engine.h"
#include "plan/plan.h"
#include "test_graphs.h"

// Counts operator new calls while armed, to check that enqueue allocates nothing more when split.
namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

// GCC cannot see that these replace the global pair and warns on free() of new'd memory.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// The nothrow form too (std::stable_sort's temporary buffer uses it): every global new of this
// binary comes from malloc, so the frees below match under AddressSanitizer.
void* operator new(size_t size, const std::nothrow_t&) noexcept {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  return std::malloc(size == 0 ? 1 : size);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace mlprt {
namespace {

using test::make_mlp_graph;
using test::make_network;

constexpr int64_t kIn = 12, kHidden = 16, kOut = 5;

std::vector<uint8_t> build_plan(const ir::Graph& graph, const std::vector<ShapeRange>& ranges) {
  BuilderConfig config;
  config.backend = "cpu";
  config.optimization_level = 0;
  for (const ShapeRange& range : ranges) {
    OptimizationProfile profile;
    EXPECT_TRUE(profile.set_dimensions("input", range).is_ok());
    config.profiles.push_back(profile);
  }
  auto plan = build_serialized_engine(*make_network(graph), config);
  EXPECT_TRUE(plan.is_ok()) << plan.status().message();
  return plan->bytes;
}

std::unique_ptr<Engine> load(const std::vector<uint8_t>& bytes) {
  auto engine = Engine::load(bytes, "split.plan");
  EXPECT_TRUE(engine.is_ok()) << engine.status().message();
  return std::move(engine).value();
}

ShapeRange rows(int64_t min, int64_t opt, int64_t max) {
  return {{min, kIn}, {opt, kIn}, {max, kIn}};
}

// Runs `batch` rows split and checks them against float64; `bind_output` binds the caller's
// own output buffer instead of reading the context's.
void expect_split_matches_reference(const std::vector<ShapeRange>& profiles, int64_t batch,
                                    bool bind_output) {
  const ir::Graph graph = make_mlp_graph(-1, kIn, kHidden, kOut, 7);
  auto engine = load(build_plan(graph, profiles));
  auto context = std::move(engine->create_execution_context()).value();
  ASSERT_TRUE(context->set_split_batch(true).is_ok());
  ASSERT_TRUE(context->set_input_shape("input", {batch, kIn}).is_ok());
  EXPECT_EQ(*context->tensor_shape("output"), (Dims{batch, kOut}));
  const std::vector<float> x = test::random_input(batch * kIn, static_cast<uint32_t>(batch));
  std::vector<float> y(static_cast<size_t>(batch * kOut) + 1, -7.0f);  // one guard element
  ASSERT_TRUE(context->set_tensor_address("input", const_cast<float*>(x.data())).is_ok());
  if (bind_output) {
    ASSERT_TRUE(context->set_tensor_address("output", y.data()).is_ok());
  }
  for (int repeat = 0; repeat < 2; ++repeat) {
    Status run = context->enqueue();
    ASSERT_TRUE(run.is_ok()) << run.message();
  }
  auto out = context->output("output");
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(out->dims, (Dims{batch, kOut}));
  std::vector<float> actual(out->as<float>().begin(), out->as<float>().end());
  EXPECT_LE(test::rel_l2(actual, test::reference_output(graph, {batch, kIn}, x)), 1e-5)
      << "batch " << batch;
  if (bind_output) {
    EXPECT_EQ(y.back(), -7.0f) << "wrote past the caller's buffer";
  }
}

TEST(SplitBatch, TenTimesTheLargestMaxInChunksOfTheBestProfile) {
  // Best profile: 1 (max 16); 160 rows = 10 chunks.
  expect_split_matches_reference({rows(1, 4, 8), rows(2, 16, 16)}, 160, false);
  expect_split_matches_reference({rows(1, 4, 8), rows(2, 16, 16)}, 160, true);
}

TEST(SplitBatch, AShorterLastChunkRunsInAProfileThatHoldsIt) {
  expect_split_matches_reference({rows(1, 4, 8), rows(2, 16, 16)}, 165, true);  // 5: profile 1
  expect_split_matches_reference({rows(1, 4, 8), rows(2, 16, 16)}, 161, true);  // 1: profile 0
}

TEST(SplitBatch, ALastChunkNoProfileHoldsOverlapsThePreviousOne) {
  expect_split_matches_reference({rows(4, 8, 8)}, 81, true);  // 1 row < min 4
  expect_split_matches_reference({rows(4, 8, 8)}, 9, false);
}

TEST(SplitBatch, ShapesInAProfileRunAsOneCallAsBefore) {
  expect_split_matches_reference({rows(1, 4, 8), rows(2, 16, 16)}, 6, true);
}

TEST(SplitBatch, EnqueueAllocatesNoMoreThanAnUnsplitCall) {
  const ir::Graph graph = make_mlp_graph(-1, kIn, kHidden, kOut, 7);
  auto engine = load(build_plan(graph, {rows(1, 8, 8)}));
  auto context = std::move(engine->create_execution_context()).value();
  const std::vector<float> x = test::random_input(85 * kIn, 1);
  std::vector<float> y(85 * kOut);
  ASSERT_TRUE(context->set_tensor_address("input", const_cast<float*>(x.data())).is_ok());
  ASSERT_TRUE(context->set_tensor_address("output", y.data()).is_ok());
  const auto count = [&] {
    EXPECT_TRUE(context->enqueue().is_ok());  // warm
    g_allocations = 0;
    g_counting = true;
    Status run = context->enqueue();
    g_counting = false;
    EXPECT_TRUE(run.is_ok()) << run.message();
    return g_allocations.load();
  };
  ASSERT_TRUE(context->set_input_shape("input", {8, kIn}).is_ok());
  const long plain = count();
  ASSERT_TRUE(context->set_split_batch(true).is_ok());
  ASSERT_TRUE(context->set_input_shape("input", {85, kIn}).is_ok());  // 10 chunks + a tail
  const long split = count();
  RecordProperty("allocations_plain", static_cast<int>(plain));
  RecordProperty("allocations_split", static_cast<int>(split));
  EXPECT_LE(split, 11 * plain);
  if (plain == 0) {
    EXPECT_EQ(count(), 0);
  }
}

TEST(SplitBatch, WithoutItABatchPastEveryProfileIsRefusedSayingHow) {
  auto engine = load(build_plan(make_mlp_graph(-1, kIn, kHidden, kOut, 7), {rows(1, 8, 8)}));
  auto context = std::move(engine->create_execution_context()).value();
  Status s = context->set_input_shape("input", {80, kIn});
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("set_split_batch(true)"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("--splitBatch"), std::string::npos) << s.message();
  auto found = engine->find_profile({{"input", {80, kIn}}});
  ASSERT_FALSE(found.is_ok());
  EXPECT_NE(found.status().message().find("--splitBatch"), std::string::npos);
  // Within the max but outside the selected profile: today's error, no split hint.
  auto two =
      load(build_plan(make_mlp_graph(-1, kIn, kHidden, kOut, 7), {rows(1, 8, 8), rows(9, 16, 16)}));
  auto ctx2 = std::move(two->create_execution_context()).value();
  ASSERT_TRUE(ctx2->set_split_batch(true).is_ok());
  s = ctx2->set_input_shape("input", {12, kIn});
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.message().find("--splitBatch"), std::string::npos) << s.message();
  // Other dims must fit the chunk's profile.
  s = ctx2->set_input_shape("input", {80, kIn + 1});
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("other dims fit no profile"), std::string::npos) << s.message();
}

TEST(SplitBatch, APlanWithoutTheRecordAsksForARebuild) {
  const std::vector<uint8_t> bytes =
      build_plan(make_mlp_graph(-1, kIn, kHidden, kOut, 7), {rows(1, 8, 8)});
  auto plan = plan::deserialize_plan(bytes, "old.plan");
  ASSERT_TRUE(plan.is_ok());
  ASSERT_TRUE(plan->row_independence.has_value());
  EXPECT_TRUE(plan->row_independence->independent);
  plan->row_independence.reset();  // as an older mlprt wrote it
  auto old_bytes = plan::serialize_plan(*plan);
  ASSERT_TRUE(old_bytes.is_ok());
  auto engine = load(*old_bytes);
  auto context = std::move(engine->create_execution_context()).value();
  Status s = context->set_split_batch(true);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("rebuild to enable split batch"), std::string::npos) << s.message();
  EXPECT_FALSE(context->split_batch());
}

TEST(SplitBatch, ARowMixingModelIsRefusedNamingTheLayer) {
  ir::Graph graph = make_mlp_graph(-1, kIn, kHidden, kOut, 7);
  graph.nodes.back().outputs = {"logits"};
  ir::Node softmax{"softmax_over_batch", "Softmax", {"logits"}, {"output"}, {}};
  softmax.attributes["axis"] = int64_t{0};
  graph.nodes.push_back(softmax);
  auto engine = load(build_plan(graph, {rows(1, 8, 8)}));
  auto context = std::move(engine->create_execution_context()).value();
  Status s = context->set_split_batch(true);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("softmax_over_batch"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("axis 0, the batch"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace mlprt
