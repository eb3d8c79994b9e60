// The accuracy budget (BuilderConfig::accuracy_budget) on the cpu backend: the chosen mix is
// within the budget on held-out inputs, the plan records each layer's precision and measured
// error, and every bad request is refused with what was wrong.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "mlprt/builder.h"
#include "mlprt/engine.h"
#include "test_graphs.h"

namespace mlprt {
namespace {

constexpr int64_t kIn = 64;
constexpr int64_t kHidden = 256;
constexpr int64_t kOut = 16;

std::unique_ptr<Network> network() {
  return test::make_network(test::make_mlp_graph(-1, kIn, kHidden, kOut, 3));
}

BuilderConfig budget_config(double budget) {
  BuilderConfig config;
  config.backend = "cpu";
  config.allow_bf16 = true;
  config.optimization_level = 0;
  OptimizationProfile profile;
  EXPECT_TRUE(profile.set_dimensions("input", {{1, kIn}, {128, kIn}, {256, kIn}}).is_ok());
  config.profiles = {profile};
  config.accuracy_budget = budget;
  return config;
}

CalibrationTensor calibration(int64_t rows, uint32_t seed) {
  return CalibrationTensor{{rows, kIn}, test::random_input(rows * kIn, seed)};
}

// The engine's relative L2 error against float64 on `rows` rows it has not seen.
double held_out_error(const Engine& engine, int64_t rows, uint32_t seed) {
  std::vector<float> x = test::random_input(rows * kIn, seed);
  auto context = engine.create_execution_context();
  EXPECT_TRUE(context.is_ok());
  EXPECT_TRUE((*context)->set_input_shape("input", {rows, kIn}).is_ok());
  EXPECT_TRUE((*context)->set_tensor_address("input", x.data()).is_ok());
  EXPECT_TRUE((*context)->enqueue().is_ok());
  auto out = (*context)->output("output");
  EXPECT_TRUE(out.is_ok());
  auto ref = engine.reference_outputs(
      {{"input", ReferenceTensor{{rows, kIn}, std::vector<double>(x.begin(), x.end())}}});
  EXPECT_TRUE(ref.is_ok());
  const std::span<const float> y = out->as<float>();
  return test::rel_l2(std::vector<float>(y.begin(), y.end()), ref->at("output").values);
}

std::string message_of(const BuilderConfig& config) {
  auto built = build_serialized_engine(*network(), config);
  EXPECT_FALSE(built.is_ok());
  return built.is_ok() ? std::string() : built.status().message();
}

TEST(AccuracyBudget, ChosenMixIsWithinBudgetOnHeldOutInputsAndRecorded) {
  for (double budget : {1e-2, 3e-3}) {
    BuilderConfig config = budget_config(budget);
    config.calibration_inputs["input"] = calibration(128, 1);
    config.calibration_source = "test rows";
    auto built = build_serialized_engine(*network(), config);
    ASSERT_TRUE(built.is_ok()) << built.status().message();
    auto engine = Engine::load(built->bytes, "budget");
    ASSERT_TRUE(engine.is_ok()) << engine.status().message();
    const EngineInfo& info = (*engine)->info();
    EXPECT_DOUBLE_EQ(info.accuracy_budget, budget);
    EXPECT_GE(info.accuracy_error, 0.0);
    EXPECT_LE(info.accuracy_error, budget);
    EXPECT_NE(info.accuracy_json.find("test rows"), std::string::npos);
    int dense = 0;
    for (const LayerInfo& layer : info.layers) {
      if (layer.type != "Dense") continue;
      ++dense;
      EXPECT_TRUE(layer.precision.rfind("fp32", 0) == 0 || layer.precision.rfind("bf16", 0) == 0)
          << layer.precision;
      EXPECT_GE(layer.measured_error, 0.0) << layer.name;
      EXPECT_LE(layer.measured_error, budget) << layer.name;
    }
    EXPECT_EQ(dense, 2);
    EXPECT_LE(held_out_error(**engine, 200, 9), budget);
    EXPECT_NE((*engine)->to_json().find("\"accuracy\""), std::string::npos);
  }
}

TEST(AccuracyBudget, BudgetBelowEveryBf16LayerKeepsFp32AndDefaultsToRandomData) {
  BuilderConfig config = budget_config(1e-5);  // fp32 floor ~1e-7; one bf16 layer ~1e-3
  auto built = build_serialized_engine(*network(), config);
  ASSERT_TRUE(built.is_ok()) << built.status().message();
  auto engine = Engine::load(built->bytes, "tight");
  ASSERT_TRUE(engine.is_ok());
  for (const LayerInfo& layer : (*engine)->info().layers) {
    if (layer.type == "Dense") {
      EXPECT_EQ(layer.precision.rfind("fp32", 0), 0u) << layer.precision;
    }
  }
  EXPECT_NE((*engine)->info().accuracy_json.find("random data"), std::string::npos);
  EXPECT_LE(held_out_error(**engine, 64, 4), 1e-5);
}

TEST(AccuracyBudget, PlansWithoutABudgetHaveNoAccuracyRecord) {
  BuilderConfig config = budget_config(1.0);
  config.accuracy_budget.reset();
  auto built = build_serialized_engine(*network(), config);
  ASSERT_TRUE(built.is_ok());
  auto engine = Engine::load(built->bytes, "plain");
  ASSERT_TRUE(engine.is_ok());
  EXPECT_EQ((*engine)->info().accuracy_budget, 0.0);
  EXPECT_TRUE((*engine)->info().accuracy_json.empty());
  for (const LayerInfo& layer : (*engine)->info().layers) EXPECT_LT(layer.measured_error, 0.0);
  EXPECT_EQ((*engine)->to_json().find("\"accuracy\""), std::string::npos);
}

TEST(AccuracyBudget, BadBudgetsAreRefused) {
  for (double bad : {0.0, -1e-3, std::numeric_limits<double>::quiet_NaN(),
                     std::numeric_limits<double>::infinity()}) {
    const std::string message = message_of(budget_config(bad));
    EXPECT_NE(message.find("must be a finite relative L2 error > 0"), std::string::npos)
        << message;
  }
}

TEST(AccuracyBudget, UnreachableBudgetSaysTheFp32Error) {
  const std::string message = message_of(budget_config(1e-13));
  EXPECT_NE(message.find("unreachable"), std::string::npos) << message;
  EXPECT_NE(message.find("every layer in fp32"), std::string::npos) << message;
}

TEST(AccuracyBudget, BadCalibrationInputsAreRefused) {
  struct Case {
    std::map<std::string, CalibrationTensor> inputs;
    std::string expect;
  };
  CalibrationTensor short_values = calibration(8, 1);
  short_values.values.pop_back();
  const std::vector<Case> cases = {
      {{{"nope", calibration(8, 1)}}, "has no input of that name"},
      {{{"input", CalibrationTensor{{8, kIn - 1}, test::random_input(8 * (kIn - 1), 1)}}},
       "has shape 8x63"},
      {{{"input", CalibrationTensor{{kIn}, test::random_input(kIn, 1)}}}, "has shape"},
      {{{"input", short_values}}, "values for shape"},
      {{{"input", calibration(300, 1)}}, "match no optimization profile"},
  };
  for (const Case& c : cases) {
    BuilderConfig config = budget_config(1e-2);
    config.calibration_inputs = c.inputs;
    const std::string message = message_of(config);
    EXPECT_NE(message.find(c.expect), std::string::npos) << message;
  }
  BuilderConfig both = budget_config(1e-2);
  both.precision_constraints = "obey";
  both.layer_precisions = {{"*", "bf16"}};
  EXPECT_NE(message_of(both).find("give one of them"), std::string::npos);
}

}  // namespace
}  // namespace mlprt
