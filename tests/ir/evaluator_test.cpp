#include "ir/evaluator.h"

#include <gtest/gtest.h>

namespace mlprt::ir {
namespace {

Node make_node(const std::string& op, std::vector<std::string> inputs,
               std::map<std::string, AttributeValue> attrs = {}) {
  Node n;
  n.name = op + "_node";
  n.op = op;
  n.inputs = std::move(inputs);
  n.outputs = {"y"};
  n.attributes = std::move(attrs);
  return n;
}

RefTensor iota(Dims dims, double start = 1.0) {
  size_t n = 1;
  for (int64_t d : dims) n *= static_cast<size_t>(d);
  RefTensor t{std::move(dims), std::vector<double>(n)};
  for (size_t i = 0; i < n; ++i) t.values[i] = start + 0.5 * static_cast<double>(i);
  return t;
}

RefTensor eval1(const Node& node, const std::vector<RefTensor>& inputs) {
  Graph g;
  auto r = evaluate_node(g, node, inputs);
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? r->at(0) : RefTensor{};
}

// y[b][i][j] = sum_p a[b][i][p] * w[p][j] written out directly.
TEST(Evaluator, MatMulBatchedTimesMatrix) {
  const RefTensor a = iota({2, 3, 4});
  const RefTensor w = iota({4, 5}, -3.0);
  const RefTensor y = eval1(make_node("MatMul", {"a", "w"}), {a, w});
  ASSERT_EQ(y.dims, (Dims{2, 3, 5}));
  for (size_t b = 0; b < 2; ++b) {
    for (size_t i = 0; i < 3; ++i) {
      for (size_t j = 0; j < 5; ++j) {
        double s = 0;
        for (size_t p = 0; p < 4; ++p) s += a.values[b * 12 + i * 4 + p] * w.values[p * 5 + j];
        EXPECT_DOUBLE_EQ(y.values[b * 15 + i * 5 + j], s);
      }
    }
  }
}

TEST(Evaluator, MatMulVectorCases) {
  const RefTensor v = iota({3});
  const RefTensor m = iota({3, 2}, 2.0);
  const RefTensor vm = eval1(make_node("MatMul", {"v", "m"}), {v, m});
  ASSERT_EQ(vm.dims, (Dims{2}));
  EXPECT_DOUBLE_EQ(vm.values[1], v.values[0] * m.values[1] + v.values[1] * m.values[3] +
                                     v.values[2] * m.values[5]);
  const RefTensor mt = iota({2, 3});
  const RefTensor mv = eval1(make_node("MatMul", {"m", "v"}), {mt, v});
  ASSERT_EQ(mv.dims, (Dims{2}));
  EXPECT_DOUBLE_EQ(mv.values[1], mt.values[3] * v.values[0] + mt.values[4] * v.values[1] +
                                     mt.values[5] * v.values[2]);
  const RefTensor dot = eval1(make_node("MatMul", {"v", "v"}), {v, v});
  EXPECT_EQ(dot.dims, Dims{});
  EXPECT_DOUBLE_EQ(dot.values[0], 1.0 + 1.5 * 1.5 + 2.0 * 2.0);
}

TEST(Evaluator, MatMulBroadcastsBatchDims) {
  const RefTensor a = iota({2, 1, 2, 3});
  const RefTensor b = iota({3, 3, 2}, -1.0);
  const RefTensor y = eval1(make_node("MatMul", {"a", "b"}), {a, b});
  ASSERT_EQ(y.dims, (Dims{2, 3, 2, 2}));
  // y[1][2][0][1] = sum_p a[1][0][0][p] * b[2][p][1]
  double s = 0;
  for (size_t p = 0; p < 3; ++p) s += a.values[6 + p] * b.values[12 + p * 2 + 1];
  EXPECT_DOUBLE_EQ(y.values[((1 * 3 + 2) * 2 + 0) * 2 + 1], s);
}

TEST(Evaluator, AddBroadcasting) {
  const RefTensor y = eval1(make_node("Add", {"a", "b"}), {iota({2, 1}), iota({1, 3}, 10.0)});
  ASSERT_EQ(y.dims, (Dims{2, 3}));
  EXPECT_EQ(y.values, (std::vector<double>{11, 11.5, 12, 11.5, 12, 12.5}));
  Graph g;
  auto bad = evaluate_node(g, make_node("Add", {"a", "b"}), {iota({2, 3}), iota({2})});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("2x3 and 2"), std::string::npos)
      << bad.status().message();
}

TEST(Evaluator, ReshapeRules) {
  const RefTensor x = iota({2, 3, 4});
  const RefTensor y =
      eval1(make_node("Reshape", {"x"}, {{"shape", std::vector<int64_t>{0, -1}}}), {x});
  EXPECT_EQ(y.dims, (Dims{2, 12}));
  EXPECT_EQ(y.values, x.values);
  const RefTensor from_input = eval1(make_node("Reshape", {"x", "s"}), {x, RefTensor{{2}, {4, -1}}});
  EXPECT_EQ(from_input.dims, (Dims{4, 6}));
  const RefTensor empty_in{{0, 3}, {}};
  const RefTensor zero = eval1(
      make_node("Reshape", {"x"}, {{"shape", std::vector<int64_t>{3, 0}}, {"allowzero", int64_t{1}}}),
      {empty_in});
  EXPECT_EQ(zero.dims, (Dims{3, 0}));
}

TEST(Evaluator, FlattenAxes) {
  const RefTensor x = iota({2, 3, 4});
  EXPECT_EQ(eval1(make_node("Flatten", {"x"}, {{"axis", int64_t{0}}}), {x}).dims, (Dims{1, 24}));
  EXPECT_EQ(eval1(make_node("Flatten", {"x"}), {x}).dims, (Dims{2, 12}));
  EXPECT_EQ(eval1(make_node("Flatten", {"x"}, {{"axis", int64_t{-1}}}), {x}).dims, (Dims{6, 4}));
  EXPECT_EQ(eval1(make_node("Flatten", {"x"}, {{"axis", int64_t{3}}}), {x}).dims, (Dims{24, 1}));
}

TEST(Evaluator, DenseTransposeBiasRelu) {
  const RefTensor x = iota({3, 2}, -2.0);  // [K=3, M=2], transposed
  const RefTensor w = iota({3, 2}, -1.0);  // [K=3, N=2]
  const RefTensor b{{2}, {0.25, -10.0}};
  const RefTensor y = eval1(make_node("Dense", {"x", "w", "b"},
                                      {{"transpose_x", int64_t{1}},
                                       {"activation", std::string("relu")}}),
                            {x, w, b});
  ASSERT_EQ(y.dims, (Dims{2, 2}));
  for (size_t m = 0; m < 2; ++m) {
    for (size_t n = 0; n < 2; ++n) {
      double s = b.values[n];
      for (size_t k = 0; k < 3; ++k) s += x.values[k * 2 + m] * w.values[k * 2 + n];
      EXPECT_DOUBLE_EQ(y.values[m * 2 + n], std::max(s, 0.0));
    }
  }
}

TEST(Evaluator, GraphChecksInputShapes) {
  Graph g;
  g.inputs.push_back({"x", DataType::kFloat32, {Dim{-1, "batch"}, Dim{4, ""}}});
  g.outputs.push_back({"y", DataType::kFloat32, {}});
  g.nodes.push_back(make_node("Relu", {"x"}));
  auto ok = evaluate_graph(g, {{"x", RefTensor{{1, 4}, {-1, 2, -3, 4}}}});
  ASSERT_TRUE(ok.is_ok()) << ok.status().message();
  EXPECT_EQ(ok->at("y").values, (std::vector<double>{0, 2, 0, 4}));
  auto bad = evaluate_graph(g, {{"x", iota({1, 5})}});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("'x'"), std::string::npos);
  EXPECT_NE(bad.status().message().find("1x5"), std::string::npos) << bad.status().message();
}

TEST(Evaluator, ConstantRoundTripKeepsDtype) {
  const Constant c = to_constant(RefTensor{{2}, {3, -4}}, DataType::kInt64);
  EXPECT_EQ(c.dtype, DataType::kInt64);
  EXPECT_EQ(c.to_int64s(), (std::vector<int64_t>{3, -4}));
  const Constant f = to_constant(RefTensor{{1}, {0.5}}, DataType::kFloat32);
  EXPECT_EQ(f.dtype, DataType::kFloat32);
  EXPECT_EQ(to_ref_tensor(f).values, (std::vector<double>{0.5}));
}

}  // namespace
}  // namespace mlprt::ir
