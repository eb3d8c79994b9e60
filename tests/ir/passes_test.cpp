// Passes on hand-built IR graphs (the ONNX-driven cases are in tests/onnx/optimize_test.cpp).
#include "ir/passes/passes.h"

#include <gtest/gtest.h>

#include <cmath>

#include "ir/evaluator.h"

namespace mlprt::ir {
namespace {

Node make_node(const std::string& name, const std::string& op, std::vector<std::string> inputs,
               std::vector<std::string> outputs) {
  Node n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  return n;
}

TensorInfo tensor(const std::string& name, Dims dims) {
  return {name, DataType::kFloat32, from_dims(dims)};
}

std::vector<float> ramp(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * (static_cast<float>(i % 7) - 3.0f);
  return v;
}

void expect_same_outputs(const Graph& before, const Graph& after, const RefTensor& x) {
  auto a = evaluate_graph(before, {{"x", x}});
  auto b = evaluate_graph(after, {{"x", x}});
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  ASSERT_TRUE(b.is_ok()) << b.status().message();
  for (const TensorInfo& out : before.outputs) {
    EXPECT_EQ(a->at(out.name).dims, b->at(out.name).dims);
    EXPECT_EQ(a->at(out.name).values, b->at(out.name).values) << out.name;
  }
}

TEST(Passes, FoldConstantsKeepsDtypes) {
  Graph g;
  g.inputs.push_back(tensor("x", {2, 3}));
  g.constants["shape_src"] = Constant::from_int64s({2}, {3, 2});
  g.constants["a"] = Constant::from_floats({3}, {1, 2, 3});
  g.constants["b"] = Constant::from_floats({3}, {0.5f, 0.5f, 0.5f});
  g.nodes.push_back(make_node("id", "Identity", {"shape_src"}, {"shape"}));
  g.nodes.push_back(make_node("sum", "Add", {"a", "b"}, {"c"}));
  g.nodes.push_back(make_node("use", "Add", {"x", "c"}, {"y"}));
  g.outputs.push_back(tensor("y", {2, 3}));
  ASSERT_TRUE(fold_constants(g).is_ok());
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].name, "use");
  EXPECT_EQ(g.find_constant("shape")->dtype, DataType::kInt64);
  EXPECT_EQ(g.find_constant("shape")->to_int64s(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(g.find_constant("c")->dtype, DataType::kFloat32);
  EXPECT_EQ(g.find_constant("c")->to_doubles(), (std::vector<double>{1.5, 2.5, 3.5}));
}

TEST(Passes, FoldConstantsKeepsGraphOutputProducers) {
  Graph g;
  g.constants["a"] = Constant::from_floats({2}, {1, 2});
  g.nodes.push_back(make_node("relu", "Relu", {"a"}, {"y"}));
  g.outputs.push_back(tensor("y", {2}));
  ASSERT_TRUE(fold_constants(g).is_ok());
  EXPECT_EQ(g.nodes.size(), 1u);
}

TEST(Passes, IdentityFromInputToOutputBecomesCopy) {
  Graph g;
  g.inputs.push_back(tensor("x", {2, 3}));
  g.nodes.push_back(make_node("copy", "Identity", {"x"}, {"y"}));
  g.nodes.push_back(make_node("r", "Relu", {"x"}, {"z"}));
  g.outputs.push_back(tensor("y", {2, 3}));
  g.outputs.push_back(tensor("z", {2, 3}));
  const Graph before = g;
  ASSERT_TRUE(optimize(g).is_ok());
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].op, "Reshape");
  EXPECT_EQ(g.nodes[0].outputs, std::vector<std::string>{"y"});
  expect_same_outputs(before, g, RefTensor{{2, 3}, {1, -2, 3, -4, 5, -6}});
}

TEST(Passes, RemoveDeadNodesAndConstants) {
  Graph g;
  g.inputs.push_back(tensor("x", {2}));
  g.constants["unused"] = Constant::from_floats({1}, {1});
  g.nodes.push_back(make_node("dead", "Relu", {"x"}, {"d"}));
  g.nodes.push_back(make_node("live", "Relu", {"x"}, {"y"}));
  g.outputs.push_back(tensor("y", {2}));
  ASSERT_TRUE(remove_dead_nodes(g).is_ok());
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].name, "live");
  EXPECT_TRUE(g.constants.empty());
}

TEST(Passes, RowBiasNotFusedIntoVectorProduct) {
  // x is 1-D: MatMul gives [N]; adding a [1, N] constant gives [1, N], which a Dense bias
  // cannot express. The Add must stay.
  Graph g;
  g.inputs.push_back(tensor("x", {3}));
  g.constants["w"] = Constant::from_floats({3, 2}, ramp(6, 0.5f));
  g.constants["b"] = Constant::from_floats({1, 2}, {0.25f, -0.5f});
  g.nodes.push_back(make_node("mm", "MatMul", {"x", "w"}, {"m"}));
  g.nodes.push_back(make_node("add", "Add", {"m", "b"}, {"y"}));
  g.outputs.push_back(tensor("y", {1, 2}));
  const Graph before = g;
  ASSERT_TRUE(optimize(g).is_ok());
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].op, "Dense");
  EXPECT_EQ(g.nodes[1].op, "Add");
  expect_same_outputs(before, g, RefTensor{{3}, {1, 2, 3}});
}

TEST(Passes, SharedWeightsFuseTwice) {
  Graph g;
  g.inputs.push_back(tensor("x", {2, 4}));
  g.constants["w"] = Constant::from_floats({4, 4}, ramp(16, 0.25f));
  g.nodes.push_back(make_node("l1", "MatMul", {"x", "w"}, {"h"}));
  g.nodes.push_back(make_node("r1", "Relu", {"h"}, {"hr"}));
  g.nodes.push_back(make_node("l2", "MatMul", {"hr", "w"}, {"y"}));
  g.outputs.push_back(tensor("y", {2, 4}));
  const Graph before = g;
  ASSERT_TRUE(optimize(g).is_ok());
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].get_string("activation", ""), "relu");
  EXPECT_NE(g.nodes[0].inputs[1], g.nodes[1].inputs[1]);  // each Dense owns its packed weight
  expect_same_outputs(before, g, RefTensor{{2, 4}, {1, -2, 3, -4, 5, -6, 7, -8}});
}

// fuse_dense holds each weight once: a float32 MatMul weight only that node reads is renamed,
// not copied (same buffer), and a Gemm's transposed source is dropped as soon as its Dense
// weight exists, without a float64 copy of the tensor. Numerics as before (float64 reference).
TEST(Passes, FuseDenseMovesOrDropsTheSourceWeight) {
  Graph g;
  g.inputs.push_back(tensor("x", {2, 4}));
  g.constants["w_mm"] = Constant::from_floats({4, 3}, ramp(12, 0.5f));
  g.constants["w_gemm"] = Constant::from_floats({2, 3}, ramp(6, 0.75f));  // [N, K], transB
  g.nodes.push_back(make_node("mm", "MatMul", {"x", "w_mm"}, {"h"}));
  Node gemm = make_node("gemm", "Gemm", {"h", "w_gemm"}, {"y"});
  gemm.attributes["transB"] = int64_t{1};
  gemm.attributes["alpha"] = 0.5;
  g.nodes.push_back(gemm);
  g.outputs.push_back(tensor("y", {2, 2}));
  const Graph before = g;
  const std::byte* mm_buffer = g.constants.at("w_mm").data.data();
  ASSERT_TRUE(optimize(g).is_ok());
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.constants.count("w_mm"), 0u);
  EXPECT_EQ(g.constants.count("w_gemm"), 0u);
  EXPECT_EQ(g.constants.size(), 2u);
  const Constant& moved = g.constants.at(g.nodes[0].inputs[1]);
  EXPECT_EQ(moved.data.data(), mm_buffer);
  const Constant& folded = g.constants.at(g.nodes[1].inputs[1]);
  ASSERT_EQ(folded.dims, (Dims{3, 2}));
  // [k, n] = 0.5 * w_gemm[n, k]
  for (size_t k = 0; k < 3; ++k) {
    for (size_t n = 0; n < 2; ++n) {
      EXPECT_EQ(folded.value_at(k * 2 + n),
                static_cast<double>(
                    static_cast<float>(0.5 * before.constants.at("w_gemm").value_at(n * 3 + k))));
    }
  }
  expect_same_outputs(before, g, RefTensor{{2, 4}, {1, -2, 3, -4, 5, -6, 7, -8}});
}

TEST(Passes, CheckLayerOpsNamesTheNode) {
  Graph g;
  g.source = "model.onnx";
  g.inputs.push_back(tensor("x", {2, 2}));
  g.nodes.push_back(make_node("weird", "Erf", {"x"}, {"y"}));
  g.outputs.push_back(tensor("y", {2, 2}));
  Status s = check_layer_ops(g);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("model.onnx: node 'weird' (Erf)"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("Dense, Add, Binary, Relu, Activation, Softmax, LayerNorm"),
            std::string::npos);
}

TEST(Passes, ReshapeWithVariableShapeIsRefused) {
  Graph g;
  g.inputs.push_back(tensor("x", {2, 2}));
  g.inputs.push_back(tensor("s", {2}));
  g.nodes.push_back(make_node("rs", "Reshape", {"x", "s"}, {"y"}));
  g.outputs.push_back(tensor("y", {4, 1}));
  Status s = optimize(g);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("'rs'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("'s'"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace mlprt::ir
