// fold_norm_affine on hand-built graphs: a LayerNorm's scale and shift move into the Dense that
// reads it (directly, or through a mean over tokens), the result computes the same (float64
// evaluator), and the cases that must not fold stay as they are.
#include <gtest/gtest.h>

#include "ir/passes/passes.h"
#include "pass_test_graphs.h"

namespace mlprt::ir {
namespace {

using testing::make_node;
using testing::ramp;

// x [B, 6, 8] -> LayerNorm(gamma, beta) -> [ReduceMean over tokens] -> Dense(8 -> 5, bias).
Graph norm_then_dense(bool mean, bool with_bias = true) {
  Graph g;
  g.inputs.push_back({"x", DataType::kFloat32, from_dims({-1, 6, 8})});
  g.constants["gamma"] = ramp({8}, 0.2f, 7, 1.0f);
  g.constants["beta"] = ramp({8}, 0.1f);
  g.constants["w"] = ramp({8, 5}, 0.3f);
  if (with_bias) g.constants["b"] = ramp({5}, 0.5f);
  g.nodes.push_back(make_node("ln", "LayerNorm", {"x", "gamma", "beta"}, {"n"},
                              {{"axis", int64_t{-1}}, {"epsilon", 1e-5}}));
  std::string dense_in = "n";
  if (mean) {
    g.nodes.push_back(make_node("mean", "ReduceMean", {"n"}, {"m"},
                                {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{0}}}));
    dense_in = "m";
  }
  std::vector<std::string> dense_inputs{dense_in, "w"};
  if (with_bias) dense_inputs.push_back("b");
  g.nodes.push_back(make_node("fc", "Dense", dense_inputs, {"y"},
                              {{"activation", std::string("relu")}}));
  g.outputs.push_back({"y", DataType::kFloat32, {}});
  return g;
}

void expect_same(const Graph& a, const Graph& b) {
  RefTensor x{{2, 6, 8}, std::vector<double>(96)};
  for (size_t i = 0; i < x.values.size(); ++i) x.values[i] = 0.013 * static_cast<double>(i % 17) - 0.1;
  testing::expect_same_output(a, b, x, 1e-6);
}

void expect_folded(const Graph& g) {
  const Node& ln = g.nodes.front();
  ASSERT_EQ(ln.inputs.size(), 2u);  // shift gone
  for (double v : g.constants.at(ln.inputs[1]).to_doubles()) EXPECT_EQ(v, 1.0);
  const Node& fc = g.nodes.back();
  EXPECT_NE(fc.inputs[1], "w");  // a new constant: "w" may be read elsewhere
  ASSERT_EQ(fc.inputs.size(), 3u);
  EXPECT_TRUE(g.constants.count("w"));  // left for remove_dead_nodes
}

TEST(FoldNormAffine, IntoTheDenseThatReadsIt) {
  const Graph before = norm_then_dense(false);
  Graph g = before;
  ASSERT_TRUE(fold_norm_affine(g).is_ok());
  expect_folded(g);
  expect_same(before, g);
}

TEST(FoldNormAffine, ThroughAMeanOverTokensAndIntoADenseWithoutBias) {
  const Graph before = norm_then_dense(true, false);
  Graph g = before;
  ASSERT_TRUE(fold_norm_affine(g).is_ok());
  expect_folded(g);
  expect_same(before, g);
}

TEST(FoldNormAffine, NotThroughAMeanOverChannels) {
  Graph g = norm_then_dense(true);
  std::get<std::vector<int64_t>>(g.nodes[1].attributes["axes"]) = {2};
  g.constants["w"] = ramp({1, 5}, 0.3f);  // the mean leaves one feature
  ASSERT_TRUE(fold_norm_affine(g).is_ok());
  EXPECT_EQ(g.nodes[0].inputs[1], "gamma");
  EXPECT_EQ(g.nodes.back().inputs[1], "w");
}

TEST(FoldNormAffine, NotWhenTheNormHasAnotherReader) {
  Graph g = norm_then_dense(false);
  g.nodes.push_back(make_node("r", "Relu", {"n"}, {"z"}));
  g.outputs.push_back({"z", DataType::kFloat32, {}});
  ASSERT_TRUE(fold_norm_affine(g).is_ok());
  EXPECT_EQ(g.nodes[0].inputs[1], "gamma");
  EXPECT_EQ(g.nodes[0].inputs[2], "beta");
}

TEST(FoldNormAffine, NotWhenTheNormSpansMoreThanTheLastAxis) {
  Graph g = norm_then_dense(false);
  g.nodes[0].attributes["axis"] = int64_t{1};
  ASSERT_TRUE(fold_norm_affine(g).is_ok());
  EXPECT_EQ(g.nodes[0].inputs[1], "gamma");
}

}  // namespace
}  // namespace mlprt::ir
