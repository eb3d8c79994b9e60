// fuse_residual_adds on hand-built graphs: which Adds fold into the Dense / MatMul before them
// as a residual input, which stay, and that the result computes the same (float64 evaluator).
#include <gtest/gtest.h>

#include "ir/passes/passes.h"
#include "pass_test_graphs.h"

namespace mlprt::ir {
namespace {

using testing::make_node;
using testing::ramp;

// x [B, 6, 8] -> Dense(8 -> 8, `activation`) -> h; y = Add(r, h) with r = `residual` (x by
// default; "row": a [8] constant, broadcast). `extra_reader`: h is also a graph output.
Graph residual_block(const std::string& activation = "none", const std::string& residual = "x",
                     bool extra_reader = false, bool h_first = false) {
  Graph g;
  g.inputs.push_back({"x", DataType::kFloat32, from_dims({-1, 6, 8})});
  g.constants["w"] = ramp({8, 8}, 0.1f);
  g.constants["b"] = ramp({8}, 0.2f);
  g.constants["row"] = ramp({8}, 0.3f);
  g.nodes.push_back(make_node("d", "Dense", {"x", "w", "b"}, {"h"},
                              {{"activation", activation}}));
  const std::vector<std::string> add_inputs =
      h_first ? std::vector<std::string>{"h", residual} : std::vector<std::string>{residual, "h"};
  g.nodes.push_back(make_node("add", "Add", add_inputs, {"y"}));
  g.outputs.push_back({"y", DataType::kFloat32, {}});
  if (extra_reader) g.outputs.push_back({"h", DataType::kFloat32, {}});
  return g;
}

RefTensor input() {
  RefTensor x{{2, 6, 8}, std::vector<double>(96)};
  for (size_t i = 0; i < x.values.size(); ++i) x.values[i] = 0.013 * static_cast<double>(i) - 0.5;
  return x;
}

void expect_same(const Graph& a, const Graph& b) {
  testing::expect_same_output(a, b, input(), 1e-12);
}

TEST(FuseResidual, AddOfTheSameShapeFoldsIntoTheDense) {
  for (bool h_first : {false, true}) {
    const Graph before = residual_block("none", "x", false, h_first);
    Graph g = before;
    ASSERT_TRUE(fuse_residual_adds(g).is_ok());
    ASSERT_EQ(g.nodes.size(), 1u);
    const Node& d = g.nodes[0];
    EXPECT_EQ(d.op, "Dense");
    EXPECT_TRUE(has_residual(d));
    EXPECT_EQ(d.inputs, (std::vector<std::string>{"x", "w", "b", "x"}));
    EXPECT_EQ(d.outputs[0], "y");
    EXPECT_TRUE(check_layer_ops(g).is_ok());
    expect_same(before, g);
  }
}

TEST(FuseResidual, DenseWithoutBiasKeepsAnEmptyBiasSlot) {
  Graph before = residual_block();
  before.nodes[0].inputs.resize(2);
  Graph g = before;
  ASSERT_TRUE(fuse_residual_adds(g).is_ok());
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].inputs, (std::vector<std::string>{"x", "w", "", "x"}));
  EXPECT_TRUE(check_layer_ops(g).is_ok());
  expect_same(before, g);
}

TEST(FuseResidual, BroadcastResidualStaysAnAdd) {
  Graph g = residual_block("none", "row");
  ASSERT_TRUE(fuse_residual_adds(g).is_ok());
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_FALSE(has_residual(g.nodes[0]));
  EXPECT_EQ(g.nodes[1].op, "Add");
}

TEST(FuseResidual, DenseWithActivationStaysAnAdd) {
  Graph g = residual_block("relu");
  ASSERT_TRUE(fuse_residual_adds(g).is_ok());
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_FALSE(has_residual(g.nodes[0]));
}

TEST(FuseResidual, DenseOutputWithTwoConsumersStaysAnAdd) {
  // h read by the Add and by a second node.
  Graph g = residual_block();
  g.nodes.push_back(make_node("relu", "Relu", {"h"}, {"z"}));
  g.outputs.push_back({"z", DataType::kFloat32, {}});
  ASSERT_TRUE(fuse_residual_adds(g).is_ok());
  ASSERT_EQ(g.nodes.size(), 3u);
  EXPECT_FALSE(has_residual(g.nodes[0]));
  // h also a graph output.
  Graph out = residual_block("none", "x", true);
  ASSERT_TRUE(fuse_residual_adds(out).is_ok());
  EXPECT_EQ(out.nodes.size(), 2u);
}

TEST(FuseResidual, ConstantResidualStaysAnAdd) {
  Graph g = residual_block();
  g.inputs[0].shape = from_dims({2, 6, 8});
  g.constants["full"] = ramp({2, 6, 8}, 0.05f);
  g.nodes[1].inputs = {"full", "h"};
  ASSERT_TRUE(fuse_residual_adds(g).is_ok());
  EXPECT_EQ(g.nodes.size(), 2u);
}

TEST(FuseResidual, ResidualComputedAfterTheProductMovesTheProductDown) {
  // h = Dense(x); r = Relu(x) computed after h; y = h + r: the fused layer sits where the Add
  // was, after r.
  Graph before = residual_block();
  before.nodes.insert(before.nodes.begin() + 1, make_node("r", "Relu", {"x"}, {"r"}));
  before.nodes[2].inputs = {"h", "r"};
  Graph g = before;
  ASSERT_TRUE(fuse_residual_adds(g).is_ok());
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].op, "Relu");
  EXPECT_EQ(g.nodes[1].op, "Dense");
  EXPECT_EQ(g.nodes[1].inputs.back(), "r");
  expect_same(before, g);
}

TEST(FuseResidual, TransposedMatMulTakesAResidualOfItsStoredShape) {
  // Token mixing with the write transposed: y [B, 6, 8] = x + (x^T W + b)^T.
  Graph before;
  before.inputs.push_back({"x", DataType::kFloat32, from_dims({-1, 6, 8})});
  before.constants["w"] = ramp({6, 6}, 0.1f);
  before.constants["b"] = ramp({6}, 0.2f);
  before.nodes.push_back(make_node("t", "Transpose", {"x"}, {"xt"}, {{"perm", std::vector<int64_t>{0, 2, 1}}}));
  before.nodes.push_back(make_node("d", "Dense", {"xt", "w", "b"}, {"h"},
                                   {{"activation", std::string("none")}}));
  before.nodes.push_back(make_node("t2", "Transpose", {"h"}, {"ht"}, {{"perm", std::vector<int64_t>{0, 2, 1}}}));
  before.nodes.push_back(make_node("add", "Add", {"x", "ht"}, {"y"}));
  before.outputs.push_back({"y", DataType::kFloat32, {}});
  Graph g = before;
  ASSERT_TRUE(optimize(g).is_ok());
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, "MatMul");
  EXPECT_EQ(g.nodes[0].get_int("transpose_y", 0), 1);
  EXPECT_TRUE(has_residual(g.nodes[0]));
  expect_same(before, g);
}

TEST(FuseResidual, LayerChecksRefuseAResidualOnALayerWithActivation) {
  Graph g = residual_block();
  ASSERT_TRUE(fuse_residual_adds(g).is_ok());
  g.nodes[0].attributes["activation"] = std::string("relu");
  const Status status = check_layer_ops(g);
  ASSERT_FALSE(status.is_ok());
  EXPECT_NE(status.message().find("residual"), std::string::npos) << status.message();
}

}  // namespace
}  // namespace mlprt::ir
