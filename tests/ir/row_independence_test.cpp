// The row-independence analysis behind split batch, on hand-built graphs of layer ops.
#include "ir/row_independence.h"

#include <gtest/gtest.h>

namespace mlprt::ir {
namespace {

Node node(const std::string& name, const std::string& op, std::vector<std::string> inputs,
          std::vector<std::string> outputs, std::map<std::string, AttributeValue> attrs = {}) {
  return Node{name, op, std::move(inputs), std::move(outputs), std::move(attrs)};
}

// x [batch, 6] -> fc (Dense 6x5 relu) -> h; more nodes are appended by each test.
Graph base_graph() {
  Graph g;
  g.name = "rows";
  g.inputs.push_back({"x", DataType::kFloat32, {Dim{-1, "batch"}, Dim{6, ""}}});
  g.constants["w"] = Constant::from_floats({6, 5}, std::vector<float>(30, 0.1f));
  g.constants["b"] = Constant::from_floats({5}, std::vector<float>(5, 0.0f));
  g.nodes.push_back(
      node("fc", "Dense", {"x", "w", "b"}, {"h"}, {{"activation", std::string("relu")}}));
  return g;
}

void set_output(Graph& g, const std::string& name) {
  g.outputs = {{name, DataType::kFloat32, {Dim{-1, "batch"}}}};
}

RowIndependence analyze(const Graph& g) {
  return analyze_row_independence(g, {ShapeMap{{"x", {8, 6}}}});
}

TEST(RowIndependence, ProvesARowWiseChainOfEveryKind) {
  Graph g = base_graph();
  g.constants["bias_row"] = Constant::from_floats({1, 5}, std::vector<float>(5, 1.0f));
  g.constants["scale"] = Constant::from_floats({5}, std::vector<float>(5, 2.0f));
  g.constants["shift"] = Constant::from_floats({5}, std::vector<float>(5, 0.5f));
  g.nodes.push_back(node("add", "Add", {"h", "bias_row"}, {"a"}));
  g.nodes.push_back(node("mul", "Binary", {"scale", "a"}, {"m"}, {{"kind", std::string("mul")}}));
  g.nodes.push_back(node("act", "Activation", {"m"}, {"t"}, {{"kind", std::string("tanh")}}));
  g.nodes.push_back(
      node("bn", "ScaleShift", {"t", "scale", "shift"}, {"s"}, {{"axis", int64_t{1}}}));
  g.nodes.push_back(node("ln", "LayerNorm", {"s", "scale", "shift"}, {"n"},
                         {{"axis", int64_t{-1}}, {"epsilon", 1e-5}}));
  g.nodes.push_back(node("up", "Unsqueeze", {"n"}, {"u"}, {{"axes", std::vector<int64_t>{2}}}));
  g.nodes.push_back(
      node("view", "Reshape", {"u"}, {"r"}, {{"shape", std::vector<int64_t>{0, 5, 1}}}));
  g.nodes.push_back(node("flat", "Flatten", {"r"}, {"f"}, {{"axis", int64_t{1}}}));
  g.nodes.push_back(node("sm", "Softmax", {"f"}, {"y"}, {{"axis", int64_t{1}}}));
  set_output(g, "y");
  const RowIndependence rows = analyze(g);
  EXPECT_TRUE(rows.independent) << rows.reason;
  EXPECT_TRUE(rows.layer.empty());
}

TEST(RowIndependence, AReshapeThatFoldsTheBatchIntoFeaturesMixesRows) {
  Graph g = base_graph();
  g.nodes.push_back(node("fold", "Reshape", {"h"}, {"y"}, {{"shape", std::vector<int64_t>{-1}}}));
  set_output(g, "y");
  const RowIndependence rows = analyze(g);
  EXPECT_FALSE(rows.independent);
  EXPECT_EQ(rows.layer, "fold");
  EXPECT_NE(rows.reason.find("axis 0 is not the batch"), std::string::npos) << rows.reason;
}

TEST(RowIndependence, AReshapeThatMovesRowsBetweenTheBatchAndFeaturesMixesRows) {
  Graph g = base_graph();  // [b, 5] -> [-1, 10]: two rows per output row
  g.nodes.push_back(
      node("pairs", "Reshape", {"h"}, {"y"}, {{"shape", std::vector<int64_t>{-1, 10}}}));
  set_output(g, "y");
  const RowIndependence rows = analyze_row_independence(g, {ShapeMap{{"x", {8, 6}}}});
  EXPECT_FALSE(rows.independent);
  EXPECT_NE(rows.reason.find("pairs"), std::string::npos) << rows.reason;
}

TEST(RowIndependence, ReductionsOverTheBatchAxisMixRows) {
  for (const std::string op : {"Softmax", "LayerNorm"}) {
    Graph g = base_graph();
    g.nodes.push_back(
        node("over_batch", op, {"h"}, {"y"}, {{"axis", int64_t{0}}, {"epsilon", 1e-5}}));
    set_output(g, "y");
    const RowIndependence rows = analyze(g);
    EXPECT_FALSE(rows.independent) << op;
    EXPECT_EQ(rows.layer, "over_batch") << op;
    EXPECT_NE(rows.reason.find("over axis 0, the batch"), std::string::npos) << rows.reason;
  }
  Graph g = base_graph();  // axis -2 of a rank-2 tensor is axis 0 too
  g.nodes.push_back(node("neg_axis", "Softmax", {"h"}, {"y"}, {{"axis", int64_t{-2}}}));
  set_output(g, "y");
  EXPECT_EQ(analyze(g).layer, "neg_axis");
}

TEST(RowIndependence, ScalingAlongTheBatchAxisMixesRows) {
  Graph g;
  g.inputs.push_back({"x", DataType::kFloat32, {Dim{-1, "batch"}, Dim{6, ""}}});
  g.constants["s"] = Constant::from_floats({6}, std::vector<float>(6, 1.0f));
  g.nodes.push_back(node("bn0", "ScaleShift", {"x", "s", "s"}, {"y"}, {{"axis", int64_t{0}}}));
  set_output(g, "y");
  // Shapes only fit at batch 6: reported as shapes that do not follow the batch, naming it.
  const RowIndependence rows = analyze_row_independence(g, {ShapeMap{{"x", {6, 6}}}});
  EXPECT_FALSE(rows.independent);
  EXPECT_NE(rows.reason.find("bn0"), std::string::npos) << rows.reason;
}

TEST(RowIndependence, TransposedDenseInputMixesRows) {
  Graph g = base_graph();
  g.nodes[0].attributes["transpose_x"] = int64_t{1};
  g.constants["w"] = Constant::from_floats({8, 5}, std::vector<float>(40, 0.1f));
  set_output(g, "h");
  // Checked at batch 5 and 7, whose transposed product cannot have 8 features: any failure
  // names the layer.
  const RowIndependence rows = analyze(g);
  EXPECT_FALSE(rows.independent);
  EXPECT_NE(rows.reason.find("fc"), std::string::npos) << rows.reason;
}

TEST(RowIndependence, AConstantWithItsOwnAxisZeroMixesRows) {
  Graph g = base_graph();  // [b, 5] + [3, 1, 5] -> [3, b, 5]: the batch moves to axis 1
  g.constants["c"] = Constant::from_floats({3, 1, 5}, std::vector<float>(15, 1.0f));
  g.nodes.push_back(node("spread", "Add", {"h", "c"}, {"y"}));
  set_output(g, "y");
  const RowIndependence rows = analyze(g);
  EXPECT_FALSE(rows.independent);
  EXPECT_EQ(rows.layer, "spread");
  EXPECT_NE(rows.reason.find("axis 0 is not 1"), std::string::npos) << rows.reason;
}

TEST(RowIndependence, UnsqueezeAtAxisZeroMovesTheBatch) {
  Graph g = base_graph();
  g.nodes.push_back(node("lead", "Unsqueeze", {"h"}, {"y"}, {{"axes", std::vector<int64_t>{0}}}));
  set_output(g, "y");
  const RowIndependence rows = analyze(g);
  EXPECT_FALSE(rows.independent);
  EXPECT_EQ(rows.layer, "lead");
}

TEST(RowIndependence, UnknownOpsAreNotProven) {
  Graph g = base_graph();
  g.nodes.push_back(node("cos", "Relu", {"h"}, {"y"}));
  g.nodes.back().op = "Abs";  // shape inference knows it, the analysis does not
  set_output(g, "y");
  const RowIndependence rows = analyze(g);
  EXPECT_FALSE(rows.independent);
  EXPECT_EQ(rows.layer, "cos");
  EXPECT_NE(rows.reason.find("not an op known to keep rows independent"), std::string::npos);
}

TEST(RowIndependence, NeedsADynamicBatchAndOutputsThatFollowIt) {
  Graph fixed = base_graph();
  fixed.inputs[0].shape[0] = Dim{8, ""};
  set_output(fixed, "h");
  RowIndependence rows = analyze(fixed);
  EXPECT_FALSE(rows.independent);
  EXPECT_NE(rows.reason.find("static axis 0 (8)"), std::string::npos) << rows.reason;

  Graph constant_out = base_graph();
  constant_out.constants["k"] = Constant::from_floats({2}, {1.0f, 2.0f});
  constant_out.outputs = {{"h", DataType::kFloat32, {}}, {"k", DataType::kFloat32, {}}};
  rows = analyze(constant_out);
  EXPECT_FALSE(rows.independent);
  EXPECT_NE(rows.reason.find("output 'k' does not depend on the inputs"), std::string::npos)
      << rows.reason;
}

TEST(RowIndependence, EverySampleIsChecked) {
  Graph g;  // x [batch, n] -> Reshape [0, 4, -1]: row-wise when n is a multiple of 4
  g.inputs.push_back({"x", DataType::kFloat32, {Dim{-1, "batch"}, Dim{-1, "n"}}});
  g.nodes.push_back(
      node("split", "Reshape", {"x"}, {"y"}, {{"shape", std::vector<int64_t>{0, 4, -1}}}));
  set_output(g, "y");
  EXPECT_TRUE(analyze_row_independence(g, {ShapeMap{{"x", {2, 8}}}}).independent);
  // n = 6 fits no sample: the second sample's failure is the answer.
  const RowIndependence rows =
      analyze_row_independence(g, {ShapeMap{{"x", {2, 8}}}, ShapeMap{{"x", {2, 6}}}});
  EXPECT_FALSE(rows.independent);
  EXPECT_NE(rows.reason.find("split"), std::string::npos) << rows.reason;
}

}  // namespace
}  // namespace mlprt::ir

namespace mlprt::ir {
namespace {

// x [batch, 6, 8] through token mixing as the passes leave it, a Slice of the features and a
// mean over tokens: rows stay apart. Transposing or reducing the batch axis mixes them.
Graph token_mixing_graph(std::vector<int64_t> perm, std::vector<int64_t> reduce_axes) {
  Graph g;
  g.name = "mixer";
  g.inputs.push_back({"x", DataType::kFloat32, {Dim{-1, "batch"}, Dim{6, ""}, Dim{8, ""}}});
  g.constants["w"] = Constant::from_floats({6, 6}, std::vector<float>(36, 0.1f));
  g.nodes.push_back(node("tok", "MatMul", {"x", "w"}, {"t"},
                         {{"transpose_a", int64_t{1}}, {"transpose_y", int64_t{1}}}));
  g.nodes.push_back(node("cut", "Slice", {"t"}, {"s"},
                         {{"starts", std::vector<int64_t>{0}}, {"ends", std::vector<int64_t>{4}},
                          {"axes", std::vector<int64_t>{-1}}}));
  g.nodes.push_back(node("perm", "Transpose", {"s"}, {"p"}, {{"perm", perm}}));
  g.nodes.push_back(node("mean", "ReduceMean", {"p"}, {"y"},
                         {{"axes", reduce_axes}, {"keepdims", int64_t{0}}}));
  g.outputs = {{"y", DataType::kFloat32, {Dim{-1, "batch"}}}};
  return g;
}

RowIndependence analyze_mixer(const Graph& g) {
  return analyze_row_independence(g, {ShapeMap{{"x", {8, 6, 8}}}});
}

TEST(RowIndependence, TokenMixingSliceTransposeAndMeanKeepRowsApart) {
  const RowIndependence rows = analyze_mixer(token_mixing_graph({0, 2, 1}, {2}));
  EXPECT_TRUE(rows.independent) << rows.layer << ": " << rows.reason;
}

TEST(RowIndependence, TransposingTheBatchAwayMixesRows) {
  const RowIndependence rows = analyze_mixer(token_mixing_graph({1, 0, 2}, {2}));
  EXPECT_FALSE(rows.independent);
  EXPECT_EQ(rows.layer, "perm");
}

TEST(RowIndependence, AveragingOverTheBatchMixesRows) {
  const RowIndependence rows = analyze_mixer(token_mixing_graph({0, 2, 1}, {0}));
  EXPECT_FALSE(rows.independent);
  EXPECT_EQ(rows.layer, "mean");
}

TEST(RowIndependence, AMatMulWhoseConstantVariesAlongTheBatchMixesRows) {
  Graph g = token_mixing_graph({0, 2, 1}, {2});
  g.constants["w"] = Constant::from_floats({8, 6, 6}, std::vector<float>(288, 0.1f));
  const RowIndependence rows = analyze_mixer(g);
  EXPECT_FALSE(rows.independent);  // at other batch sizes the shapes do not even broadcast
}

}  // namespace
}  // namespace mlprt::ir
