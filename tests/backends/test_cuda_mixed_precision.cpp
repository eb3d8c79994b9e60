// Layers in different precisions in one cuda engine (--layerPrecisions under obey), against
// float64, and the accuracy budget on cuda. Skipped where no CUDA device is present.

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "cpu_test_graphs.h"
#include "cuda_skip.h"
#include "mlprt/mlprt.h"

namespace mlprt::testing {
namespace {

struct Model {
  std::unique_ptr<Network> network;
};

// x[-1, 96] -> Dense+relu 256 -> Dense+relu 256 -> Dense 32 --+--> Add -> y
//          \-> Dense 32 -------------------------------------/
// (no softmax: its large logits would make 16-bit rounding flip near-ties, an ill-conditioned
// reference rather than a test of the casts)
Model make_model() {
  GraphMaker maker(11);
  const std::string x = maker.input("x", {-1, 96});
  const std::string h = maker.dense(maker.dense(x, 96, 256, true, true), 256, 256, true, true);
  const std::string a = maker.dense(h, 256, 32);
  maker.output(maker.add(a, maker.dense(x, 96, 32)));
  Model m;
  m.network = std::make_unique<Network>(std::make_unique<ir::Graph>(maker.graph()));
  return m;
}

BuilderConfig cuda_config() {
  BuilderConfig config;
  config.backend = "cuda";
  OptimizationProfile profile;
  EXPECT_TRUE(profile.set_dimensions("x", {{1, 96}, {64, 96}, {512, 96}}).is_ok());
  config.profiles = {profile};
  return config;
}

double error_vs_float64(const Engine& engine, int64_t rows, uint32_t seed) {
  const HostTensor x = random_tensor({rows, 96}, seed);
  auto context = engine.create_execution_context();
  EXPECT_TRUE(context.is_ok());
  EXPECT_TRUE((*context)->set_input_shape("x", {rows, 96}).is_ok());
  std::vector<float> input = x.data;
  EXPECT_TRUE((*context)->set_tensor_address("x", input.data()).is_ok());
  const Status run = (*context)->enqueue();
  EXPECT_TRUE(run.is_ok()) << run.message();
  const std::string out_name = engine.io_tensors().back().name;
  auto out = (*context)->output(out_name);
  EXPECT_TRUE(out.is_ok());
  auto ref = engine.reference_outputs(
      {{"x", ReferenceTensor{{rows, 96}, std::vector<double>(input.begin(), input.end())}}});
  EXPECT_TRUE(ref.is_ok());
  const std::span<const float> y = out->as<float>();
  return rel_l2(std::vector<float>(y.begin(), y.end()), ref->at(out_name).values);
}

TEST(CudaMixedPrecision, EveryMixMatchesFloat64) {
  SKIP_WITHOUT_GPU();
  Model model = make_model();
  // The passes fuse the relus: names of the optimized graph come from a first build.
  BuilderConfig probe = cuda_config();
  probe.optimization_level = 0;
  auto plain = build_serialized_engine(*model.network, probe);
  ASSERT_TRUE(plain.is_ok()) << plain.status().message();
  auto plain_engine = Engine::load(plain->bytes, "plain");
  ASSERT_TRUE(plain_engine.is_ok());
  std::vector<std::string> layers;
  for (const LayerInfo& l : (*plain_engine)->info().layers) layers.push_back(l.name);
  // Dense x4; the Add is fused into one of the two 32-wide Dense layers as its residual input.
  ASSERT_EQ(layers.size(), 4u);
  // fp16 writing fp32 from its epilogue, casts fp32 -> 16-bit and 16-bit -> 16-bit, a graph
  // input read in several precisions, a residual input in another type than its layer's.
  const std::vector<std::vector<std::string>> mixes = {
      {"fp16", "fp32", "bf16", "fp32"},
      {"fp32", "fp16", "fp16", "bf16"},
      {"tf32", "bf16", "fp32", "fp16"},
      {"bf16", "fp16", "tf32", "fp32"},
  };
  for (const auto& mix : mixes) {
    BuilderConfig config = cuda_config();
    config.precision_constraints = "obey";
    for (size_t i = 0; i < layers.size(); ++i) config.layer_precisions[layers[i]] = mix[i];
    auto built = build_serialized_engine(*model.network, config);
    ASSERT_TRUE(built.is_ok()) << built.status().message();
    auto engine = Engine::load(built->bytes, "mix");
    ASSERT_TRUE(engine.is_ok()) << engine.status().message();
    const auto& info = (*engine)->info().layers;
    std::string text;
    for (size_t i = 0; i < layers.size(); ++i) {
      EXPECT_EQ(info[i].precision.rfind(mix[i], 0), 0u) << info[i].precision;
      text += info[i].precision + "\n";
    }
    EXPECT_NE(text.find("residual"), std::string::npos) << text;
    for (int64_t rows : {1, 7, 64, 300}) {
      EXPECT_LE(error_vs_float64(**engine, rows, static_cast<uint32_t>(rows)), 2e-2)
          << "rows " << rows << "\n" << text;
    }
    if (mix[0] == "fp16" && mix[1] == "fp32") {
      EXPECT_NE(info[0].precision.find("writing fp32"), std::string::npos) << info[0].precision;
    }
  }
}

TEST(CudaMixedPrecision, AccuracyBudgetOnCudaIsWithinBudgetOnHeldOutInputs) {
  SKIP_WITHOUT_GPU();
  Model model = make_model();
  for (double budget : {1e-2, 1e-4}) {
    BuilderConfig config = cuda_config();
    config.allow_fp16 = true;
    config.allow_tf32 = true;
    config.accuracy_budget = budget;
    const HostTensor calib = random_tensor({64, 96}, 1);
    config.calibration_inputs["x"] = CalibrationTensor{{64, 96}, calib.data};
    auto built = build_serialized_engine(*model.network, config);
    ASSERT_TRUE(built.is_ok()) << built.status().message();
    auto engine = Engine::load(built->bytes, "budget");
    ASSERT_TRUE(engine.is_ok());
    EXPECT_DOUBLE_EQ((*engine)->info().accuracy_budget, budget);
    EXPECT_LE((*engine)->info().accuracy_error, budget);
    EXPECT_LE(error_vs_float64(**engine, 256, 77), budget);
  }
}

}  // namespace
}  // namespace mlprt::testing
