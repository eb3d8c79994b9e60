// The node patterns of torch 2.x's dynamo exporter (opset 18+, IR 10) for MLP activations,
// built by hand as that exporter writes them: import -> float64 evaluator on the imported graph
// -> optimize -> cpu backend at rel L2 <= 1e-5, and what each pattern becomes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <utility>

#include "ir/activation.h"
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

const ir::Node* find_kind(const ir::Graph& g, const std::string& kind) {
  for (const ir::Node& n : g.nodes) {
    if (n.op == "Activation" && n.get_string("kind", "") == kind) return &n;
  }
  return nullptr;
}

// x [batch, 8] -> Gemm(8 -> 6) -> h, then the caller's nodes from h to y [batch, 6].
ModelBuilder gemm_model(int64_t opset = 18) {
  ModelBuilder b(opset);
  b.model().set_ir_version(10);
  b.input("x", {-1, 8});
  b.random_initializer("w", {6, 8}, 1);
  b.random_initializer("b", {6}, 2);
  auto& gemm = b.node("Gemm", {"x", "w", "b"}, {"h"}, "fc");
  ModelBuilder::attr_int(gemm, "transB", 1);
  b.output("y", {-1, 6});
  return b;
}

// nn.Softplus(beta, threshold) as the dynamo exporter writes it. variant:
// 0: beta = 1: Where(Greater(h, t), h, Softplus(h))              (torch 2.11, as the fixture)
// 1: Where(Greater(h*b, t), h, Softplus(h*b) / b)
// 2: Where(Less(t, b*h), h, (1/b) * Softplus(b*h))
// 3: Where(Greater(h*b, t), h, Log(Exp(h*b) + 1) / b)
ModelBuilder softplus_model(int variant, float beta, float threshold) {
  ModelBuilder b = gemm_model(variant == 0 ? 20 : 18);
  b.initializer("t", {}, {threshold});
  b.initializer("beta", {}, {beta});
  b.initializer("rbeta", {}, {1.0f / beta});
  b.initializer("one", {}, {1.0f});
  std::string s = "h";
  if (variant == 2) {
    b.node("Mul", {"beta", "h"}, {"s"});
    s = "s";
  } else if (variant != 0) {
    b.node("Mul", {"h", "beta"}, {"s"});
    s = "s";
  }
  if (variant == 3) {
    b.node("Exp", {s}, {"e"});
    b.node("Add", {"e", "one"}, {"e1"});
    b.node("Log", {"e1"}, {"sp"});
  } else {
    b.node("Softplus", {s}, {"sp"});
  }
  std::string branch = "sp";
  if (variant == 1 || variant == 3) {
    b.node("Div", {"sp", "beta"}, {"spb"});
    branch = "spb";
  } else if (variant == 2) {
    b.node("Mul", {"rbeta", "sp"}, {"spb"});
    branch = "spb";
  }
  if (variant == 2)
    b.node("Less", {"t", s}, {"c"});
  else
    b.node("Greater", {s, "t"}, {"c"});
  b.node("Where", {"c", "h", branch}, {"y"});
  return b;
}

TEST(Torch2Patterns, SoftplusWithThresholdFusesIntoOneActivation) {
  // Small thresholds and wide inputs, so that both branches of the Where are taken.
  const struct {
    int variant;
    float beta, threshold;
  } cases[] = {{0, 1.0f, 20.0f}, {0, 1.0f, 0.5f}, {1, 2.0f, 1.5f},
               {2, 0.5f, 0.25f}, {3, 3.0f, 2.0f}, {1, 1.0f, 20.0f}};
  for (const auto& c : cases) {
    SCOPED_TRACE("variant " + std::to_string(c.variant) + " beta " + std::to_string(c.beta) +
                 " threshold " + std::to_string(c.threshold));
    ModelRun r = check_model(softplus_model(c.variant, c.beta, c.threshold),
                             {{"x", random_tensor({16, 8}, 11, 3.0)}});
    ASSERT_EQ(r.optimized.nodes.size(), 2u);
    const ir::Node* act = find_kind(r.optimized, "softplus_threshold");
    ASSERT_NE(act, nullptr);
    EXPECT_DOUBLE_EQ(act->get_float("alpha", 0.0), c.beta);
    EXPECT_DOUBLE_EQ(act->get_float("beta", 0.0), c.threshold);
    EXPECT_EQ(count_ops(r.optimized, "Dense"), 1u);
  }
}

TEST(Torch2Patterns, SoftplusThresholdActivationMatchesTorchFormula) {
  // torch: x where beta * x > threshold, else log(1 + exp(beta * x)) / beta.
  const double beta = 2.0, threshold = 1.0;
  for (double x : {-30.0, -1.0, 0.0, 0.25, 0.5, 0.75, 3.0}) {
    const double want = beta * x > threshold ? x : std::log1p(std::exp(beta * x)) / beta;
    EXPECT_NEAR(
        ir::apply_activation<double>(ir::ActivationKind::kSoftplusThreshold, x, beta, threshold),
        want, 1e-15 * std::max(1.0, std::abs(want)))
        << x;
  }
}

TEST(Torch2Patterns, SoftplusPatternWithMismatchedScaleIsNotFused) {
  // Softplus(h * 2) / 3 is not torch's softplus: left alone, and the boolean mask that feeds
  // the Where (no layer op on runtime data) is refused by name.
  ModelBuilder b = gemm_model();
  b.initializer("t", {}, {1.0f});
  b.initializer("two", {}, {2.0f});
  b.initializer("three", {}, {3.0f});
  b.node("Mul", {"h", "two"}, {"s"});
  b.node("Softplus", {"s"}, {"sp"});
  b.node("Div", {"sp", "three"}, {"spb"});
  b.node("Greater", {"s", "t"}, {"c"});
  b.node("Where", {"c", "h", "spb"}, {"y"});
  const auto bytes = b.bytes();
  auto g = onnx_import::import_onnx_bytes(bytes, "t.onnx");
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  const Status s = ir::optimize(*g);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("(Greater): op is not supported after optimization"),
            std::string::npos)
      << s.message();
}

TEST(Torch2Patterns, SiluIsSigmoidTimesInput) {
  ModelBuilder b = gemm_model();
  b.node("Sigmoid", {"h"}, {"sg"});
  b.node("Mul", {"h", "sg"}, {"y"});
  ModelRun r = check_model(b, {{"x", random_tensor({5, 8}, 12, 3.0)}});
  EXPECT_EQ(count_ops(r.optimized, "Dense"), 1u);
  EXPECT_NE(find_kind(r.optimized, "sigmoid"), nullptr);
}

TEST(Torch2Patterns, MishIsInputTimesTanhOfSoftplus) {
  for (bool thresholded : {false, true}) {
    SCOPED_TRACE(thresholded);
    ModelBuilder b = gemm_model();
    b.node("Softplus", {"h"}, {"sp"});
    std::string soft = "sp";
    if (thresholded) {  // F.softplus's threshold kept by the decomposition
      b.initializer("t", {}, {20.0f});
      b.node("Greater", {"h", "t"}, {"c"});
      b.node("Where", {"c", "h", "sp"}, {"spw"});
      soft = "spw";
    }
    b.node("Tanh", {soft}, {"th"});
    b.node("Mul", {"h", "th"}, {"y"});
    ModelRun r = check_model(b, {{"x", random_tensor({5, 8}, 13, 3.0)}});
    EXPECT_NE(find_kind(r.optimized, thresholded ? "softplus_threshold" : "softplus"), nullptr);
    EXPECT_NE(find_kind(r.optimized, "tanh"), nullptr);
  }
}

TEST(Torch2Patterns, HardtanhAndRelu6AsClipWithInputs) {
  for (const auto& [lo, hi] : {std::pair{-1.0f, 1.0f}, std::pair{0.0f, 6.0f}}) {
    ModelBuilder b = gemm_model();
    b.initializer("lo", {}, {lo});
    b.initializer("hi", {}, {hi});
    b.node("Clip", {"h", "lo", "hi"}, {"y"});
    ModelRun r = check_model(b, {{"x", random_tensor({5, 8}, 14, 4.0)}});
    ASSERT_EQ(r.optimized.nodes.size(), 1u);
    EXPECT_EQ(r.optimized.nodes[0].get_string("activation", ""), "clip");
  }
}

TEST(Torch2Patterns, OtherActivationsAsSingleOpsAtOpset18) {
  for (const std::string op : {"LeakyRelu", "Elu", "Selu", "HardSigmoid", "HardSwish", "Relu",
                               "Sigmoid", "Tanh", "Softplus"}) {
    SCOPED_TRACE(op);
    ModelBuilder b = gemm_model();
    b.node(op, {"h"}, {"y"});
    ModelRun r = check_model(b, {{"x", random_tensor({5, 8}, 15, 3.0)}});
    EXPECT_EQ(count_ops(r.optimized, "Dense"), 1u);
  }
}

TEST(Torch2Patterns, StandaloneElementwiseOps) {
  // Exp, Log, Neg, Abs, Sqrt, Reciprocal, Erf on runtime data (Log, Sqrt of |h| + 1).
  for (const std::string op : {"Exp", "Log", "Neg", "Abs", "Sqrt", "Reciprocal", "Erf"}) {
    SCOPED_TRACE(op);
    ModelBuilder b = gemm_model();
    b.initializer("one", {}, {1.0f});
    b.node("Abs", {"h"}, {"a"});
    b.node("Add", {"a", "one"}, {"p"});
    b.node(op, {"p"}, {"y"});
    ModelRun r = check_model(b, {{"x", random_tensor({5, 8}, 16, 3.0)}});
    std::string kind = op;
    for (char& ch : kind) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    EXPECT_NE(find_kind(r.optimized, kind), nullptr);
  }
}

TEST(Torch2Patterns, ExpandOfConstantFolds) {
  // A constant bias expanded to [batch-independent] shape at build time, then added.
  ModelBuilder b = gemm_model();
  b.initializer("bias", {1, 6}, {1, 2, 3, 4, 5, 6});
  b.int64_initializer("shape", {2}, {3, 6});
  b.node("Expand", {"bias", "shape"}, {"bias3"});
  b.node("Add", {"h", "bias3"}, {"y"});
  ModelRun r = check_model(b, {{"x", random_tensor({3, 8}, 17)}});
  EXPECT_EQ(count_ops(r.optimized, "Expand"), 0u);
}

}  // namespace
}  // namespace mlprt
