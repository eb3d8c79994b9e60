// The cpu backend's own AVX-512 fp32 Dense kernel (cpu_f32_gemm.h) against a float64
// reference: K = 784 (and K below one accumulator set, K = 1), N with every panel tail (10, 32,
// 33, 1000: one partial panel, two full ones, a 1-column tail, a 63-panel layer), M with every
// row-tile tail (1, 3, 17, 64, 65), every activation the Dense epilogue takes, with and without
// bias, on 1 and 3 threads; then the tactic as the tuner records it in a plan: chosen, written
// as the optional "kernel" key, loaded, and refused with a clear error where it cannot run.

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/cpu/cpu_f32_gemm.h"
#include "backends/cpu/cpu_isa.h"
#include "common/check.h"
#include "cpu_test_graphs.h"
#include "ir/activation.h"

namespace mlprt::testing {
namespace {

using backend::cpu::f32_gemm;
using backend::cpu::f32_gemm_available;
using backend::cpu::F32Weights;

std::vector<ir::ActivationSpec> dense_activations() {
  std::vector<ir::ActivationSpec> out;
  std::string names(ir::kActivationKinds);
  size_t start = 0;
  while (start < names.size()) {
    size_t end = names.find(", ", start);
    if (end == std::string::npos) end = names.size();
    const auto kind = ir::parse_activation(names.substr(start, end - start));
    start = end + 2;
    if (!kind || !ir::dense_fusable(*kind)) continue;
    ir::ActivationSpec spec{*kind, 0.0, 0.0};
    if (*kind == ir::ActivationKind::kLeakyRelu) spec.alpha = 0.1;
    if (*kind == ir::ActivationKind::kElu) spec.alpha = 1.0;
    if (*kind == ir::ActivationKind::kClip) spec = {*kind, -0.5, 0.75};
    out.push_back(spec);
  }
  return out;
}

struct Case {
  int64_t m, k, n;
};

// Rel L2 of the kernel's output vs float64 for every activation; `ref` is X W (+ b) in double.
void check_shape(const Case& s, const std::vector<ir::ActivationSpec>& activations) {
  std::mt19937 rng(static_cast<unsigned>(s.m * 131 + s.k * 7 + s.n));
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(s.m * s.k)), w(static_cast<size_t>(s.k * s.n)),
      b(static_cast<size_t>(s.n));
  for (float& v : x) v = normal(rng);
  for (float& v : w) v = normal(rng) / std::sqrt(static_cast<float>(s.k));
  for (float& v : b) v = 0.5f * normal(rng);
  const F32Weights packed(w.data(), s.k, s.n);
  EXPECT_EQ(packed.panels(), (s.n + 15) / 16);
  for (bool bias : {false, true}) {
    std::vector<double> product(static_cast<size_t>(s.m * s.n));
    for (int64_t i = 0; i < s.m; ++i) {
      for (int64_t j = 0; j < s.n; ++j) {
        double acc = bias ? b[static_cast<size_t>(j)] : 0.0;
        for (int64_t p = 0; p < s.k; ++p) {
          acc += static_cast<double>(x[static_cast<size_t>(i * s.k + p)]) *
                 w[static_cast<size_t>(p * s.n + j)];
        }
        product[static_cast<size_t>(i * s.n + j)] = acc;
      }
    }
    for (const ir::ActivationSpec& act : activations) {
      for (int threads : {1, 3}) {
        // Sentinels: a column or row the kernel fails to write shows up in the error.
        std::vector<float> y(product.size(), -7.0f);
        f32_gemm(x.data(), s.m, packed, bias ? b.data() : nullptr, act, y.data(), threads);
        double num = 0, den = 0;
        for (size_t i = 0; i < product.size(); ++i) {
          const double ref = ir::apply_activation<double>(act.kind, product[i], act.alpha, act.beta);
          num += (ref - y[i]) * (ref - y[i]);
          den += ref * ref;
        }
        // An all-zero reference (relu of one negative value): absolute error then.
        EXPECT_LE(den > 0 ? std::sqrt(num / den) : std::sqrt(num), 1e-5)
            << s.m << "x" << s.k << "x" << s.n << " " << ir::activation_name(act.kind)
            << " bias " << bias << " threads " << threads;
      }
    }
  }
}

TEST(CpuF32Kernel, MatchesFloat64AtOddSizesAndEveryActivation) {
  if (!f32_gemm_available()) GTEST_SKIP() << "this CPU has no AVX-512: no mlprt fp32 kernel";
  const auto activations = dense_activations();
  ASSERT_GE(activations.size(), 10u);  // none, relu, ..., hard_swish
  for (int64_t m : {1, 3, 17, 64, 65}) {
    for (int64_t n : {32, 10, 33, 1000}) check_shape({m, 784, n}, activations);
  }
  // K shorter than the interleaved accumulator sets, and K = 1.
  for (const Case& s : {Case{1, 1, 1}, Case{2, 3, 17}, Case{9, 5, 70}}) check_shape(s, activations);
}

TEST(CpuF32Kernel, PacksPanelsOfSixteenColumns) {
  std::vector<float> w(3 * 17);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i);
  const F32Weights packed(w.data(), 3, 17);
  EXPECT_EQ(packed.panels(), 2);
  EXPECT_EQ(packed.bytes(), 2u * 3u * 16u * sizeof(float));
  // Row 1's column 16 is the first value of panel 1's row 1, zero-padded past it.
  EXPECT_EQ(packed.panel(1)[16], w[1 * 17 + 16]);
  EXPECT_EQ(packed.panel(1)[17], 0.0f);
  EXPECT_EQ(packed.panel(0)[16 + 3], w[1 * 17 + 3]);
}

// X [B, 784] -> Dense 784x33 + relu -> Dense 33x10, one profile at batch 3.
ir::Graph small_mlp() {
  GraphMaker g(11);
  const auto x = g.input("x", {-1, 784});
  g.output(g.dense(g.dense(x, 784, 33, true, true), 33, 10));
  return g.graph();
}

Result<std::vector<uint8_t>> compile_at(const ir::Graph& graph, int64_t batch) {
  OptimizationProfile profile;
  MLPRT_RETURN_IF_ERROR(profile.set_dimensions("x", {{1, 784}, {batch, 784}, {2 * batch, 784}}));
  BuilderConfig config;
  config.num_threads = 1;
  MLPRT_ASSIGN_OR_RETURN(const backend::Backend* cpu, backend::find_backend("cpu"));
  return cpu->compile(graph, {profile}, config);
}

std::vector<uint8_t> bytes_of(const nlohmann::json& json) {
  const std::string text = json.dump();
  return {text.begin(), text.end()};
}

TEST(CpuF32Kernel, PlanRecordsTheKernelAndLoadsWithAndWithoutIt) {
  if (!f32_gemm_available()) GTEST_SKIP() << "this CPU has no AVX-512: no mlprt fp32 kernel";
  const ir::Graph graph = small_mlp();
  auto blob = compile_at(graph, 3);
  ASSERT_TRUE(blob.is_ok()) << blob.status().message();
  nlohmann::json json = nlohmann::json::parse(blob->begin(), blob->end());
  // Force our kernel on every layer's opt tactic (whatever the timing chose), and oneDNN's on
  // the runtime tactics (the key dropped, as a plan of an older build has it).
  for (auto& layer : json.at("layers")) {
    layer.at("runtime").erase("kernel");
    for (auto& opt : layer.at("opt")) {
      opt["kind"] = "fixed";  // the timing may have chosen the runtime tactic at M = 3
      opt["m"] = 3;
      opt["kernel"] = "mlprt";
      opt["row_split"] = false;
      opt["threads"] = 1;
      opt["precision"] = "fp32";
    }
  }
  auto cpu = backend::find_backend("cpu");
  ASSERT_TRUE(cpu.is_ok());
  auto exe = (*cpu)->load(graph, bytes_of(json));
  ASSERT_TRUE(exe.is_ok()) << exe.status().message();
  for (const std::string& text : (*exe)->layer_precisions()) {
    EXPECT_NE(text.find("M=3: fp32 fixed-M mlprt-panels 1-thread mlprt:avx512_f32"),
              std::string::npos)
        << text;
  }
  auto described = (*cpu)->describe_blob(graph, bytes_of(json));
  ASSERT_TRUE(described.is_ok()) << described.status().message();
  EXPECT_NE(described->layer_precisions[0].find("mlprt:avx512_f32"), std::string::npos);
  auto context = (*exe)->create_context();
  ASSERT_TRUE(context.is_ok());
  EXPECT_NE((*exe)->layer_precisions()[0].find("any M: fp32 runtime-M gemm:jit"),
            std::string::npos)
      << (*exe)->layer_precisions()[0];
  for (int64_t batch : {3, 1, 6}) {  // the kernel's M, and the runtime primitive's
    expect_matches_reference(**context, graph, {{"x", random_tensor({batch, 784}, 5)}});
  }
  // Without the key: oneDNN's tactics, as before.
  for (auto& layer : json.at("layers")) {
    for (auto& opt : layer.at("opt")) opt.erase("kernel");
  }
  auto plain = (*cpu)->load(graph, bytes_of(json));
  ASSERT_TRUE(plain.is_ok()) << plain.status().message();
  EXPECT_EQ((*plain)->layer_precisions()[0].find("mlprt:avx512_f32"), std::string::npos);
}

TEST(CpuF32Kernel, PlanWithABadKernelKeyIsRefused) {
  const ir::Graph graph = small_mlp();
  auto blob = compile_at(graph, 3);
  ASSERT_TRUE(blob.is_ok()) << blob.status().message();
  auto cpu = backend::find_backend("cpu");
  ASSERT_TRUE(cpu.is_ok());
  const nlohmann::json json = nlohmann::json::parse(blob->begin(), blob->end());
  {
    nlohmann::json bad = json;
    bad.at("layers")[0].at("opt")[0]["kernel"] = "cublas";
    auto exe = (*cpu)->load(graph, bytes_of(bad));
    ASSERT_FALSE(exe.is_ok());
    EXPECT_EQ(exe.status().code(), StatusCode::kCorruptData);
    EXPECT_NE(exe.status().message().find("allowed: onednn (default), mlprt"), std::string::npos)
        << exe.status().message();
  }
  if (backend::cpu::cpu_has_bf16()) {  // else bf16 is refused first, as a hardware mismatch
    nlohmann::json bad = json;
    auto& runtime = bad.at("layers")[0].at("runtime");
    runtime["kernel"] = "mlprt";
    runtime["precision"] = "bf16";  // our fp32 kernel has no bf16
    auto exe = (*cpu)->load(graph, bytes_of(bad));
    ASSERT_FALSE(exe.is_ok());
    EXPECT_EQ(exe.status().code(), StatusCode::kCorruptData);
    EXPECT_NE(exe.status().message().find("kernel mlprt is allowed with precision fp32 only"),
              std::string::npos)
        << exe.status().message();
  }
}

TEST(CpuF32Kernel, RuntimeTacticServesEveryBatch) {
  if (!f32_gemm_available()) GTEST_SKIP() << "this CPU has no AVX-512: no mlprt fp32 kernel";
  const ir::Graph graph = small_mlp();
  auto blob = compile_at(graph, 3);
  ASSERT_TRUE(blob.is_ok()) << blob.status().message();
  nlohmann::json json = nlohmann::json::parse(blob->begin(), blob->end());
  for (auto& layer : json.at("layers")) {
    layer.at("runtime")["kernel"] = "mlprt";
    layer.at("runtime")["precision"] = "fp32";
    layer["opt"] = nlohmann::json::array();  // no fixed-M tactic: the runtime one runs all
  }
  auto cpu = backend::find_backend("cpu");
  ASSERT_TRUE(cpu.is_ok());
  auto exe = (*cpu)->load(graph, bytes_of(json));
  ASSERT_TRUE(exe.is_ok()) << exe.status().message();
  EXPECT_NE((*exe)->layer_precisions()[0].find("any M: fp32 runtime-M mlprt-panels "
                                               "mlprt:avx512_f32"),
            std::string::npos)
      << (*exe)->layer_precisions()[0];
  for (int threads : {1, 3}) {
    auto context = (*exe)->create_context();
    ASSERT_TRUE(context.is_ok());
    ASSERT_TRUE((*context)->set_num_threads(threads).is_ok());
    for (int64_t batch : {1, 2, 9, 64, 130}) {
      expect_matches_reference(**context, graph, {{"x", random_tensor({batch, 784}, 6)}});
    }
  }
}

TEST(CpuF32Kernel, TunedPlanAtOneRowRunsRight) {
  if (!f32_gemm_available()) GTEST_SKIP() << "this CPU has no AVX-512: no mlprt fp32 kernel";
  // At one row a oneDNN call's fixed cost is most of a 784x33 layer: our kernel is timed
  // beside oneDNN's tactics and what wins is written; whichever it is, the plan runs right.
  const ir::Graph graph = small_mlp();
  auto blob = compile_at(graph, 1);
  ASSERT_TRUE(blob.is_ok()) << blob.status().message();
  const nlohmann::json json = nlohmann::json::parse(blob->begin(), blob->end());
  for (const auto& layer : json.at("layers")) {
    const auto& opt = layer.at("opt")[0];
    if (opt.contains("kernel")) {
      EXPECT_EQ(opt.at("kernel"), "mlprt") << opt.dump();
    }
  }
  auto cpu = backend::find_backend("cpu");
  ASSERT_TRUE(cpu.is_ok());
  auto exe = (*cpu)->load(graph, *blob);
  ASSERT_TRUE(exe.is_ok()) << exe.status().message();
  auto context = (*exe)->create_context();
  ASSERT_TRUE(context.is_ok());
  expect_matches_reference(**context, graph, {{"x", random_tensor({1, 784}, 8)}});
}

TEST(CpuF32Kernel, NotOfferedForLayersOverFourMebibytes) {
  if (!f32_gemm_available()) GTEST_SKIP() << "this CPU has no AVX-512: no mlprt fp32 kernel";
  // 1024 x 1025 floats: just over 4 MiB, where the kernel's own copy of the weights is not
  // worth it (cpu_tuner.cpp); at one row it would otherwise be a candidate like any layer.
  GraphMaker g(12);
  const auto x = g.input("x", {-1, 1024});
  g.output(g.dense(x, 1024, 1025));
  const ir::Graph& graph = g.graph();
  OptimizationProfile profile;
  ASSERT_TRUE(profile.set_dimensions("x", {{1, 1024}, {1, 1024}, {2, 1024}}).is_ok());
  BuilderConfig config;
  config.num_threads = 1;
  auto cpu = backend::find_backend("cpu");
  ASSERT_TRUE(cpu.is_ok());
  auto blob = (*cpu)->compile(graph, {profile}, config);
  ASSERT_TRUE(blob.is_ok()) << blob.status().message();
  const std::string text(blob->begin(), blob->end());
  EXPECT_EQ(text.find("\"kernel\""), std::string::npos) << text;
}

}  // namespace
}  // namespace mlprt::testing
