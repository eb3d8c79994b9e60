// Import -> optimize: the structure after the passes, and the float64 evaluator giving the same
// outputs before and after them.
#include <gtest/gtest.h>

#include <cmath>

#include "ir/evaluator.h"
#include "ir/passes/passes.h"
#include "model_builder.h"
#include "onnx/onnx_importer.h"

namespace mlprt {
namespace {

using test::ModelBuilder;

ir::Graph import_ok(const ModelBuilder& b) {
  const auto bytes = b.bytes();
  auto r = onnx_import::import_onnx_bytes(bytes, "t.onnx");
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? std::move(r).value() : ir::Graph{};
}

double rel_l2(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

ir::RefTensor random_tensor(Dims dims, uint32_t seed) {
  const auto v = test::random_values(test::count_of(dims), seed);
  return {std::move(dims), std::vector<double>(v.begin(), v.end())};
}

// Evaluates `graph` before and after optimize() on the same inputs; returns the optimized graph.
ir::Graph optimize_and_compare(const ir::Graph& graph,
                               const std::map<std::string, ir::RefTensor>& inputs) {
  auto before = ir::evaluate_graph(graph, inputs);
  EXPECT_TRUE(before.is_ok()) << before.status().message();
  ir::Graph optimized = graph;
  Status s = ir::optimize(optimized);
  EXPECT_TRUE(s.is_ok()) << s.message();
  auto after = ir::evaluate_graph(optimized, inputs);
  EXPECT_TRUE(after.is_ok()) << after.status().message();
  if (!before.is_ok() || !after.is_ok()) return optimized;
  for (const ir::TensorInfo& out : graph.outputs) {
    if (!after->count(out.name)) {
      ADD_FAILURE() << "output " << out.name << " missing after optimize";
      continue;
    }
    const ir::RefTensor& a = after->at(out.name);
    const ir::RefTensor& b = before->at(out.name);
    EXPECT_EQ(a.dims, b.dims) << out.name;
    EXPECT_LE(rel_l2(a.values, b.values), 1e-6) << out.name;  // weights are rounded to float32
  }
  return optimized;
}

TEST(Optimize, GemmReluBecomesOneDense) {
  ModelBuilder b;
  b.input("x", {-1, 4});
  b.random_initializer("W", {3, 4}, 1);
  b.random_initializer("B", {3}, 2);
  ModelBuilder::attr_int(b.node("Gemm", {"x", "W", "B"}, {"h"}, "fc1"), "transB", 1);
  b.node("Relu", {"h"}, {"y"}, "act");
  b.output("y", {-1, 3});
  const ir::Graph g = optimize_and_compare(import_ok(b), {{"x", random_tensor({5, 4}, 9)}});
  ASSERT_EQ(g.nodes.size(), 1u);
  const ir::Node& d = g.nodes[0];
  EXPECT_EQ(d.op, "Dense");
  EXPECT_EQ(d.name, "fc1");
  EXPECT_EQ(d.get_string("activation", ""), "relu");
  EXPECT_EQ(d.outputs, std::vector<std::string>{"y"});
  ASSERT_EQ(d.inputs.size(), 3u);
  EXPECT_EQ(g.find_constant(d.inputs[1])->dims, (Dims{4, 3}));
  EXPECT_EQ(g.find_constant(d.inputs[2])->dims, (Dims{3}));
  EXPECT_FALSE(g.is_constant("W"));  // the unused original is dropped
}

TEST(Optimize, MatMulAddReluBecomesOneDense) {
  ModelBuilder b;
  b.input("x", {-1, 6});
  b.random_initializer("W", {6, 5}, 3);
  b.random_initializer("bias", {5}, 4);
  b.node("MatMul", {"x", "W"}, {"m"}, "layer0");
  b.node("Add", {"m", "bias"}, {"a"}, "add0");
  b.node("Relu", {"a"}, {"y"}, "relu0");
  b.output("y", {-1, 5});
  const ir::Graph g = optimize_and_compare(import_ok(b), {{"x", random_tensor({3, 6}, 5)}});
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, "Dense");
  EXPECT_EQ(g.nodes[0].name, "layer0");
  EXPECT_EQ(g.nodes[0].get_string("activation", ""), "relu");
  EXPECT_EQ(g.nodes[0].inputs.size(), 3u);
  EXPECT_EQ(g.nodes[0].outputs, std::vector<std::string>{"y"});
}

TEST(Optimize, TwoLayerMlpWithIdentityDropoutFlatten) {
  ModelBuilder b(13);
  b.input("img", {-1, 1, 4, 4});
  b.node("Flatten", {"img"}, {"flat"}, "flatten");
  b.random_initializer("w1", {8, 16}, 11);
  b.random_initializer("b1", {8}, 12);
  ModelBuilder::attr_int(b.node("Gemm", {"flat", "w1", "b1"}, {"h1"}, "fc1"), "transB", 1);
  b.node("Relu", {"h1"}, {"r1"}, "relu1");
  b.node("Dropout", {"r1"}, {"d1"}, "drop");
  b.node("Identity", {"d1"}, {"i1"}, "ident");
  b.random_initializer("w2", {3, 8}, 13);
  b.random_initializer("b2", {3}, 14);
  ModelBuilder::attr_int(b.node("Gemm", {"i1", "w2", "b2"}, {"logits"}, "fc2"), "transB", 1);
  b.node("Identity", {"logits"}, {"output"}, "out_copy");
  b.output("output", {-1, 3});
  const ir::Graph g = optimize_and_compare(import_ok(b), {{"img", random_tensor({2, 1, 4, 4}, 15)}});
  ASSERT_EQ(g.nodes.size(), 3u);
  EXPECT_EQ(g.nodes[0].op, "Flatten");
  EXPECT_EQ(g.nodes[1].op, "Dense");
  EXPECT_EQ(g.nodes[1].get_string("activation", ""), "relu");
  EXPECT_EQ(g.nodes[2].op, "Dense");
  EXPECT_EQ(g.nodes[2].name, "fc2");
  EXPECT_EQ(g.nodes[2].get_string("activation", ""), "none");
  // The graph output keeps its name, now produced by the Dense.
  EXPECT_EQ(g.nodes[2].outputs, std::vector<std::string>{"output"});
  EXPECT_EQ(g.outputs[0].name, "output");
}

TEST(Optimize, ReluNotFusedWhenIntermediateIsRead) {
  ModelBuilder b;
  b.input("x", {2, 4});
  b.random_initializer("W", {4, 3}, 1);
  b.node("MatMul", {"x", "W"}, {"h"}, "mm");
  b.node("Relu", {"h"}, {"y"}, "act");
  b.output("y", {2, 3});
  b.output("h", {2, 3});
  const ir::Graph g = optimize_and_compare(import_ok(b), {{"x", random_tensor({2, 4}, 2)}});
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].op, "Dense");
  EXPECT_EQ(g.nodes[0].get_string("activation", ""), "none");
  EXPECT_EQ(g.nodes[1].op, "Relu");
}

TEST(Optimize, ReshapeShapeBecomesAttributeAndConstantsFold) {
  ModelBuilder b(14);
  b.input("x", {-1, 12});
  b.int64_initializer("shape", {3}, {0, 3, 4});
  b.node("Reshape", {"x", "shape"}, {"r"}, "reshape");
  // A weight computed from constants: folded, then used as a Dense weight.
  b.random_initializer("wa", {4, 2}, 21);
  b.random_initializer("wb", {4, 2}, 22);
  b.node("Add", {"wa", "wb"}, {"w"}, "wsum");
  b.node("MatMul", {"r", "w"}, {"y"}, "mm");
  b.output("y", {-1, 3, 2});
  const ir::Graph g = optimize_and_compare(import_ok(b), {{"x", random_tensor({2, 12}, 23)}});
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].op, "Reshape");
  EXPECT_EQ(g.nodes[0].inputs.size(), 1u);
  EXPECT_EQ(g.nodes[0].get_ints("shape"), (std::vector<int64_t>{0, 3, 4}));
  EXPECT_EQ(g.nodes[1].op, "Dense");
}

// A MatMul whose second operand is an activation stays a MatMul layer op (both operands read
// at run time); a Gemm with a runtime B is still refused, naming the node and the tensor.
TEST(Optimize, MatMulWithVariableWeightIsAMatMulLayer) {
  ModelBuilder b;
  b.input("x", {2, 4});
  b.input("w", {4, 3});
  b.node("MatMul", {"x", "w"}, {"y"}, "dyn_mm");
  b.output("y", {2, 3});
  ir::Graph g = import_ok(b);
  ASSERT_TRUE(ir::optimize(g).is_ok());
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, "MatMul");
  EXPECT_EQ(g.nodes[0].inputs, (std::vector<std::string>{"x", "w"}));
}

TEST(Optimize, GemmWithVariableWeightIsRefused) {
  ModelBuilder b;
  b.input("x", {2, 4});
  b.input("w", {4, 3});
  b.node("Gemm", {"x", "w"}, {"y"}, "dyn_gemm");
  b.output("y", {2, 3});
  ir::Graph g = import_ok(b);
  Status s = ir::optimize(g);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("'dyn_gemm'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("'w'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("constant"), std::string::npos) << s.message();
}

// Gemm variants against a hand-written float64 reference.
struct GemmCase {
  const char* label;
  int64_t trans_a, trans_b;
  float alpha, beta;
  Dims c_dims;  // empty with has_c == false: no C
  bool has_c;
  size_t expected_nodes;
};

// Keeps test names readable in ctest (gtest would otherwise print the struct's bytes).
void PrintTo(const GemmCase& c, std::ostream* os) { *os << c.label; }

class GemmVariants : public ::testing::TestWithParam<GemmCase> {};

TEST_P(GemmVariants, MatchesHandWrittenReference) {
  const GemmCase& p = GetParam();
  const int64_t m = 3, k = 5, n = 4;
  ModelBuilder b(11);
  const Dims a_dims = p.trans_a ? Dims{k, m} : Dims{m, k};
  const Dims b_dims = p.trans_b ? Dims{n, k} : Dims{k, n};
  b.input("a", a_dims);
  const auto bv = b.random_initializer("B", b_dims, 31);
  std::vector<float> cv;
  std::vector<std::string> inputs = {"a", "B"};
  if (p.has_c) {
    cv = b.random_initializer("C", p.c_dims, 32);
    inputs.push_back("C");
  }
  auto& gemm = b.node("Gemm", inputs, {"y"}, "gemm");
  ModelBuilder::attr_int(gemm, "transA", p.trans_a);
  ModelBuilder::attr_int(gemm, "transB", p.trans_b);
  ModelBuilder::attr_float(gemm, "alpha", p.alpha);
  ModelBuilder::attr_float(gemm, "beta", p.beta);
  b.output("y", {m, n});
  const ir::RefTensor a = random_tensor(a_dims, 33);

  // y[i][j] = alpha * sum_p A'[i][p] B'[p][j] + beta * C[broadcast i][broadcast j]
  std::vector<double> expected(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t q = 0; q < k; ++q) {
        const double av = p.trans_a ? a.values[static_cast<size_t>(q * m + i)] : a.values[static_cast<size_t>(i * k + q)];
        const double bb = p.trans_b ? bv[static_cast<size_t>(j * k + q)] : bv[static_cast<size_t>(q * n + j)];
        s += av * bb;
      }
      double c = 0;
      if (p.has_c) {
        const size_t rank = p.c_dims.size();
        const int64_t rows = rank == 2 ? p.c_dims[0] : 1;
        const int64_t cols = rank >= 1 ? p.c_dims[rank - 1] : 1;
        c = cv[static_cast<size_t>((rows == 1 ? 0 : i) * cols + (cols == 1 ? 0 : j))];
      }
      expected[static_cast<size_t>(i * n + j)] = p.alpha * s + p.beta * c;
    }
  }
  const ir::Graph graph = import_ok(b);
  auto ref = ir::evaluate_graph(graph, {{"a", a}});
  ASSERT_TRUE(ref.is_ok()) << ref.status().message();
  EXPECT_EQ(ref->at("y").dims, (Dims{m, n}));
  EXPECT_LE(rel_l2(ref->at("y").values, expected), 1e-12);

  const ir::Graph g = optimize_and_compare(graph, {{"a", a}});
  ASSERT_EQ(g.nodes.size(), p.expected_nodes);
  EXPECT_EQ(g.nodes[0].op, "Dense");
  EXPECT_EQ(g.nodes[0].get_int("transpose_x", -1), p.trans_a);
  if (p.expected_nodes == 2) {
    EXPECT_EQ(g.nodes[1].op, "Add");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Gemm, GemmVariants,
    ::testing::Values(GemmCase{"plain", 0, 0, 1.0f, 1.0f, {}, false, 1},
                      GemmCase{"transA", 1, 0, 1.0f, 1.0f, {4}, true, 1},
                      GemmCase{"transB", 0, 1, 1.0f, 1.0f, {4}, true, 1},
                      GemmCase{"all_attrs", 1, 1, 0.25f, 0.35f, {1, 4}, true, 1},
                      GemmCase{"alpha", 0, 0, 0.5f, 1.0f, {4}, true, 1},
                      GemmCase{"beta", 0, 0, 1.0f, 2.0f, {4}, true, 1},
                      GemmCase{"scalar_c", 0, 1, 1.0f, 0.5f, {}, true, 1},
                      GemmCase{"single_elem_c", 0, 0, 1.0f, 1.0f, {1}, true, 1},
                      GemmCase{"matrix_c", 0, 1, 1.5f, 0.75f, {3, 4}, true, 2},
                      GemmCase{"column_c", 1, 0, 1.0f, 1.0f, {3, 1}, true, 2},
                      GemmCase{"beta_zero", 0, 0, 1.0f, 0.0f, {3, 4}, true, 1}),
    [](const ::testing::TestParamInfo<GemmCase>& param) { return std::string(param.param.label); });

}  // namespace
}  // namespace mlprt
