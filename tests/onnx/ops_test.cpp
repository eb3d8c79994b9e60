// Every supported op and opset variant: import -> float64 evaluator on the imported graph (the
// reference) -> optimize -> cpu backend, compared at rel L2 <= 1e-5. Also the evaluator against
// hand-computed values where opsets differ, and the fused-op counts of the patterns.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "backends/registry.h"
#include "ir/evaluator.h"
#include "ir/passes/passes.h"
#include "model_builder.h"
#include "model_check.h"
#include "onnx/onnx_importer.h"

namespace mlprt {
namespace {

using test::check_model;
using test::count_ops;
using test::ModelBuilder;
using test::ModelRun;
using test::random_tensor;

// x [batch, 8] -> Gemm(8 -> 6) -> op -> y
ModelBuilder gemm_then(const std::string& op, int64_t opset,
                       const std::function<void(onnx::NodeProto&)>& attrs = {}) {
  ModelBuilder b(opset);
  b.input("x", {-1, 8});
  b.random_initializer("w", {6, 8}, 1);
  b.random_initializer("b", {6}, 2);
  auto& gemm = b.node("Gemm", {"x", "w", "b"}, {"h"}, "fc");
  ModelBuilder::attr_int(gemm, "transB", 1);
  auto& n = b.node(op, {"h"}, {"y"}, "act");
  if (attrs) attrs(n);
  b.output("y", {-1, 6});
  return b;
}

TEST(OnnxOps, ActivationsAfterGemm) {
  const std::vector<std::pair<std::string, std::function<void(onnx::NodeProto&)>>> cases = {
      {"Relu", {}},
      {"LeakyRelu", [](onnx::NodeProto& n) { ModelBuilder::attr_float(n, "alpha", 0.2f); }},
      {"LeakyRelu", {}},
      {"Sigmoid", {}},
      {"Tanh", {}},
      {"Elu", [](onnx::NodeProto& n) { ModelBuilder::attr_float(n, "alpha", 0.7f); }},
      {"Selu", {}},
      {"HardSigmoid", {}},
      {"HardSwish", {}},
      {"Softplus", {}},
  };
  for (const auto& [op, attrs] : cases) {
    SCOPED_TRACE(op);
    ModelRun r = check_model(gemm_then(op, 14, attrs), {{"x", random_tensor({5, 8}, 3)}});
    const bool fused = op != "Selu" && op != "HardSigmoid" && op != "Softplus";
    EXPECT_EQ(r.optimized.nodes.size(), fused ? 1u : 2u);
    EXPECT_EQ(count_ops(r.optimized, "Dense"), 1u);
  }
}

TEST(OnnxOps, GeluOpset20BothApproximations) {
  for (const std::string approximate : {"none", "tanh"}) {
    SCOPED_TRACE(approximate);
    ModelBuilder b = gemm_then("Gelu", 20, [&](onnx::NodeProto& n) {
      auto* a = n.add_attribute();
      a->set_name("approximate");
      a->set_type(onnx::AttributeProto::STRING);
      a->set_s(approximate);
    });
    ModelRun r = check_model(b, {{"x", random_tensor({4, 8}, 4)}});
    ASSERT_EQ(r.optimized.nodes.size(), 1u);
    EXPECT_EQ(r.optimized.nodes[0].get_string("activation", ""),
              approximate == "none" ? "gelu_erf" : "gelu_tanh");
  }
}

TEST(OnnxOps, StandaloneActivationsOnInput) {
  // No Dense to fuse into: the Activation layer's own loop runs.
  for (const std::string op : {"Sigmoid", "Tanh", "Elu", "HardSwish", "Softplus", "Selu"}) {
    SCOPED_TRACE(op);
    ModelBuilder b(13);
    b.input("x", {-1, 7});
    b.node(op, {"x"}, {"y"});
    b.output("y", {-1, 7});
    ModelRun r = check_model(b, {{"x", random_tensor({3, 7}, 5, 4.0)}});
    EXPECT_EQ(count_ops(r.optimized, "Activation"), 1u);
  }
}

// One of the exporters' exact GELU decompositions, selected by `variant`:
// 0: (x * 0.5) * (1 + erf(x / sqrt2))    1: (x * (1 + erf(x / sqrt2))) * 0.5
// 2: (0.5 * (1 + erf(x * 0.7071))) * x
ModelBuilder gelu_erf_model(int variant) {
  ModelBuilder b(13);
  b.input("x", {-1, 8});
  b.random_initializer("w", {8, 6}, 1);
  b.node("MatMul", {"x", "w"}, {"h"});
  b.initializer("sqrt2", {}, {1.4142135f});
  b.initializer("rsqrt2", {}, {0.70710677f});
  b.initializer("one", {}, {1.0f});
  b.initializer("half", {}, {0.5f});
  if (variant == 2)
    b.node("Mul", {"h", "rsqrt2"}, {"u"});
  else
    b.node("Div", {"h", "sqrt2"}, {"u"});
  b.node("Erf", {"u"}, {"e"});
  b.node("Add", {"e", "one"}, {"p"});
  if (variant == 0) {
    b.node("Mul", {"h", "half"}, {"hh"});
    b.node("Mul", {"hh", "p"}, {"y"});
  } else if (variant == 1) {
    b.node("Mul", {"h", "p"}, {"hp"});
    b.node("Mul", {"hp", "half"}, {"y"});
  } else {
    b.node("Mul", {"half", "p"}, {"hp"});
    b.node("Mul", {"hp", "h"}, {"y"});
  }
  b.output("y", {-1, 6});
  return b;
}

TEST(OnnxOps, GeluErfPatternsFuseIntoDense) {
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE(variant);
    ModelRun r = check_model(gelu_erf_model(variant), {{"x", random_tensor({6, 8}, 6)}});
    ASSERT_EQ(r.optimized.nodes.size(), 1u);
    EXPECT_EQ(r.optimized.nodes[0].op, "Dense");
    EXPECT_EQ(r.optimized.nodes[0].get_string("activation", ""), "gelu_erf");
  }
}

TEST(OnnxOps, GeluTanhPatternWithPowAndWithProducts) {
  for (bool use_pow : {true, false}) {
    SCOPED_TRACE(use_pow);
    ModelBuilder b(13);
    b.input("x", {-1, 5});
    b.initializer("three", {}, {3.0f});
    b.initializer("kappa", {}, {0.044715f});
    b.initializer("beta", {}, {0.7978846f});
    b.initializer("one", {}, {1.0f});
    b.initializer("half", {}, {0.5f});
    if (use_pow) {
      b.node("Pow", {"x", "three"}, {"cube"});
    } else {
      b.node("Mul", {"x", "x"}, {"sq"});
      b.node("Mul", {"x", "sq"}, {"cube"});
    }
    b.node("Mul", {"kappa", "cube"}, {"kc"});
    b.node("Add", {"x", "kc"}, {"s"});
    b.node("Mul", {"beta", "s"}, {"inner"});
    b.node("Tanh", {"inner"}, {"t"});
    b.node("Add", {"one", "t"}, {"p"});
    b.node("Mul", {"x", "p"}, {"xp"});
    b.node("Mul", {"half", "xp"}, {"y"});
    b.output("y", {-1, 5});
    ModelRun r = check_model(b, {{"x", random_tensor({4, 5}, 7, 3.0)}});
    ASSERT_EQ(r.optimized.nodes.size(), 1u);
    EXPECT_EQ(r.optimized.nodes[0].op, "Activation");
    EXPECT_EQ(r.optimized.nodes[0].get_string("kind", ""), "gelu_tanh");
  }
}

TEST(OnnxOps, GeluPatternWithExtraReaderIsNotFused) {
  ModelBuilder b = gelu_erf_model(1);
  b.output("e", {-1, 6});  // the erf result is a graph output too
  // Not fused: Erf and the products run as their own layers, with the same results.
  ModelRun r = check_model(b, {{"x", random_tensor({6, 8}, 6)}});
  EXPECT_EQ(r.optimized.nodes.size(), 6u);
  for (const ir::Node& n : r.optimized.nodes) {
    EXPECT_NE(n.get_string("activation", ""), "gelu_erf");
    EXPECT_NE(n.get_string("kind", ""), "gelu_erf");
  }
}

TEST(OnnxOps, BinaryOpsBroadcastEitherSideConstant) {
  for (const std::string op : {"Add", "Sub", "Mul", "Div"}) {
    SCOPED_TRACE(op);
    ModelBuilder b(13);
    b.input("x", {-1, 3, 4});
    b.input("z", {-1, 1, 4});
    std::vector<float> c = test::random_values(4, 9);
    for (float& v : c) v = v + 2.0f;  // no division by ~0
    b.initializer("c", {4}, c);
    b.initializer("k", {3, 1}, {1.5f, -2.0f, 3.0f});
    b.node(op, {"c", "x"}, {"a"});      // constant on the left
    b.node(op, {"a", "k"}, {"bk"});     // constant on the right, broadcast on the last dim
    b.node("Add", {"bk", "z"}, {"y"});  // two runtime tensors with broadcasting
    b.output("y", {-1, 3, 4});
    ir::RefTensor x = random_tensor({2, 3, 4}, 10);
    for (double& v : x.values) v = std::abs(v) + 0.5;
    check_model(b, {{"x", x}, {"z", random_tensor({2, 1, 4}, 11)}});
  }
}

TEST(OnnxOps, SoftmaxAxisRulesBeforeAndFromOpset13) {
  // [2, 3, 4] at axis 1: opset 11 normalizes over 3 x 4 = 12 values, opset 13 over the 3.
  for (int64_t opset : {11, 13}) {
    for (const std::string op : {"Softmax", "LogSoftmax"}) {
      SCOPED_TRACE(op + " opset " + std::to_string(opset));
      ModelBuilder b(opset);
      b.input("x", {2, 3, 4});
      auto& n = b.node(op, {"x"}, {"y"});
      ModelBuilder::attr_int(n, "axis", 1);
      b.output("y", {2, 3, 4});
      ModelRun r = check_model(b, {{"x", random_tensor({2, 3, 4}, 12)}});
      if (op != "Softmax" || r.reference.empty()) continue;
      const std::vector<double>& y = r.reference.at("y").values;
      double first_group = 0.0;  // over what the opset normalizes, the sum is 1
      if (opset == 11) {
        for (size_t i = 0; i < 12; ++i) first_group += y[i];
      } else {
        for (size_t j = 0; j < 3; ++j) first_group += y[j * 4];
      }
      EXPECT_NEAR(first_group, 1.0, 1e-12);
    }
  }
}

TEST(OnnxOps, SoftmaxDefaultAxisDiffersByOpset) {
  for (int64_t opset : {12, 13}) {
    ModelBuilder b(opset);
    b.input("x", {2, 3, 4});
    b.node("Softmax", {"x"}, {"y"});
    b.output("y", {2, 3, 4});
    ModelRun r = check_model(b, {{"x", random_tensor({2, 3, 4}, 13)}});
    if (r.reference.empty()) continue;
    const std::vector<double>& y = r.reference.at("y").values;
    double sum = 0.0;
    for (size_t i = 0; i < (opset == 12 ? 12u : 4u); ++i) sum += y[i];  // axis 1 coerced vs -1
    EXPECT_NEAR(sum, 1.0, 1e-12) << "opset " << opset;
  }
}

TEST(OnnxOps, SqueezeUnsqueezeAxesAttributeAndInput) {
  for (int64_t opset : {11, 13}) {
    SCOPED_TRACE(opset);
    ModelBuilder b(opset);
    b.input("x", {-1, 1, 6});
    if (opset < 13) {
      ModelBuilder::attr_ints(b.node("Squeeze", {"x"}, {"s"}), "axes", {1});
      ModelBuilder::attr_ints(b.node("Unsqueeze", {"s"}, {"y"}), "axes", {-1});
    } else {
      b.int64_initializer("ax1", {1}, {1});
      b.int64_initializer("axm1", {1}, {-1});
      b.node("Squeeze", {"x", "ax1"}, {"s"});
      b.node("Unsqueeze", {"s", "axm1"}, {"y"});
    }
    b.output("y", {-1, 6, 1});
    ModelRun r = check_model(b, {{"x", random_tensor({3, 1, 6}, 14)}});
    if (r.reference.empty()) continue;
    EXPECT_EQ(r.reference.at("y").dims, (Dims{3, 6, 1}));
    EXPECT_EQ(count_ops(r.optimized, "Squeeze"), 1u);
    EXPECT_TRUE(r.optimized.nodes[0].has_attribute("axes"));
  }
}

TEST(OnnxOps, ClipBoundsAsAttributesAndAsInputs) {
  for (int64_t opset : {6, 11, 13}) {
    SCOPED_TRACE(opset);
    ModelBuilder b = [&] {
      ModelBuilder m(opset);
      m.input("x", {-1, 8});
      m.random_initializer("w", {8, 6}, 1);
      m.node("MatMul", {"x", "w"}, {"h"});
      if (opset < 11) {
        auto& n = m.node("Clip", {"h"}, {"y"});
        ModelBuilder::attr_float(n, "min", -0.25f);
        ModelBuilder::attr_float(n, "max", 0.5f);
      } else {
        m.initializer("lo", {}, {-0.25f});
        m.initializer("hi", {}, {0.5f});
        m.node("Clip", {"h", "lo", "hi"}, {"y"});
      }
      m.output("y", {-1, 6});
      return m;
    }();
    ModelRun r = check_model(b, {{"x", random_tensor({5, 8}, 15)}});
    if (r.reference.empty()) continue;
    double lo = 1e9, hi = -1e9;
    for (double v : r.reference.at("y").values) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    EXPECT_DOUBLE_EQ(lo, static_cast<double>(-0.25f));
    EXPECT_DOUBLE_EQ(hi, 0.5);
    ASSERT_EQ(r.optimized.nodes.size(), 1u);
    EXPECT_EQ(r.optimized.nodes[0].get_string("activation", ""), "clip");
  }
}

TEST(OnnxOps, ClipWithOnlyMaxInput) {
  ModelBuilder b(13);
  b.input("x", {-1, 4});
  b.initializer("hi", {}, {0.3f});
  b.node("Clip", {"x", "", "hi"}, {"y"});
  b.output("y", {-1, 4});
  check_model(b, {{"x", random_tensor({3, 4}, 16)}});
}

// Linear -> BatchNorm1d -> ReLU, as torch exports it.
TEST(OnnxOps, BatchNormFoldsIntoDense) {
  ModelBuilder b(13);
  b.input("x", {-1, 8});
  b.random_initializer("w", {6, 8}, 1);
  b.random_initializer("b", {6}, 2);
  auto& gemm = b.node("Gemm", {"x", "w", "b"}, {"h"});
  ModelBuilder::attr_int(gemm, "transB", 1);
  b.random_initializer("scale", {6}, 3);
  b.random_initializer("bias", {6}, 4);
  b.random_initializer("mean", {6}, 5);
  std::vector<float> var = test::random_values(6, 6);
  for (float& v : var) v = std::abs(v) + 0.1f;
  b.initializer("var", {6}, var);
  b.node("BatchNormalization", {"h", "scale", "bias", "mean", "var"}, {"n"});
  b.node("Relu", {"n"}, {"y"});
  b.output("y", {-1, 6});
  ModelRun r = check_model(b, {{"x", random_tensor({7, 8}, 17)}});
  ASSERT_EQ(r.optimized.nodes.size(), 1u);
  EXPECT_EQ(r.optimized.nodes[0].get_string("activation", ""), "relu");
}

TEST(OnnxOps, BatchNormOnThreeDimsIsScaleShift) {
  ModelBuilder b(13);
  b.input("x", {-1, 4, 5});  // [N, C, L]
  b.random_initializer("scale", {4}, 3);
  b.random_initializer("bias", {4}, 4);
  b.random_initializer("mean", {4}, 5);
  b.initializer("var", {4}, {0.5f, 1.0f, 2.0f, 0.25f});
  b.node("BatchNormalization", {"x", "scale", "bias", "mean", "var"}, {"y"});
  b.output("y", {-1, 4, 5});
  ModelRun r = check_model(b, {{"x", random_tensor({2, 4, 5}, 18)}});
  EXPECT_EQ(count_ops(r.optimized, "ScaleShift"), 1u);
}

TEST(OnnxOps, LayerNormalizationOpset17) {
  ModelBuilder b(17);
  b.input("x", {-1, 3, 8});
  b.random_initializer("g", {8}, 3);
  b.random_initializer("beta", {8}, 4);
  b.node("LayerNormalization", {"x", "g", "beta"}, {"y"});
  b.output("y", {-1, 3, 8});
  ModelRun r = check_model(b, {{"x", random_tensor({2, 3, 8}, 19)}});
  EXPECT_EQ(count_ops(r.optimized, "LayerNorm"), 1u);
}

// torch 1.x below opset 17: ReduceMean / Sub / Pow / ReduceMean / Add / Sqrt / Div / Mul / Add.
TEST(OnnxOps, DecomposedLayerNormIsFused) {
  for (int64_t opset : {13, 18}) {
    SCOPED_TRACE(opset);
    ModelBuilder b(opset);
    b.input("x", {-1, 3, 8});
    b.random_initializer("g", {8}, 3);
    b.random_initializer("beta", {8}, 4);
    b.initializer("two", {}, {2.0f});
    b.initializer("eps", {}, {1e-5f});
    auto reduce = [&](const std::string& in, const std::string& out) {
      if (opset < 18) {
        ModelBuilder::attr_ints(b.node("ReduceMean", {in}, {out}), "axes", {-1});
      } else {
        b.node("ReduceMean", {in, "axes"}, {out});
      }
    };
    if (opset >= 18) b.int64_initializer("axes", {1}, {-1});
    reduce("x", "m");
    b.node("Sub", {"x", "m"}, {"d"});
    b.node("Pow", {"d", "two"}, {"p"});
    reduce("p", "v");
    b.node("Add", {"v", "eps"}, {"ve"});
    b.node("Sqrt", {"ve"}, {"s"});
    b.node("Div", {"d", "s"}, {"n"});
    b.node("Mul", {"n", "g"}, {"ng"});
    b.node("Add", {"ng", "beta"}, {"y"});
    b.output("y", {-1, 3, 8});
    ModelRun r = check_model(b, {{"x", random_tensor({2, 3, 8}, 20)}});
    ASSERT_EQ(r.optimized.nodes.size(), 1u);
    EXPECT_EQ(r.optimized.nodes[0].op, "LayerNorm");
  }
}

// x.view(x.size(0), -1) as torch 1.x exports it, with a dynamic batch.
TEST(OnnxOps, ShapeGatherUnsqueezeConcatReshapeWithDynamicBatch) {
  for (int64_t opset : {11, 13}) {
    SCOPED_TRACE(opset);
    ModelBuilder b(opset);
    b.input("x", {-1, 2, 4});
    b.node("Shape", {"x"}, {"shape"});
    b.int64_initializer("zero", {}, {0});
    b.node("Gather", {"shape", "zero"}, {"batch"});
    if (opset < 13) {
      ModelBuilder::attr_ints(b.node("Unsqueeze", {"batch"}, {"b1"}), "axes", {0});
    } else {
      b.int64_initializer("ax0", {1}, {0});
      b.node("Unsqueeze", {"batch", "ax0"}, {"b1"});
    }
    b.int64_initializer("minus1", {1}, {-1});
    auto& cat = b.node("Concat", {"b1", "minus1"}, {"target"});
    ModelBuilder::attr_int(cat, "axis", 0);
    b.node("Reshape", {"x", "target"}, {"flat"});
    b.random_initializer("w", {8, 3}, 1);
    b.node("MatMul", {"flat", "w"}, {"y"});
    b.output("y", {-1, 3});
    for (int64_t batch : {1, 5}) {
      ModelRun r = check_model(b, {{"x", random_tensor({batch, 2, 4}, 21)}});
      ASSERT_EQ(count_ops(r.optimized, "Reshape"), 1u);
      EXPECT_EQ(count_ops(r.optimized, "Shape"), 0u);
    }
  }
}

// Static dims read through Shape -> Slice fold to a constant target.
TEST(OnnxOps, ShapeSliceOfStaticDimsFolds) {
  ModelBuilder b(13);
  b.input("x", {-1, 3, 4});
  b.node("Shape", {"x"}, {"shape"});
  b.int64_initializer("s", {1}, {1});
  b.int64_initializer("e", {1}, {3});
  b.node("Slice", {"shape", "s", "e"}, {"tail"});  // [3, 4]
  b.int64_initializer("minus1", {1}, {-1});
  auto& cat = b.node("Concat", {"minus1", "tail"}, {"target"});
  ModelBuilder::attr_int(cat, "axis", 0);
  b.node("Reshape", {"x", "target"}, {"y"});
  b.output("y", {-1, 3, 4});
  ModelRun r = check_model(b, {{"x", random_tensor({2, 3, 4}, 22)}});
  ASSERT_EQ(r.optimized.nodes.size(), 1u);
  EXPECT_EQ(r.optimized.nodes[0].get_ints("shape"), (std::vector<int64_t>{-1, 3, 4}));
}

TEST(OnnxOps, TransposedWeightCastConstantOfShapeFold) {
  ModelBuilder b(13);
  b.input("x", {-1, 8});
  b.random_initializer("wt", {6, 8}, 1);
  ModelBuilder::attr_ints(b.node("Transpose", {"wt"}, {"w"}), "perm", {1, 0});
  b.node("MatMul", {"x", "w"}, {"h"});
  b.int64_initializer("shape6", {1}, {6});
  b.node("ConstantOfShape", {"shape6"}, {"zeros"});  // float 0 by default
  b.node("Add", {"h", "zeros"}, {"hz"});
  ModelBuilder::attr_int(b.node("Cast", {"hz"}, {"y"}), "to", 1);
  b.output("y", {-1, 6});
  ModelRun r = check_model(b, {{"x", random_tensor({3, 8}, 23)}});
  EXPECT_EQ(count_ops(r.optimized, "Dense"), 1u);
  EXPECT_EQ(r.optimized.nodes.size(), 1u);
}

TEST(OnnxOps, ResidualDagWithTwoInputsAndOutputs) {
  ModelBuilder b(13);
  b.input("x", {-1, 8});
  b.input("z", {-1, 8});
  b.random_initializer("w1", {8, 8}, 1);
  b.random_initializer("w2", {8, 8}, 2);
  b.node("MatMul", {"x", "w1"}, {"h1"});
  b.node("Relu", {"h1"}, {"r1"});
  b.node("MatMul", {"r1", "w2"}, {"h2"});
  b.node("Add", {"h2", "x"}, {"res"});  // residual
  b.node("Mul", {"res", "z"}, {"y1"});
  b.node("Sigmoid", {"res"}, {"y2"});
  b.output("y1", {-1, 8});
  b.output("y2", {-1, 8});
  check_model(b, {{"x", random_tensor({4, 8}, 24)}, {"z", random_tensor({4, 8}, 25)}});
}

TEST(OnnxOps, MatMulThreeDimActivationsWithSoftmax) {
  ModelBuilder b(13);
  b.input("x", {-1, 5, 6});  // N x T x F
  b.random_initializer("w", {6, 4}, 1);
  b.random_initializer("bias", {4}, 2);
  b.node("MatMul", {"x", "w"}, {"h"});
  b.node("Add", {"h", "bias"}, {"hb"});
  ModelBuilder::attr_int(b.node("Softmax", {"hb"}, {"y"}), "axis", 1);  // over T
  b.output("y", {-1, 5, 4});
  check_model(b, {{"x", random_tensor({3, 5, 6}, 26)}});
}

class ExternalData : public ::testing::Test {
 protected:
  void SetUp() override {
    m_dir = std::filesystem::temp_directory_path() /
            ("mlprt_ext_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
             "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(m_dir);
    std::filesystem::create_directories(m_dir / "model");
    m_weights = test::random_values(8 * 3, 7);
    std::ofstream f(m_dir / "model" / "w.bin", std::ios::binary);
    const std::string pad(16, 'x');
    f.write(pad.data(), 16);
    f.write(reinterpret_cast<const char*>(m_weights.data()),
            static_cast<std::streamsize>(m_weights.size() * sizeof(float)));
  }
  void TearDown() override { std::filesystem::remove_all(m_dir); }

  // Writes a model whose weight lies in `location` at `offset` / `length`.
  std::filesystem::path write_model(const std::string& location, const std::string& offset,
                                    const std::string& length) {
    ModelBuilder b(13);
    b.input("x", {-1, 8});
    onnx::TensorProto& w = *b.graph().add_initializer();
    w.set_name("w");
    w.set_data_type(onnx::TensorProto_DataType_FLOAT);
    w.add_dims(8);
    w.add_dims(3);
    w.set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
    for (auto [k, v] : {std::pair<std::string, std::string>{"location", location},
                        {"offset", offset},
                        {"length", length}}) {
      if (v.empty()) continue;
      auto* e = w.add_external_data();
      e->set_key(k);
      e->set_value(v);
    }
    b.node("MatMul", {"x", "w"}, {"y"});
    b.output("y", {-1, 3});
    const auto path = m_dir / "model" / "m.onnx";
    std::ofstream f(path, std::ios::binary);
    const auto bytes = b.bytes();
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  std::string import_error(const std::filesystem::path& path) {
    auto r = onnx_import::import_onnx_file(path);
    EXPECT_FALSE(r.is_ok());
    return r.is_ok() ? std::string() : r.status().message();
  }

  std::filesystem::path m_dir;
  std::vector<float> m_weights;
};

TEST_F(ExternalData, ReadsWeightsAtOffset) {
  auto r = onnx_import::import_onnx_file(write_model("w.bin", "16", "96"));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const std::vector<double> w = r->find_constant("w")->to_doubles();
  ASSERT_EQ(w.size(), m_weights.size());
  for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ(w[i], static_cast<double>(m_weights[i]));
}

TEST_F(ExternalData, RefusesAbsoluteParentAndSymlinkOutside) {
  EXPECT_NE(import_error(write_model((m_dir / "model" / "w.bin").string(), "16", "96"))
                .find("is an absolute path"),
            std::string::npos);
  EXPECT_NE(import_error(write_model("../model/w.bin", "16", "96")).find("contains '..'"),
            std::string::npos);
  std::filesystem::copy_file(m_dir / "model" / "w.bin", m_dir / "outside.bin");
  std::filesystem::create_symlink(m_dir / "outside.bin", m_dir / "model" / "link.bin");
  EXPECT_NE(import_error(write_model("link.bin", "16", "96")).find("outside the model's folder"),
            std::string::npos);
  EXPECT_NE(import_error(write_model("missing.bin", "", "")).find("not found"), std::string::npos);
}

TEST_F(ExternalData, RefusesOffsetOrLengthPastTheEnd) {
  EXPECT_NE(import_error(write_model("w.bin", "200", "")).find("past the end"), std::string::npos);
  EXPECT_NE(import_error(write_model("w.bin", "16", "100")).find("past the end"),
            std::string::npos);
  // In range but the wrong size for the tensor's shape.
  EXPECT_NE(import_error(write_model("w.bin", "20", "")).find("raw_data holds"), std::string::npos);
}

TEST_F(ExternalData, ModelFromMemoryCannotUseExternalData) {
  const auto path = write_model("w.bin", "16", "96");
  std::ifstream f(path, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto r = onnx_import::import_onnx_bytes(bytes, "mem.onnx");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("read from memory"), std::string::npos);
}

}  // namespace
}  // namespace mlprt
