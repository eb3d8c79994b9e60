// The plan's refit record: the skeleton round-trips through JSON exactly, torch names are found
// for renamed weights, and malformed records are refused.
#include <gtest/gtest.h>

#include <cmath>

#include "refit/refit_record.h"

namespace mlprt::refit {
namespace {

// A torch 1.x MatMul export: /fc1/MatMul reads onnx::MatMul_7 ([in, out]); Add reads fc1.bias.
ir::Graph matmul_export() {
  ir::Graph g;
  g.opset = 13;
  g.inputs = {{"input", DataType::kFloat32, {{-1, "batch"}, {3, ""}}}};
  g.outputs = {{"output", DataType::kFloat32, {{-1, "batch"}, {2, ""}}}};
  g.constants["onnx::MatMul_7"] = ir::Constant::from_floats({3, 2}, {1, 2, 3, 4, 5, 6});
  g.constants["fc1.bias"] = ir::Constant::from_floats({2}, {0.5f, 1.5f});
  g.constants["shape"] = ir::Constant::from_int64s({2}, {-1, 2});
  g.constants["scale"] = ir::Constant::from_floats({}, {2.0f});
  g.nodes.push_back({"/fc1/MatMul", "MatMul", {"input", "onnx::MatMul_7"}, {"mm"}, {}});
  g.nodes.push_back({"/fc1/Add", "Add", {"mm", "fc1.bias"}, {"y"}, {}});
  ir::Node mul{"/Mul", "Mul", {"y", "scale"}, {"z"}, {}};
  mul.attributes["f"] = std::nan("");
  mul.attributes["t"] = ir::Constant::from_int64s({1}, {3});
  g.nodes.push_back(mul);
  g.nodes.push_back({"/Reshape", "Reshape", {"z", "shape"}, {"output"}, {}});
  return g;
}

TEST(RefitRecord, WeightsLoseTheirDataOtherConstantsKeepIt) {
  const RefitRecord r = make_refit_record(matmul_export());
  EXPECT_EQ(r.weights, (std::set<std::string>{"fc1.bias", "onnx::MatMul_7"}));
  EXPECT_TRUE(r.skeleton.constants.at("onnx::MatMul_7").data.empty());
  EXPECT_EQ(r.skeleton.constants.at("shape").to_int64s(), (std::vector<int64_t>{-1, 2}));
  EXPECT_EQ(r.skeleton.constants.at("scale").to_doubles(), (std::vector<double>{2.0}));
}

TEST(RefitRecord, FindsTheTorchNameOfATransposedMatMulWeight) {
  const RefitRecord r = make_refit_record(matmul_export());
  ASSERT_EQ(r.aliases.size(), 1u);
  EXPECT_EQ(r.aliases.at("fc1.weight"), (Alias{"onnx::MatMul_7", true}));
}

TEST(RefitRecord, DynamoExportsAreNamedThroughTheBias) {
  ir::Graph g = matmul_export();
  g.nodes[0].name = "node_MatMul_1";  // dynamo: no scope in node names
  g.nodes[1].name = "node_linear";
  const RefitRecord r = make_refit_record(g);
  EXPECT_EQ(r.aliases.at("fc1.weight"), (Alias{"onnx::MatMul_7", true}));
}

TEST(RefitRecord, RoundTripsThroughJson) {
  const RefitRecord r = make_refit_record(matmul_export());
  const std::string json = encode_refit_record(r);
  auto back = decode_refit_record(json, "p.plan");
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_TRUE(compare_skeletons(r, *back).empty());
  EXPECT_EQ(back->aliases, r.aliases);
  EXPECT_EQ(back->weights, r.weights);
  EXPECT_TRUE(std::isnan(std::get<double>(back->skeleton.nodes[2].attributes.at("f"))));
  EXPECT_EQ(encode_refit_record(*back), json);  // deterministic
}

TEST(RefitRecord, CompareListsEveryDifference) {
  const RefitRecord r = make_refit_record(matmul_export());
  ir::Graph other = matmul_export();
  other.constants["onnx::MatMul_7"] = ir::Constant::from_floats({3, 3}, std::vector<float>(9));
  other.constants["scale"] = ir::Constant::from_floats({}, {3.0f});
  other.constants["extra"] = ir::Constant::from_floats({2}, {1, 2});
  other.nodes[1].op = "Sub";
  const auto lines = compare_skeletons(r, make_refit_record(other));
  ASSERT_EQ(lines.size(), 4u);
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  EXPECT_NE(all.find("'onnx::MatMul_7' is float32 [3x3]"), std::string::npos) << all;
  EXPECT_NE(all.find("constant 'scale'"), std::string::npos) << all;
  EXPECT_NE(all.find("unknown weight 'extra'"), std::string::npos) << all;
  EXPECT_NE(all.find("node 1"), std::string::npos) << all;
}

TEST(RefitRecord, RefusesMalformedRecords) {
  const std::string good = encode_refit_record(make_refit_record(matmul_export()));
  for (const std::string& bad : {std::string("{}"), std::string(R"({"version":2})"), std::string("[1]"),
                                 std::string("not json")}) {
    auto r = decode_refit_record(bad, "p.plan");
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_NE(r.status().message().find("plan 'p.plan'"), std::string::npos);
  }
  std::string broken = good;
  broken.replace(broken.find("\"hex\":\"") + 7, 2, "zz");
  EXPECT_FALSE(decode_refit_record(broken, "p.plan").is_ok());
  // Every truncation of the text is refused cleanly.
  for (size_t n = 0; n < good.size(); n += 7) {
    EXPECT_FALSE(decode_refit_record(good.substr(0, n), "p.plan").is_ok());
  }
}

}  // namespace
}  // namespace mlprt::refit
