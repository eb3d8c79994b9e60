// fuse_transposes on hand-built graphs: which Transposes become strided MatMul reads / writes,
// which stay copies, and that the result computes the same as before (float64 evaluator).
#include <gtest/gtest.h>

#include "ir/passes/passes.h"
#include "pass_test_graphs.h"

namespace mlprt::ir {
namespace {

using testing::make_node;
using testing::ramp;

// x [B, 6, 8] -> Transpose(0, 2, 1) -> Dense(6 -> 5, gelu) -> Dense(5 -> 6) -> Transpose back.
Graph token_mixing(std::vector<int64_t> perm) {
  Graph g;
  g.inputs.push_back({"x", DataType::kFloat32, from_dims({-1, 6, 8})});
  g.constants["w1"] = ramp({6, 5}, 0.1f, 5);
  g.constants["b1"] = ramp({5}, 0.2f, 5);
  g.constants["w2"] = ramp({5, 6}, 0.3f, 5);
  g.nodes.push_back(make_node("t1", "Transpose", {"x"}, {"xt"}, {{"perm", perm}}));
  g.nodes.push_back(make_node("d1", "Dense", {"xt", "w1", "b1"}, {"h"},
                              {{"activation", std::string("gelu_erf")}}));
  g.nodes.push_back(make_node("d2", "Dense", {"h", "w2"}, {"ht"}, {{"activation", std::string("none")}}));
  g.nodes.push_back(make_node("t2", "Transpose", {"ht"}, {"y"}, {{"perm", perm}}));
  g.outputs.push_back({"y", DataType::kFloat32, {}});
  return g;
}

RefTensor input() {
  RefTensor x{{2, 6, 8}, std::vector<double>(96)};
  for (size_t i = 0; i < x.values.size(); ++i) x.values[i] = 0.01 * static_cast<double>(i) - 0.4;
  return x;
}

void expect_same(const Graph& a, const Graph& b) {
  testing::expect_same_output(a, b, input(), 1e-12);
}

TEST(FuseTransposes, TokenMixingBecomesTwoStridedMatMuls) {
  const Graph before = token_mixing({0, 2, 1});
  Graph g = before;
  ASSERT_TRUE(fuse_transposes(g).is_ok());
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].op, "MatMul");
  EXPECT_EQ(g.nodes[0].inputs[0], "x");
  EXPECT_EQ(g.nodes[0].get_int("transpose_a", 0), 1);
  EXPECT_EQ(g.nodes[0].get_string("activation", ""), "gelu_erf");
  EXPECT_EQ(g.nodes[1].op, "MatMul");
  EXPECT_EQ(g.nodes[1].get_int("transpose_y", 0), 1);
  EXPECT_EQ(g.nodes[1].outputs[0], "y");
  expect_same(before, g);
}

TEST(FuseTransposes, OtherPermutationsStayCopies) {
  const Graph before = token_mixing({1, 0, 2});  // moves the batch: no GEMM reads that
  Graph g = before;
  ASSERT_TRUE(fuse_transposes(g).is_ok());
  ASSERT_EQ(g.nodes.size(), 4u);
  EXPECT_EQ(g.nodes[0].op, "Transpose");
  EXPECT_EQ(g.nodes[1].op, "Dense");
  EXPECT_EQ(g.nodes[3].op, "Transpose");
}

TEST(FuseTransposes, TransposeWithTwoReadersStays) {
  Graph g = token_mixing({0, 2, 1});
  g.nodes.push_back(make_node("r", "Relu", {"xt"}, {"z"}));
  g.outputs.push_back({"z", DataType::kFloat32, {}});
  ASSERT_TRUE(fuse_transposes(g).is_ok());
  EXPECT_EQ(g.nodes[0].op, "Transpose");  // still read by Relu
  EXPECT_EQ(g.nodes[1].op, "Dense");
  // The write side still folds.
  EXPECT_EQ(g.nodes[2].op, "MatMul");
  EXPECT_EQ(g.nodes[2].get_int("transpose_y", 0), 1);
}

}  // namespace
}  // namespace mlprt::ir
