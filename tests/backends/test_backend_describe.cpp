// Backend::describe_blob: what inspect says of a plan's layers without loading it. The graph is
// given as a plan's metadata gives it (constants with dims, no data); the lines must equal the
// loaded Executable's, and the cuda backend must describe its blob without a GPU.

#include <nlohmann/json.hpp>

#include "cpu_test_graphs.h"

namespace mlprt::testing {
namespace {

// The graph as read by plan::read_plan_metadata: every constant's bytes dropped.
ir::Graph without_weights(ir::Graph graph) {
  for (auto& [name, constant] : graph.constants) std::vector<std::byte>().swap(constant.data);
  return graph;
}

TEST(BackendDescribe, CpuDescribesItsBlobAsTheLoadedEngineDoes) {
  GraphMaker g;
  const auto x = g.input("x", {8, 16});
  g.output(g.dense(g.relu(g.dense(x, 16, 32, true, true)), 32, 4));
  const ir::Graph& graph = g.graph();
  const backend::Backend& cpu = **backend::find_backend("cpu");
  auto blob = cpu.compile(graph, {}, BuilderConfig{});
  ASSERT_TRUE(blob.is_ok()) << blob.status().message();
  auto loaded = cpu.load(graph, *blob);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().message();
  auto described = cpu.describe_blob(without_weights(graph), *blob);
  ASSERT_TRUE(described.is_ok()) << described.status().message();
  EXPECT_EQ(described->layer_precisions, (*loaded)->layer_precisions());
  EXPECT_EQ(described->tactic_notes, (*loaded)->tactic_notes());
  ASSERT_EQ(described->layer_precisions.size(), graph.nodes.size());
  EXPECT_NE(described->layer_precisions[0].find("any M: fp32 runtime-M"), std::string::npos)
      << described->layer_precisions[0];
}

TEST(BackendDescribe, CpuRefusesABlobItCannotRead) {
  GraphMaker g;
  g.output(g.dense(g.input("x", {2, 4}), 4, 3));
  const backend::Backend& cpu = **backend::find_backend("cpu");
  const std::string text = R"({"format":"mlprt.cpu","version":1,"layers":[]})";
  auto described = cpu.describe_blob(without_weights(g.graph()),
                                     std::vector<uint8_t>(text.begin(), text.end()));
  ASSERT_FALSE(described.is_ok());
  EXPECT_EQ(described.status().code(), StatusCode::kVersionMismatch);
}

TEST(BackendDescribe, CudaDescribesItsBlobWithoutAGpuOrWeights) {
  auto cuda = backend::find_backend("cuda");
  if (!cuda.is_ok()) GTEST_SKIP() << "the cuda backend is not compiled into this build";
  GraphMaker g;
  const auto x = g.input("x", {-1, 16});
  g.output(g.dense(g.relu(g.dense(x, 16, 32, true, true)), 32, 4));
  const ir::Graph graph = without_weights(g.graph());
  // A blob as cuda_backend.cpp writes it (docs/plan-format.md), with one tuned tactic per layer.
  nlohmann::json layers = nlohmann::json::array();
  for (const ir::Node& node : graph.nodes) {
    if (node.op != "Dense") continue;
    layers.push_back({{"node", node.name},
                      {"epilogue", "exact"},
                      {"tactics", {{{"m", 64}, {"us", 12.5}, {"candidates", 7},
                                    {"algo", {0, 0, 0, 0, 0, 0, 0, 0}}}}}});
  }
  const nlohmann::json blob = {{"format", "mlprt.cuda"}, {"version", 2},
                               {"hardware", "NVIDIA H200 sm_90"}, {"precision", "fp16"},
                               {"workspace_bytes", 1 << 20}, {"fused_max_rows", 0},
                               {"layers", layers}};
  const std::string text = blob.dump();
  auto described =
      (*cuda)->describe_blob(graph, std::vector<uint8_t>(text.begin(), text.end()));
  ASSERT_TRUE(described.is_ok()) << described.status().message();
  ASSERT_EQ(described->layer_precisions.size(), graph.nodes.size());
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const std::string& line = described->layer_precisions[i];
    EXPECT_EQ(line.rfind("fp16", 0), 0u) << line;
    if (graph.nodes[i].op == "Dense") {
      EXPECT_NE(line.find("M=64: "), std::string::npos) << line;
      EXPECT_NE(line.find("fastest of 7"), std::string::npos) << line;
    }
  }
  // A blob naming a layer epilogue it does not know is refused, as load() refuses it.
  nlohmann::json bad = blob;
  bad["layers"][0]["epilogue"] = "swish";
  const std::string bad_text = bad.dump();
  auto refused =
      (*cuda)->describe_blob(graph, std::vector<uint8_t>(bad_text.begin(), bad_text.end()));
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().message().find("swish"), std::string::npos);
}

}  // namespace
}  // namespace mlprt::testing
