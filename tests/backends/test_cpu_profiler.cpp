// The cpu backend's per-layer timing on a plan whose layers run as one OpenMP region (the
// whole-chain row split): while a profiler is set they run layer by layer, each reported once
// per call in graph order, with the same results as the chained run.

#include "backends/cpu/cpu_dense.h"
#include "backends/cpu/cpu_executable.h"
#include "cpu_test_graphs.h"
#include "mlprt/profiler.h"

namespace mlprt::testing {
namespace {

using backend::cpu::CpuExecutable;
using backend::cpu::DensePrecision;
using backend::cpu::DenseTactic;
using backend::cpu::WeightLayout;

struct Recorder final : Profiler {
  std::vector<std::string> names;
  std::vector<float> ms;
  void report_layer_time(std::string_view layer_name, float t) override {
    names.emplace_back(layer_name);
    ms.push_back(t);
  }
};

TEST(CpuProfiler, AChainedPlanReportsEachLayerOnItsOwn) {
  const ir::Graph graph = row_wise_graph();

  constexpr int64_t kBatch = 64;
  constexpr int kThreads = 2;
  const DenseTactic split{kBatch, DensePrecision::kFp32, WeightLayout::kPacked, kThreads, true};
  std::map<std::string, std::vector<DenseTactic>> tactics;
  for (const ir::Node& node : graph.nodes) {
    if (node.op == "Dense") tactics[node.name] = {DenseTactic{}, split};
  }
  auto exe = CpuExecutable::create(graph, tactics, kThreads, {kBatch});
  ASSERT_TRUE(exe.is_ok()) << exe.status().message();
  ASSERT_NE((*exe)->layer_precisions()[0].find("whole chain row-split"), std::string::npos)
      << "the plan does not chain its layers; the test needs it to";
  auto context = (*exe)->create_context();
  ASSERT_TRUE(context.is_ok());
  ASSERT_TRUE((*context)->set_num_threads(kThreads).is_ok());

  const TensorMap inputs = {{"x", random_tensor({kBatch, 24}, 5)}};
  TensorMap chained;
  ASSERT_TRUE(run_context(**context, graph, inputs, chained).is_ok());
  Recorder recorder;
  ASSERT_TRUE((*context)->set_profiler(&recorder).is_ok());
  TensorMap profiled;
  ASSERT_TRUE(run_context(**context, graph, inputs, profiled).is_ok());
  ASSERT_TRUE(run_context(**context, graph, inputs, profiled).is_ok());

  std::vector<std::string> expected;
  for (int call = 0; call < 2; ++call) {
    for (const ir::Node& node : graph.nodes) expected.push_back(node.name);
  }
  EXPECT_EQ(recorder.names, expected);
  for (size_t i = 0; i < recorder.ms.size(); ++i) {
    EXPECT_TRUE(std::isfinite(recorder.ms[i]) && recorder.ms[i] >= 0.0f) << recorder.names[i];
  }
  const auto reference_out = reference(graph, inputs);
  for (const auto& [name, ref] : reference_out) {
    EXPECT_LE(rel_l2(chained.at(name).data, ref), 1e-5) << name << " chained";
    EXPECT_LE(rel_l2(profiled.at(name).data, ref), 1e-5) << name << " profiled";
  }
  // Off: no more reports, chained again.
  ASSERT_TRUE((*context)->set_profiler(nullptr).is_ok());
  ASSERT_TRUE(run_context(**context, graph, inputs, profiled).is_ok());
  EXPECT_EQ(recorder.names.size(), expected.size());
}

}  // namespace
}  // namespace mlprt::testing
