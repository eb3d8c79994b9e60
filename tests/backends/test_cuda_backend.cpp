// The cuda backend on the GPU against the float64 reference: every precision, the layer ops,
// device and host I/O through the public API, several contexts on several threads. Skipped,
// saying why, where no CUDA device is present (CI).

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "backends/registry.h"
#include "cpu_test_graphs.h"
#include "ir/evaluator.h"
#include "mlprt/mlprt.h"

namespace mlprt::testing {
namespace {

const backend::Backend* cuda_or_skip_reason(std::string& reason) {
  auto backend = backend::find_backend("cuda");
  if (!backend.is_ok()) {
    reason = backend.status().message();
    return nullptr;
  }
  const Status available = (*backend)->check_available();
  if (!available.is_ok()) {
    reason = available.message();
    return nullptr;
  }
  return *backend;
}

#define SKIP_WITHOUT_GPU()                                                         \
  std::string skip_reason_;                                                        \
  const backend::Backend* cuda = cuda_or_skip_reason(skip_reason_);                \
  if (cuda == nullptr) GTEST_SKIP() << "no CUDA device: " << skip_reason_;

struct Case {
  bool fp16 = false, bf16 = false, tf32 = false;
  double tolerance = 1e-5;
  const char* name = "fp32";
};
const Case kCases[] = {{false, false, false, 1e-5, "fp32"},
                       {false, false, true, 1e-3, "tf32"},
                       {true, false, false, 2e-2, "fp16"},
                       {false, true, false, 2e-2, "bf16"}};

OptimizationProfile batch_profile(const std::string& input, int64_t features, int64_t opt) {
  OptimizationProfile profile;
  EXPECT_TRUE(profile.set_dimensions(input, {{1, features}, {opt, features}, {512, features}}).is_ok());
  return profile;
}

// Runs `exe` on device memory on a stream and returns the graph's single output. `offset`
// elements into each allocation: 1 makes the I/O addresses not 16-byte aligned.
std::vector<float> run_on_device(const backend::Executable& exe, const ir::Graph& graph,
                                 const TensorMap& inputs, size_t offset = 0) {
  auto context = exe.create_context();
  EXPECT_TRUE(context.is_ok()) << context.status().message();
  if (!context.is_ok()) return {};
  ir::ShapeMap input_shapes;
  for (const auto& [name, t] : inputs) input_shapes[name] = t.dims;
  auto shapes = ir::infer_shapes(graph, input_shapes);
  EXPECT_TRUE(shapes.is_ok()) << shapes.status().message();
  EXPECT_TRUE((*context)->set_device_io(true).is_ok());
  Status prepared = (*context)->prepare(*shapes);
  EXPECT_TRUE(prepared.is_ok()) << prepared.message();
  backend::IoBindings io;
  io.device_addresses = true;
  std::vector<void*> allocations;
  for (const auto& [name, t] : inputs) {
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, (t.data.size() + offset) * 4), cudaSuccess);
    allocations.push_back(p);
    p = static_cast<float*>(p) + offset;
    EXPECT_EQ(cudaMemcpy(p, t.data.data(), t.data.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
    io.inputs[name] = p;
  }
  const std::string& out_name = graph.outputs[0].name;
  const size_t out_n = static_cast<size_t>(*volume(shapes->at(out_name)));
  void* out = nullptr;
  EXPECT_EQ(cudaMalloc(&out, (std::max<size_t>(out_n, 1) + offset) * 4), cudaSuccess);
  EXPECT_EQ(cudaMemset(out, 0xff, (std::max<size_t>(out_n, 1) + offset) * 4), cudaSuccess);  // NaN
  allocations.push_back(out);
  out = static_cast<float*>(out) + offset;
  io.outputs[out_name] = out;
  cudaStream_t stream = nullptr;
  EXPECT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  for (int i = 0; i < 2; ++i) {  // capture, then replay
    Status run = (*context)->execute(io, stream);
    EXPECT_TRUE(run.is_ok()) << run.message();
  }
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  std::vector<float> result(out_n);
  EXPECT_EQ(cudaMemcpy(result.data(), out, out_n * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  cudaStreamDestroy(stream);
  for (void* p : allocations) cudaFree(p);
  return result;
}

std::unique_ptr<backend::Executable> build(const backend::Backend& cuda, const ir::Graph& graph,
                                           const std::vector<OptimizationProfile>& profiles,
                                           const Case& c) {
  BuilderConfig config;
  config.allow_fp16 = c.fp16;
  config.allow_bf16 = c.bf16;
  config.allow_tf32 = c.tf32;
  auto blob = cuda.compile(graph, profiles, config);
  EXPECT_TRUE(blob.is_ok()) << blob.status().message();
  if (!blob.is_ok()) return nullptr;
  auto exe = cuda.load(graph, *blob);
  EXPECT_TRUE(exe.is_ok()) << exe.status().message();
  if (!exe.is_ok()) return nullptr;
  return std::move(exe).value();
}

TEST(CudaBackend, SeedMlpEveryPrecisionAndBatch) {
  SKIP_WITHOUT_GPU();
  for (const Case& c : kCases) {
    GraphMaker maker(3);
    const std::string x = maker.input("x", {-1, 784});
    const std::string h = maker.dense(x, 784, 32, true, true);
    maker.output(maker.dense(h, 32, 10));
    const ir::Graph& graph = maker.graph();
    auto exe = build(*cuda, graph, {batch_profile("x", 784, 64)}, c);
    ASSERT_NE(exe, nullptr);
    EXPECT_NE(exe->layer_precisions()[0].find(c.name), std::string::npos)
        << exe->layer_precisions()[0];
    for (int64_t batch : {1, 7, 64, 300}) {
      TensorMap inputs{{"x", random_tensor({batch, 784}, static_cast<unsigned>(batch))}};
      const auto ref = reference(graph, inputs);
      const std::vector<float> out = run_on_device(*exe, graph, inputs);
      EXPECT_LE(rel_l2(out, ref.begin()->second), c.tolerance)
          << c.name << " batch " << batch << " " << exe->layer_precisions()[0];
    }
  }
}

TEST(CudaBackend, AddReluFlattenTransposeAndWideLayers) {
  SKIP_WITHOUT_GPU();
  for (const Case& c : kCases) {
    GraphMaker maker(5);
    const std::string x = maker.input("x", {6, 4, 50});
    const std::string f = maker.flatten(x, 1);                    // [6, 200]
    const std::string d = maker.dense(f, 200, 1100, true, true);  // too wide to fuse
    const std::string a = maker.add(d, maker.constant({1100}));   // broadcast add
    const std::string r = maker.relu(maker.add(a, a));
    const std::string t = maker.reshape(r, {1100, 6});
    maker.output(maker.dense(t, 1100, 3, true, false, true));     // transpose_x: [6, 3]
    const ir::Graph& graph = maker.graph();
    auto exe = build(*cuda, graph, {}, c);
    ASSERT_NE(exe, nullptr);
    TensorMap inputs{{"x", random_tensor({6, 4, 50}, 11)}};
    const auto ref = reference(graph, inputs);
    EXPECT_LE(rel_l2(run_on_device(*exe, graph, inputs), ref.begin()->second), c.tolerance)
        << c.name;
  }
}

// float64 evaluator (ir::evaluate_graph) on the graph's single output.
std::vector<double> evaluator_reference(const ir::Graph& graph, const TensorMap& inputs) {
  std::map<std::string, ir::RefTensor> refs;
  for (const auto& [name, t] : inputs) {
    refs[name] = ir::RefTensor{t.dims, std::vector<double>(t.data.begin(), t.data.end())};
  }
  auto all = ir::evaluate_graph(graph, refs);
  EXPECT_TRUE(all.is_ok()) << all.status().message();
  if (!all.is_ok()) return {};
  return all->at(graph.outputs[0].name).values;
}

struct ActCase {
  const char* kind;
  double alpha, beta;
};
const ActCase kActivations[] = {
    {"relu", 0, 0},         {"leaky_relu", 0.1, 0},   {"sigmoid", 0, 0},  {"tanh", 0, 0},
    {"elu", 0.7, 0},        {"selu", 1.6732632, 1.0507010}, {"hard_sigmoid", 0.2, 0.5},
    {"hard_swish", 0, 0},   {"softplus", 0, 0},       {"gelu_erf", 0, 0}, {"gelu_tanh", 0, 0},
    {"clip", -0.5, 0.8},    {"softplus_threshold", 2.0, 4.0}, {"neg", 0, 0},
    {"abs", 0, 0},          {"erf", 0, 0},            {"none", 0, 0}};

// Every activation kind as the Dense epilogue (cuBLASLt's for relu / gelu_tanh, our kernel for
// the rest) and as an Activation layer, then the Binary kinds with broadcasting.
TEST(CudaBackend, EveryActivationAndBinaryKindEveryPrecision) {
  SKIP_WITHOUT_GPU();
  for (const Case& c : kCases) {
    for (const ActCase& a : kActivations) {
      GraphMaker maker(21);
      const std::string x = maker.input("x", {-1, 48});
      const std::map<std::string, ir::AttributeValue> act = {
          {"alpha", a.alpha}, {"beta", a.beta}};
      std::string h = maker.dense(x, 48, 64);
      maker.graph().nodes.back().attributes["activation"] = std::string(a.kind);
      maker.graph().nodes.back().attributes["alpha"] = a.alpha;
      maker.graph().nodes.back().attributes["beta"] = a.beta;
      if (std::string(a.kind) != "none") {
        auto attrs = act;
        attrs["kind"] = std::string(a.kind);
        h = maker.node("Activation", {h}, attrs);
      }
      // Divisor and base kept in [0.2, 1] by a hard sigmoid of a bounded input.
      const std::string pos = maker.node(
          "Activation", {maker.node("Activation", {h}, {{"kind", std::string("tanh")}})},
          {{"kind", std::string("hard_sigmoid")}, {"alpha", 0.4}, {"beta", 0.6}});
      std::string y = maker.node("Binary", {h, maker.constant({64})}, {{"kind", std::string("sub")}});
      y = maker.node("Binary", {maker.constant({1, 64}), y}, {{"kind", std::string("mul")}});
      y = maker.node("Binary", {y, pos}, {{"kind", std::string("div")}});
      y = maker.add(y, maker.node("Binary", {pos, maker.constant({64})},
                                  {{"kind", std::string("pow")}}));
      y = maker.add(y, h);
      maker.output(maker.dense(y, 64, 8));
      const ir::Graph& graph = maker.graph();
      auto exe = build(*cuda, graph, {batch_profile("x", 48, 32)}, c);
      ASSERT_NE(exe, nullptr) << a.kind;
      for (int64_t batch : {1, 32, 100}) {
        TensorMap inputs{{"x", random_tensor({batch, 48}, static_cast<unsigned>(batch + 3))}};
        const auto ref = evaluator_reference(graph, inputs);
        EXPECT_LE(rel_l2(run_on_device(*exe, graph, inputs), ref), c.tolerance)
            << c.name << " " << a.kind << " batch " << batch << ": " << exe->layer_precisions()[0];
      }
    }
  }
}

// Every ir::ActivationKind, with alpha / beta where the kind takes them.
const ActCase kEveryKind[] = {
    {"none", 0, 0},          {"relu", 0, 0},       {"leaky_relu", 0.1, 0},
    {"sigmoid", 0, 0},       {"tanh", 0, 0},       {"elu", 0.7, 0},
    {"selu", 1.6732632, 1.0507010},                {"hard_sigmoid", 0.2, 0.5},
    {"hard_swish", 0, 0},    {"softplus", 0, 0},   {"gelu_erf", 0, 0},
    {"gelu_tanh", 0, 0},     {"clip", -0.5, 0.8},  {"softplus_threshold", 2.0, 4.0},
    {"exp", 0, 0},           {"log", 0, 0},        {"neg", 0, 0},
    {"abs", 0, 0},           {"sqrt", 0, 0},       {"reciprocal", 0, 0},
    {"erf", 0, 0}};
static_assert(std::size(kEveryKind) == 21, "one case per ir::ActivationKind");

bool positive_domain(const std::string& kind) {
  return kind == "log" || kind == "sqrt" || kind == "reciprocal";
}

void fill_constant(ir::Graph& graph, const std::string& name, float lo, float hi, unsigned seed) {
  ir::Constant& c = graph.constants.at(name);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> values(c.data.size() / sizeof(float));
  for (float& v : values) v = dist(rng);
  c = ir::Constant::from_floats(c.dims, values);
}

// What inspect must say about a Dense layer whose epilogue is `kind`.
std::vector<std::string> expected_epilogues(const std::string& kind, const Case& c) {
  if (kind == "none") return {"cublasLt bias epilogue"};
  if (kind == "relu" || kind == "gelu_tanh") return {"cublasLt bias+" + kind + " epilogue"};
  if (kind == "gelu_erf" && (c.fp16 || c.bf16)) {
    return {"kernel:gelu_erf", "cublasLt bias+gelu_tanh epilogue (for gelu_erf)"};
  }
  return {"cublasLt bias epilogue + kernel:" + kind};
}

// Each kind as the Dense epilogue and as an Activation layer, in fp32 / fp16 / bf16 against
// the float64 evaluator. The layer graph runs 1, 7, 1023 and 4099 elements (the vectorized
// kernels' tails) from 16-byte aligned and unaligned device addresses (the scalar kernels).
TEST(CudaBackend, EveryActivationKindAsLayerAndAsDenseEpilogue) {
  SKIP_WITHOUT_GPU();
  for (const Case& c : {kCases[0], kCases[2], kCases[3]}) {
    for (const ActCase& a : kEveryKind) {
      const bool positive = positive_domain(a.kind);
      {
        GraphMaker maker(51);
        const std::string x = maker.input("x", {-1, 48});
        const std::string h = maker.dense(x, 48, 24);
        ir::Node& dense = maker.graph().nodes.back();
        dense.attributes["activation"] = std::string(a.kind);
        dense.attributes["alpha"] = a.alpha;
        dense.attributes["beta"] = a.beta;
        if (positive) {  // inputs in [0, 1): x W + b in [0.5, 3.4)
          fill_constant(maker.graph(), dense.inputs[1], 0.0f, 0.05f, 1);
          fill_constant(maker.graph(), dense.inputs[2], 0.5f, 1.0f, 2);
        } else {  // x W + b of about unit scale, where the kinds bend (and exp stays accurate)
          fill_constant(maker.graph(), dense.inputs[1], -0.25f, 0.25f, 1);
        }
        maker.output(h);
        const ir::Graph& graph = maker.graph();
        auto exe = build(*cuda, graph, {batch_profile("x", 48, 32)}, c);
        ASSERT_NE(exe, nullptr) << c.name << " " << a.kind;
        const std::string text = exe->layer_precisions()[0];
        bool named = false;
        for (const std::string& e : expected_epilogues(a.kind, c)) {
          named = named || text.find(e) != std::string::npos;
        }
        EXPECT_TRUE(named) << c.name << " " << a.kind << ": " << text;
        for (int64_t batch : {1, 7, 100}) {
          TensorMap inputs{{"x", random_tensor({batch, 48}, static_cast<unsigned>(batch + 5))}};
          if (positive) {
            for (float& v : inputs["x"].data) v = std::fabs(v);
          }
          const auto ref = evaluator_reference(graph, inputs);
          EXPECT_LE(rel_l2(run_on_device(*exe, graph, inputs), ref), c.tolerance)
              << c.name << " Dense epilogue " << a.kind << " batch " << batch << ": " << text;
        }
      }
      {
        GraphMaker maker(52);
        const std::string x = maker.input("x", {-1, 1});
        maker.output(maker.node("Activation", {x},
                                {{"kind", std::string(a.kind)}, {"alpha", a.alpha},
                                 {"beta", a.beta}}));
        const ir::Graph& graph = maker.graph();
        OptimizationProfile profile;
        ASSERT_TRUE(profile.set_dimensions("x", {{1, 1}, {64, 1}, {8192, 1}}).is_ok());
        auto exe = build(*cuda, graph, {profile}, c);
        ASSERT_NE(exe, nullptr) << c.name << " " << a.kind;
        for (int64_t batch : {1, 7, 1023, 4099}) {
          TensorMap inputs{{"x", random_tensor({batch, 1}, static_cast<unsigned>(batch))}};
          for (float& v : inputs["x"].data) v = positive ? std::fabs(v) * 3.0f + 0.1f : v * 3.0f;
          const auto ref = evaluator_reference(graph, inputs);
          for (size_t offset : {size_t{0}, size_t{1}}) {
            EXPECT_LE(rel_l2(run_on_device(*exe, graph, inputs, offset), ref), c.tolerance)
                << c.name << " Activation " << a.kind << " " << batch << " elements, offset "
                << offset;
          }
        }
      }
    }
  }
}

// Add / Mul on the vectorized paths (same shape, a bias row either side, a scalar) and the
// general strided one, with element counts that leave tails.
TEST(CudaBackend, BinaryFastPathsAndTails) {
  SKIP_WITHOUT_GPU();
  for (const Case& c : {kCases[0], kCases[2], kCases[3]}) {
    for (int64_t cols : {1, 7, 24, 1023}) {
      GraphMaker maker(61);
      const std::string x = maker.input("x", {-1, cols});
      const std::string same = maker.node("Binary", {x, x}, {{"kind", std::string("mul")}});
      const std::string row_b = maker.add(same, maker.constant({cols}));
      const std::string row_a =
          maker.node("Binary", {maker.constant({1, cols}), row_b}, {{"kind", std::string("sub")}});
      const std::string scalar =
          maker.node("Binary", {row_a, maker.constant({1})}, {{"kind", std::string("mul")}});
      // [B, C, 1] + [1, 1, 3]: an outer broadcast, the general strided path.
      maker.output(maker.add(maker.reshape(scalar, {-1, cols, 1}), maker.constant({1, 1, 3})));
      const ir::Graph& graph = maker.graph();
      OptimizationProfile profile;
      ASSERT_TRUE(profile.set_dimensions("x", {{1, cols}, {3, cols}, {64, cols}}).is_ok());
      auto exe = build(*cuda, graph, {profile}, c);
      ASSERT_NE(exe, nullptr) << c.name << " cols " << cols;
      for (int64_t batch : {1, 3, 17}) {
        TensorMap inputs{{"x", random_tensor({batch, cols}, static_cast<unsigned>(batch * cols))}};
        const auto ref = evaluator_reference(graph, inputs);
        for (size_t offset : {size_t{0}, size_t{1}}) {
          EXPECT_LE(rel_l2(run_on_device(*exe, graph, inputs, offset), ref), c.tolerance)
              << c.name << " batch " << batch << " cols " << cols << " offset " << offset;
        }
      }
    }
  }
}

// Loads the blob of `graph` built with `c` with every gelu_erf layer's epilogue set to
// `epilogue` and the timed tactics dropped (they were timed for the build's own choice).
Result<std::unique_ptr<backend::Executable>> load_with_epilogue(const backend::Backend& cuda,
                                                                const ir::Graph& graph,
                                                                const Case& c,
                                                                const std::string& epilogue) {
  BuilderConfig config;
  config.allow_fp16 = c.fp16;
  config.allow_bf16 = c.bf16;
  auto blob = cuda.compile(graph, {batch_profile("x", 256, 64)}, config);
  if (!blob.is_ok()) return blob.status();
  nlohmann::json json = nlohmann::json::parse(blob->begin(), blob->end());
  for (nlohmann::json& layer : json.at("layers")) {
    for (const ir::Node& node : graph.nodes) {
      if (node.name == layer.at("node").get<std::string>() &&
          node.get_string("activation", "") == "gelu_erf") {
        layer["epilogue"] = epilogue;
      }
    }
    layer["tactics"] = nlohmann::json::array();
  }
  const std::string text = json.dump();
  return cuda.load(graph, std::vector<uint8_t>(text.begin(), text.end()));
}

// The GELU tactic: gelu_erf layers on cuBLASLt's tanh-GELU epilogue in fp16 / bf16 stay within
// the tolerance and about as close to float64 as the exact path (GeluTanhBound in
// tests/ir/activation_test.cpp bounds the difference); fp32 plans refuse it.
TEST(CudaBackend, GeluTanhEpilogueTacticAccuracy) {
  SKIP_WITHOUT_GPU();
  GraphMaker maker(71);
  const std::string x = maker.input("x", {-1, 256});
  std::string h = maker.dense(x, 256, 1024);
  maker.graph().nodes.back().attributes["activation"] = std::string("gelu_erf");
  h = maker.dense(h, 1024, 1024);
  maker.graph().nodes.back().attributes["activation"] = std::string("gelu_erf");
  maker.output(maker.dense(h, 1024, 256));
  // Weights of variance 1/K keep every pre-activation at the input's scale (std 1.3 to 1.7),
  // where gelu_tanh and gelu_erf differ most.
  for (const ir::Node& node : maker.graph().nodes) {
    const auto k = static_cast<float>(maker.graph().constants.at(node.inputs[1]).dims[0]);
    const float a = std::sqrt(3.0f / k);
    fill_constant(maker.graph(), node.inputs[1], -a, a, 3);
  }
  const ir::Graph& graph = maker.graph();
  for (const Case& c : {kCases[2], kCases[3]}) {
    auto exact = load_with_epilogue(*cuda, graph, c, "exact");
    ASSERT_TRUE(exact.is_ok()) << exact.status().message();
    auto tanh = load_with_epilogue(*cuda, graph, c, "gelu_tanh");
    ASSERT_TRUE(tanh.is_ok()) << tanh.status().message();
    EXPECT_NE((*tanh)->layer_precisions()[0].find("cublasLt bias+gelu_tanh epilogue"),
              std::string::npos)
        << (*tanh)->layer_precisions()[0];
    EXPECT_NE((*exact)->layer_precisions()[0].find("kernel:gelu_erf"), std::string::npos)
        << (*exact)->layer_precisions()[0];
    for (int64_t batch : {1, 64, 300}) {
      TensorMap inputs{{"x", random_tensor({batch, 256}, static_cast<unsigned>(batch + 9))}};
      for (float& v : inputs["x"].data) v *= 3.0f;  // pre-activations well into both tails
      const auto ref = evaluator_reference(graph, inputs);
      const double exact_error = rel_l2(run_on_device(**exact, graph, inputs), ref);
      const double tanh_error = rel_l2(run_on_device(**tanh, graph, inputs), ref);
      EXPECT_LE(tanh_error, c.tolerance) << c.name << " batch " << batch;
      EXPECT_LE(tanh_error, std::max(2.0 * exact_error, 2e-3))
          << c.name << " batch " << batch << ": exact path " << exact_error;
      std::cout << "[ gelu tactic ] " << c.name << " batch " << batch << ": rel L2 exact "
                << exact_error << ", tanh epilogue " << tanh_error << "\n";
    }
  }
  auto fp32 = load_with_epilogue(*cuda, graph, kCases[0], "gelu_tanh");
  ASSERT_FALSE(fp32.is_ok());
  EXPECT_NE(fp32.status().message().find("fp16/bf16"), std::string::npos)
      << fp32.status().message();
}

// ScaleShift, Softmax (inner axis, last axis, coerce_2d log), LayerNorm (tiled scale/bias),
// Squeeze / Unsqueeze views and a gelu_erf Dense.
TEST(CudaBackend, NormalizationsSoftmaxAndViewsEveryPrecision) {
  SKIP_WITHOUT_GPU();
  for (const Case& c : kCases) {
    GraphMaker maker(31);
    const std::string x = maker.input("x", {-1, 4, 16});
    std::string h = maker.node("ScaleShift", {x, maker.constant({4}), maker.constant({4})},
                               {{"axis", int64_t{1}}});
    h = maker.node("Softmax", {h}, {{"axis", int64_t{1}}});
    // Normalizes 4x16 per row; the [16] scale tiles it (numpy broadcasting over [4, 16]).
    h = maker.node("LayerNorm", {h, maker.constant({16}), maker.constant({4, 16})},
                   {{"axis", int64_t{1}}, {"epsilon", 1e-5}});
    h = maker.node("Unsqueeze", {h}, {{"axes", std::vector<int64_t>{1}}});
    h = maker.node("Softmax", {h}, {{"axis", int64_t{2}}, {"coerce_2d", int64_t{1}},
                                    {"log", int64_t{1}}});
    h = maker.node("Squeeze", {h}, {{"axes", std::vector<int64_t>{1}}});
    h = maker.flatten(h, 1);
    h = maker.dense(h, 64, 96);
    maker.graph().nodes.back().attributes["activation"] = std::string("gelu_erf");
    h = maker.node("LayerNorm", {h, maker.constant({96})},
                   {{"axis", int64_t{1}}, {"epsilon", 1e-3}});
    h = maker.node("Softmax", {maker.dense(h, 96, 10)}, {{"axis", int64_t{-1}}});
    maker.output(h);
    const ir::Graph& graph = maker.graph();
    OptimizationProfile profile;
    ASSERT_TRUE(profile.set_dimensions("x", {{1, 4, 16}, {13, 4, 16}, {256, 4, 16}}).is_ok());
    auto exe = build(*cuda, graph, {profile}, c);
    ASSERT_NE(exe, nullptr);
    for (int64_t batch : {1, 13, 200}) {
      TensorMap inputs{{"x", random_tensor({batch, 4, 16}, static_cast<unsigned>(batch))}};
      for (float& v : inputs["x"].data) v *= 3.0f;
      const auto ref = evaluator_reference(graph, inputs);
      EXPECT_LE(rel_l2(run_on_device(*exe, graph, inputs), ref), c.tolerance)
          << c.name << " batch " << batch;
    }
  }
}

// peers.py's 'wide' shape scaled down (GELU between wide layers), exact and tanh GELU.
TEST(CudaBackend, GeluMlpEveryPrecision) {
  SKIP_WITHOUT_GPU();
  for (const char* gelu : {"gelu_erf", "gelu_tanh"}) {
    for (const Case& c : kCases) {
      GraphMaker maker(41);
      const std::string x = maker.input("x", {-1, 256});
      std::string h = maker.dense(x, 256, 1024);
      maker.graph().nodes.back().attributes["activation"] = std::string(gelu);
      h = maker.dense(h, 1024, 1024);
      maker.graph().nodes.back().attributes["activation"] = std::string(gelu);
      maker.output(maker.dense(h, 1024, 256));
      const ir::Graph& graph = maker.graph();
      auto exe = build(*cuda, graph, {batch_profile("x", 256, 64)}, c);
      ASSERT_NE(exe, nullptr);
      for (int64_t batch : {1, 64, 300}) {
        TensorMap inputs{{"x", random_tensor({batch, 256}, static_cast<unsigned>(batch + 7))}};
        const auto ref = evaluator_reference(graph, inputs);
        EXPECT_LE(rel_l2(run_on_device(*exe, graph, inputs), ref), c.tolerance)
            << gelu << " " << c.name << " batch " << batch << ": " << exe->layer_precisions()[0];
      }
    }
  }
}

TEST(CudaBackend, ContextsOnSeveralThreads) {
  SKIP_WITHOUT_GPU();
  GraphMaker maker(9);
  const std::string x = maker.input("x", {-1, 64});
  maker.output(maker.dense(maker.dense(x, 64, 64, true, true), 64, 16));
  const ir::Graph& graph = maker.graph();
  auto exe = build(*cuda, graph, {batch_profile("x", 64, 256)}, kCases[0]);
  ASSERT_NE(exe, nullptr);
  std::vector<double> errors(4, 1.0);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < errors.size(); ++i) {
    threads.emplace_back([&, i] {
      double worst = 0.0;
      for (int64_t batch : {256, 3, 100}) {
        TensorMap inputs{{"x", random_tensor({batch, 64}, static_cast<unsigned>(i * 100 + batch))}};
        const auto ref = reference(graph, inputs);
        worst = std::max(worst, rel_l2(run_on_device(*exe, graph, inputs), ref.begin()->second));
      }
      errors[i] = worst;
    });
  }
  for (std::thread& t : threads) t.join();
  for (double e : errors) EXPECT_LE(e, 1e-5);
}

// Contexts made and dropped on some threads while others capture and instantiate their graphs:
// a context that destroyed its own cuBLASLt handle synchronized the device there, which crashed
// the driver in another thread's graph instantiation about once in a thousand lifetimes.
TEST(CudaBackend, ContextLifetimesOverlapOtherThreadsGraphs) {
  SKIP_WITHOUT_GPU();
  GraphMaker maker(10);
  const std::string x = maker.input("x", {-1, 32});
  maker.output(maker.dense(maker.dense(x, 32, 32, true, true), 32, 8));
  const ir::Graph& graph = maker.graph();
  auto exe = build(*cuda, graph, {batch_profile("x", 32, 64)}, kCases[0]);
  ASSERT_NE(exe, nullptr);
  const TensorMap inputs{{"x", random_tensor({48, 32}, 5)}};
  const std::vector<double> ref = reference(graph, inputs).begin()->second;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  std::vector<double> errors(8, 0.0);
  std::vector<int> lifetimes(errors.size(), 0);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < errors.size(); ++i) {
    threads.emplace_back([&, i] {
      while (std::chrono::steady_clock::now() < until) {
        errors[i] = std::max(errors[i], rel_l2(run_on_device(*exe, graph, inputs), ref));
        ++lifetimes[i];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  int total = 0;
  for (int n : lifetimes) total += n;
  std::cout << "[ lifetimes ] " << total << " contexts on " << threads.size() << " threads\n";
  for (size_t i = 0; i < errors.size(); ++i) {
    EXPECT_LE(errors[i], 1e-5) << "thread " << i;
    EXPECT_GT(lifetimes[i], 0) << "thread " << i;
  }
}

// Blob refusals happen before any device work, so these run without a GPU too.
TEST(CudaBackendBlob, OldVersionAndUnknownEpilogueAreRefused) {
  auto cuda = backend::find_backend("cuda");
  ASSERT_TRUE(cuda.is_ok()) << cuda.status().message();
  GraphMaker maker(81);
  const std::string x = maker.input("x", {-1, 8});
  maker.output(maker.dense(x, 8, 4));
  const ir::Graph& graph = maker.graph();
  const std::string name = graph.nodes[0].name;
  auto load = [&](const std::string& text) {
    return (*cuda)->load(graph, std::vector<uint8_t>(text.begin(), text.end()));
  };
  const std::string old_blob =
      R"({"format": "mlprt.cuda", "version": 1, "precision": "fp16", "workspace_bytes": 0,
          "fused_max_rows": 0, "layers": [{"node": ")" + name + R"(", "tactics": []}]})";
  auto old = load(old_blob);
  ASSERT_FALSE(old.is_ok());
  EXPECT_EQ(old.status().code(), StatusCode::kVersionMismatch);
  for (const char* part : {"cuda blob version 1", "reads version 2", "rebuild"}) {
    EXPECT_NE(old.status().message().find(part), std::string::npos) << old.status().message();
  }
  // A blob of `version` whose one layer record has `keys` besides its node and tactics: refused
  // as corrupt, the message holding `part`.
  auto expect_refused = [&](int version, const std::string& keys, const std::string& part) {
    const std::string text =
        R"({"format": "mlprt.cuda", "version": )" + std::to_string(version) +
        R"(, "precision": "fp16", "workspace_bytes": 0, "fused_max_rows": 0, )" +
        R"("layers": [{"node": ")" + name + "\", " + keys + R"(, "tactics": []}]})";
    auto loaded = load(text);
    ASSERT_FALSE(loaded.is_ok()) << keys;
    EXPECT_EQ(loaded.status().code(), StatusCode::kCorruptData) << keys;
    EXPECT_NE(loaded.status().message().find(part), std::string::npos)
        << loaded.status().message();
  };
  expect_refused(2, R"("epilogue": "gelu_sigmoid")", "allowed: exact, gelu_tanh");
  expect_refused(4, R"("epilogue": "exact", "weights": "mk")", "allowed: kn, nk");
  expect_refused(4, R"("epilogue": "exact", "kernel": "cutlass")", "allowed: cublaslt, fused_tc");
  expect_refused(4, R"("epilogue": "exact", "kernel": "fused_tc")", "fused_us");
}

// The fused kernel as one layer's own tactic (a narrow head after a wide layer), forced on the
// head (the builder takes it only where it timed faster): float64's numbers in fp16 and bf16 at
// row counts that are no multiple of a tile; inspect says so; an fp32 layer and a wide one are
// refused.
TEST(CudaBackend, FusedLayerKernelMatchesFloat64) {
  SKIP_WITHOUT_GPU();
  GraphMaker maker(73);
  const std::string x = maker.input("x", {-1, 40});
  std::string h = maker.dense(x, 40, 1024, true, true);
  maker.output(maker.dense(h, 1024, 10));
  const ir::Graph& graph = maker.graph();
  const std::string head = graph.nodes.back().name;
  auto load_fused = [&](bool fp16, bool bf16, int64_t n_index) {
    BuilderConfig config;
    config.allow_fp16 = fp16;
    config.allow_bf16 = bf16;
    OptimizationProfile profile;
    EXPECT_TRUE(profile.set_dimensions("x", {{1, 40}, {4096, 40}, {65537, 40}}).is_ok());
    auto blob = cuda->compile(graph, {profile}, config);
    EXPECT_TRUE(blob.is_ok()) << blob.status().message();
    nlohmann::json json = nlohmann::json::parse(blob->begin(), blob->end());
    nlohmann::json& layer = json.at("layers").at(static_cast<size_t>(n_index));
    layer["kernel"] = "fused_tc";
    layer["fused_us"] = 1.0;
    layer["cublaslt_us"] = 2.0;
    const std::string text = json.dump();
    return cuda->load(graph, std::vector<uint8_t>(text.begin(), text.end()));
  };
  for (const bool fp16 : {true, false}) {
    auto exe = load_fused(fp16, !fp16, 1);
    ASSERT_TRUE(exe.is_ok()) << exe.status().message();
    EXPECT_NE((*exe)->layer_precisions()[1].find("fused tensor-core kernel for this layer"),
              std::string::npos)
        << (*exe)->layer_precisions()[1];
    std::string notes;
    for (const std::string& line : (*exe)->tactic_notes()) notes += line + "\n";
    EXPECT_NE(notes.find("fused tensor-core layer '" + head + "': chosen"), std::string::npos)
        << notes;
    for (int64_t batch : {1, 7, 1000, 65537}) {
      TensorMap inputs{{"x", random_tensor({batch, 40}, static_cast<unsigned>(batch + 9))}};
      const std::vector<double> ref = reference(graph, inputs).begin()->second;
      EXPECT_LE(rel_l2(run_on_device(**exe, graph, inputs), ref), 2e-2)
          << (fp16 ? "fp16" : "bf16") << " batch " << batch;
    }
  }
  auto fp32 = load_fused(false, false, 1);
  ASSERT_FALSE(fp32.is_ok());
  EXPECT_NE(fp32.status().message().find("fp16 / bf16"), std::string::npos)
      << fp32.status().message();
  auto wide = load_fused(true, false, 0);
  ASSERT_FALSE(wide.is_ok());
  EXPECT_NE(wide.status().message().find("1024 outputs"), std::string::npos)
      << wide.status().message();
}

// The [N, K] weight tactic, forced on every layer (the builder takes it only where it timed
// faster): same numbers as float64 in each tensor-core precision, inspect says so, and an fp32
// layer refuses it.
TEST(CudaBackend, WeightsStoredNkMatchFloat64) {
  SKIP_WITHOUT_GPU();
  GraphMaker maker(72);
  const std::string x = maker.input("x", {-1, 96});
  std::string h = maker.dense(x, 96, 200, true, true);
  maker.graph().nodes.back().attributes["activation"] = std::string("gelu_erf");
  maker.output(maker.dense(h, 200, 40));
  const ir::Graph& graph = maker.graph();
  // Every layer's W [N, K], its algorithm cuBLASLt's heuristic at load (tactics dropped).
  auto load_nk = [&](const Case& c) {
    BuilderConfig config;
    config.allow_fp16 = c.fp16;
    config.allow_bf16 = c.bf16;
    config.allow_tf32 = c.tf32;
    auto blob = cuda->compile(graph, {batch_profile("x", 96, 64)}, config);
    EXPECT_TRUE(blob.is_ok()) << blob.status().message();
    nlohmann::json json = nlohmann::json::parse(blob->begin(), blob->end());
    json["version"] = 4;
    for (nlohmann::json& layer : json.at("layers")) {
      layer["weights"] = "nk";
      layer["tactics"] = nlohmann::json::array();
    }
    const std::string text = json.dump();
    return cuda->load(graph, std::vector<uint8_t>(text.begin(), text.end()));
  };
  for (const Case& c : kCases) {
    auto exe = load_nk(c);
    if (std::string(c.name) == "fp32") {
      ASSERT_FALSE(exe.is_ok());
      EXPECT_NE(exe.status().message().find("[N, K]"), std::string::npos) << exe.status().message();
      continue;
    }
    ASSERT_TRUE(exe.is_ok()) << c.name << ": " << exe.status().message();
    EXPECT_NE((*exe)->layer_precisions()[0].find("W stored [N, K]"), std::string::npos)
        << (*exe)->layer_precisions()[0];
    for (int64_t batch : {1, 7, 64, 300}) {
      TensorMap inputs{{"x", random_tensor({batch, 96}, static_cast<unsigned>(batch + 3))}};
      const std::vector<double> ref = evaluator_reference(graph, inputs);  // knows gelu_erf
      EXPECT_LE(rel_l2(run_on_device(**exe, graph, inputs), ref), c.tolerance)
          << c.name << " batch " << batch << ": " << (*exe)->layer_precisions()[0];
    }
  }
}

TEST(CudaBackend, HardwareMismatchSaysWhatDiffersAndHowToRebuild) {
  SKIP_WITHOUT_GPU();
  const Status s = cuda->check_hardware("NVIDIA A100 sm_80 cudart 12000 cublasLt 120000");
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("compute capability sm_80 vs"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("rebuild"), std::string::npos) << s.message();
  EXPECT_TRUE(cuda->check_hardware(cuda->hardware_id()).is_ok());
}

// The tutorial's path through the public API: host memory (pageable and pinned), the
// context's own stream and a caller's stream, and device memory.
TEST(CudaRuntime, HostAndDeviceIoThroughThePublicApi) {
  SKIP_WITHOUT_GPU();
  GraphMaker maker(4);
  const std::string x = maker.input("x", {-1, 784});
  maker.output(maker.dense(maker.dense(x, 784, 32, true, true), 32, 10));
  const ir::Graph graph = maker.graph();
  Network network(std::make_unique<ir::Graph>(graph));
  BuilderConfig config;
  config.backend = "cuda";
  config.profiles = {batch_profile("x", 784, 32)};
  auto plan = build_serialized_engine(network, config);
  ASSERT_TRUE(plan.is_ok()) << plan.status().message();
  auto engine = Engine::load(plan->bytes, "seed.plan");
  ASSERT_TRUE(engine.is_ok()) << engine.status().message();
  EXPECT_EQ((*engine)->info().backend, "cuda");
  auto context = (*engine)->create_execution_context();
  ASSERT_TRUE(context.is_ok());
  ExecutionContext& ctx = **context;
  const std::string out_name = graph.outputs[0].name;
  for (int64_t batch : {32, 5}) {
    TensorMap inputs{{"x", random_tensor({batch, 784}, static_cast<unsigned>(batch + 40))}};
    const auto ref = reference(graph, inputs).begin()->second;
    ASSERT_TRUE(ctx.set_tensor_location(TensorLocation::kHost).is_ok());
    ASSERT_TRUE(ctx.set_input_shape("x", {batch, 784}).is_ok());
    // Pageable host memory, the context's own stream.
    ASSERT_TRUE(ctx.set_tensor_address("x", inputs["x"].data.data()).is_ok());
    ASSERT_TRUE(ctx.set_tensor_address(out_name, nullptr).is_ok());
    ASSERT_TRUE(ctx.enqueue().is_ok());
    auto view = ctx.output(out_name);
    ASSERT_TRUE(view.is_ok());
    auto span = view->as<float>();
    EXPECT_LE(rel_l2(std::vector<float>(span.begin(), span.end()), ref), 1e-5);
    // Pinned host memory on a caller's stream: asynchronous.
    float* pinned_in = nullptr;
    float* pinned_out = nullptr;
    ASSERT_EQ(cudaMallocHost(&pinned_in, inputs["x"].data.size() * 4), cudaSuccess);
    ASSERT_EQ(cudaMallocHost(&pinned_out, ref.size() * 4), cudaSuccess);
    std::copy(inputs["x"].data.begin(), inputs["x"].data.end(), pinned_in);
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
    ASSERT_TRUE(ctx.set_tensor_address("x", pinned_in).is_ok());
    ASSERT_TRUE(ctx.set_tensor_address(out_name, pinned_out).is_ok());
    ASSERT_TRUE(ctx.enqueue(stream).is_ok());
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    EXPECT_LE(rel_l2(std::vector<float>(pinned_out, pinned_out + ref.size()), ref), 1e-5);
    // Device memory.
    void* d_in = nullptr;
    void* d_out = nullptr;
    ASSERT_EQ(cudaMalloc(&d_in, inputs["x"].data.size() * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&d_out, ref.size() * 4), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(d_in, pinned_in, inputs["x"].data.size() * 4, cudaMemcpyHostToDevice),
              cudaSuccess);
    ASSERT_TRUE(ctx.set_tensor_location(TensorLocation::kDevice).is_ok());
    ASSERT_TRUE(ctx.set_tensor_address("x", d_in).is_ok());
    ASSERT_TRUE(ctx.set_tensor_address(out_name, d_out).is_ok());
    ASSERT_TRUE(ctx.enqueue(stream).is_ok());
    std::vector<float> device_result(ref.size());
    ASSERT_EQ(cudaMemcpyAsync(device_result.data(), d_out, ref.size() * 4, cudaMemcpyDeviceToHost,
                              stream),
              cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    EXPECT_LE(rel_l2(device_result, ref), 1e-5);
    cudaStreamDestroy(stream);
    cudaFree(d_in);
    cudaFree(d_out);
    cudaFreeHost(pinned_in);
    cudaFreeHost(pinned_out);
  }
  EXPECT_TRUE(set_device(0).is_ok());
  EXPECT_FALSE(set_device(1000).is_ok());
}

}  // namespace
}  // namespace mlprt::testing
