// The cuda backend on the GPU against the float64 reference: every precision, the layer ops,
// device and host I/O through the public API, several contexts on several threads. Skipped,
// saying why, where no CUDA device is present (CI).

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <thread>

#include "backends/registry.h"
#include "ir/evaluator.h"
#include "cpu_test_graphs.h"
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

// Runs `exe` on device memory on a stream and returns the graph's single output.
std::vector<float> run_on_device(const backend::Executable& exe, const ir::Graph& graph,
                                 const TensorMap& inputs) {
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
    EXPECT_EQ(cudaMalloc(&p, t.data.size() * 4), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, t.data.data(), t.data.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
    io.inputs[name] = p;
    allocations.push_back(p);
  }
  const std::string& out_name = graph.outputs[0].name;
  const size_t out_n = static_cast<size_t>(*volume(shapes->at(out_name)));
  void* out = nullptr;
  EXPECT_EQ(cudaMalloc(&out, std::max<size_t>(out_n, 1) * 4), cudaSuccess);
  EXPECT_EQ(cudaMemset(out, 0xff, std::max<size_t>(out_n, 1) * 4), cudaSuccess);  // NaN poison
  allocations.push_back(out);
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
    {"clip", -0.5, 0.8},    {"none", 0, 0}};

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
