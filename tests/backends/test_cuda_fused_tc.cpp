// The fused tensor-core MLP (fused_mlp_tc.h): which graphs it takes and why not, its recorded
// per-profile choice, the kernel against float64 at row counts that are no multiple of any tile
// (1, 7, 1000, 65537), widths that are no multiple of the MMA tile, every activation, residual
// layers, fp16, bf16, tf32 and fp32 (3xTF32), and whole engines through the builder's tactic. The GPU parts
// skip, saying why, where no CUDA device is present (CI); the host parts run everywhere.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "backends/cuda/fused_mlp_rr.h"
#include "backends/cuda/fused_mlp_wg.h"
#include "backends/cuda/fused_tc_plan.h"
#include "cpu_test_graphs.h"
#include "ir/evaluator.h"
#include "cuda_skip.h"
#include "mlprt/mlprt.h"

namespace mlprt::testing {
namespace {

using backend::cuda::ElemType;
using backend::cuda::FusedTcChoice;
using backend::cuda::FusedTcParams;
using backend::cuda::FusedTcProfile;
using backend::cuda::LayerPrecisions;
using backend::cuda::Precision;

struct LayerDef {
  int64_t n;
  std::string act;
  double alpha = 0.0;
  double beta = 0.0;
};

// x[-1, k] -> Dense(+bias, act) per `layers` -> y.
ir::Graph make_chain(int64_t k, const std::vector<LayerDef>& layers, unsigned seed = 3) {
  GraphMaker maker(seed);
  std::string t = maker.input("x", {-1, k});
  int64_t width = k;
  for (const LayerDef& l : layers) {
    t = maker.dense(t, width, l.n, true, false);
    ir::Node& node = maker.graph().nodes.back();
    node.attributes["activation"] = l.act;
    node.attributes["alpha"] = l.alpha;
    node.attributes["beta"] = l.beta;
    width = l.n;
  }
  maker.output(t);
  return maker.graph();
}

// ResMLP's block as the passes leave it: x[-1, k] -> Dense(k -> w, relu), then per block
// Dense(w -> w, + its own input as the residual) -> `act` node, then Dense(w -> out).
ir::Graph make_residual_chain(int64_t k, int64_t w, int blocks, const std::string& act,
                              int64_t out, unsigned seed = 5) {
  GraphMaker maker(seed);
  std::string t = maker.dense(maker.input("x", {-1, k}), k, w, true, true);
  for (int b = 0; b < blocks; ++b) {
    const std::string h = maker.dense(t, w, w, true, false);
    maker.graph().nodes.back().inputs.push_back(t);  // y = h W + b + h
    t = maker.node(act, {h});
  }
  maker.output(maker.dense(t, w, out, true, false));
  return maker.graph();
}

std::string reason_for(const ir::Graph& graph, Precision precision) {
  LayerPrecisions precisions;
  precisions.base = precision;
  std::vector<const ir::Node*> chain;
  return backend::cuda::fused_tc_ineligible(graph, precisions, chain);
}

TEST(CudaFusedTc, EligibleChainsAndReasonsOtherwise) {
  const ir::Graph tutorial = make_chain(784, {{32, "relu"}, {10, "none"}});
  EXPECT_EQ(reason_for(tutorial, Precision::kFp16), "");
  EXPECT_EQ(reason_for(tutorial, Precision::kBf16), "");
  EXPECT_EQ(reason_for(tutorial, Precision::kFp32), "");
  EXPECT_EQ(reason_for(tutorial, Precision::kTf32), "");
  // fp32 / tf32 engines: the TF32 kernel (fused_mlp_f32.h) takes widths up to 64.
  const std::string fp32_wide =
      reason_for(make_chain(64, {{128, "relu"}, {16, "none"}}), Precision::kFp32);
  EXPECT_NE(fp32_wide.find("128 wide; the fused kernel takes (in fp32) widths up to 64"),
            std::string::npos)
      << fp32_wide;
  const ir::Graph mnist = make_chain(784, {{1024, "relu"}, {1024, "relu"}, {10, "none"}});
  const std::string wide = reason_for(mnist, Precision::kFp16);
  EXPECT_NE(wide.find("1024 wide"), std::string::npos) << wide;
  EXPECT_NE(wide.find("256"), std::string::npos) << wide;
  // 17 layers: one more than the kernel takes.
  std::vector<LayerDef> deep(17, LayerDef{16, "relu"});
  EXPECT_NE(reason_for(make_chain(16, deep), Precision::kFp16).find("up to 16"),
            std::string::npos);
  // A branch (residual add) is not a chain.
  GraphMaker maker(1);
  const std::string x = maker.input("x", {-1, 16});
  const std::string h = maker.dense(x, 16, 16, true, true);
  maker.output(maker.add(h, x));
  const std::string branch = reason_for(maker.graph(), Precision::kFp16);
  EXPECT_NE(branch.find("Add"), std::string::npos) << branch;
  // Residual layers that add their own input, their activation a node of its own: fp16 / bf16
  // chains up to 128 wide whose input is no wider than their layers.
  const ir::Graph resmlp = make_residual_chain(64, 64, 2, "Relu", 16);
  EXPECT_EQ(reason_for(resmlp, Precision::kFp16), "");
  EXPECT_EQ(reason_for(resmlp, Precision::kBf16), "");
  std::vector<const ir::Node*> links;
  LayerPrecisions fp16;
  fp16.base = Precision::kFp16;
  ASSERT_EQ(backend::cuda::fused_tc_ineligible(resmlp, fp16, links), "");
  ASSERT_EQ(links.size(), 6u);  // 4 Dense, 2 Relu
  EXPECT_EQ(links[2]->op, "Relu");
  EXPECT_NE(reason_for(resmlp, Precision::kFp32).find("adds no residual input"),
            std::string::npos);
  EXPECT_NE(reason_for(make_residual_chain(64, 200, 1, "Relu", 16), Precision::kFp16)
                .find("wider than 128"),
            std::string::npos);
  EXPECT_NE(reason_for(make_residual_chain(784, 64, 1, "Relu", 10), Precision::kFp16)
                .find("784-wide input"),
            std::string::npos);
  // The residual of another layer's input (pre-activation blocks) is not in registers.
  GraphMaker pre(2);
  const std::string x0 = pre.input("x", {-1, 32});
  const std::string h0 = pre.dense(x0, 32, 32, true, true);
  const std::string h1 = pre.dense(h0, 32, 32, true, false);
  pre.graph().nodes.back().inputs.push_back(x0);
  pre.output(pre.dense(h1, 32, 8, true, false));
  EXPECT_NE(reason_for(pre.graph(), Precision::kFp16).find("other than its own input"),
            std::string::npos);
  // A second activation after a Dense that has one is no link of the chain.
  GraphMaker twice(3);
  const std::string r = twice.relu(twice.dense(twice.input("x", {-1, 16}), 16, 16, true, true));
  twice.output(twice.dense(r, 16, 4, true, false));
  EXPECT_NE(reason_for(twice.graph(), Precision::kFp16).find("(Relu) is not a Dense layer"),
            std::string::npos)
      << reason_for(twice.graph(), Precision::kFp16);
  LayerPrecisions mixed;
  mixed.base = Precision::kFp16;
  mixed.by_node["a"] = Precision::kFp32;
  std::vector<const ir::Node*> chain;
  EXPECT_NE(backend::cuda::fused_tc_ineligible(tutorial, mixed, chain).find("mixes"),
            std::string::npos);
}

TEST(CudaFusedTc, ChoiceRoundTripsAndSelectsByRowRange) {
  FusedTcChoice choice;
  choice.eligible = true;
  choice.profiles.push_back(FusedTcProfile{0, 1, 64, 256, 5.0, 9.0, true});
  choice.profiles.push_back(FusedTcProfile{1, 257, 4096, 65536, 30.0, 20.0, false});
  auto back = FusedTcChoice::from_json(choice.to_json());
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_EQ(back->to_json().dump(), choice.to_json().dump());
  EXPECT_TRUE(back->runs_fused(1));
  EXPECT_TRUE(back->runs_fused(256));
  EXPECT_FALSE(back->runs_fused(257));
  EXPECT_FALSE(back->runs_fused(0));
  const std::vector<std::string> lines = back->describe();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("profile 0 (rows 1..256, timed at 64): chosen"), std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find("not chosen"), std::string::npos) << lines[1];
  FusedTcChoice no;
  no.reason = "the engine computes in fp32";
  EXPECT_FALSE(no.runs_fused(1));
  EXPECT_EQ(no.describe().at(0), "fused tensor-core MLP: not eligible: the engine computes in fp32");
  nlohmann::json bad = choice.to_json();
  bad["profiles"][0]["rows_min"] = 300;  // past rows_max
  EXPECT_FALSE(FusedTcChoice::from_json(bad).is_ok());
  EXPECT_FALSE(FusedTcChoice::from_json(nlohmann::json{{"eligible", "yes"}}).is_ok());
}

// float64 evaluation of the graph's one output (every activation: ir::evaluate_graph).
std::vector<double> float64_output(const ir::Graph& graph, const HostTensor& x) {
  std::map<std::string, ir::RefTensor> inputs;
  inputs["x"] = ir::RefTensor{x.dims, std::vector<double>(x.data.begin(), x.data.end())};
  auto values = ir::evaluate_graph(graph, inputs);
  EXPECT_TRUE(values.is_ok()) << values.status().message();
  if (!values.is_ok()) return {};
  return values->at(graph.outputs[0].name).values;
}

// 16-bit values as their bits on the host.
uint16_t to_bits(float v, ElemType type) {
  if (type == ElemType::kF16) return static_cast<__half_raw>(__float2half_rn(v)).x;
  return static_cast<__nv_bfloat16_raw>(__float2bfloat16_rn(v)).x;
}
float from_bits(uint16_t bits, ElemType type) {
  if (type == ElemType::kF16) {
    __half_raw raw;
    raw.x = bits;
    return __half2float(__half(raw));
  }
  __nv_bfloat16_raw raw;
  raw.x = bits;
  return __bfloat162float(__nv_bfloat16(raw));
}

using Launcher = cudaError_t (*)(const FusedTcParams&, const void*, ElemType, void*, ElemType,
                                 int64_t, cudaStream_t);

// Runs the kernel (`launch`: launch_fused_tc's choice, or one kernel) on `rows` random rows
// (input and output in `io`) and returns rel L2 against the float64 evaluation of the graph.
double kernel_error(const ir::Graph& graph, Precision precision, ElemType io, int64_t rows,
                    Launcher launch = backend::cuda::launch_fused_tc) {
  LayerPrecisions precisions;
  precisions.base = precision;
  std::vector<const ir::Node*> chain;
  EXPECT_EQ(backend::cuda::fused_tc_ineligible(graph, precisions, chain), "");
  FusedTcParams params;
  std::vector<backend::cuda::DeviceBuffer> buffers;
  const Status made =
      backend::cuda::make_fused_tc(graph, chain, precision, false, params, buffers, nullptr);
  EXPECT_TRUE(made.is_ok()) << made.message();
  const int64_t k = params.layers[0].k;
  const int64_t n = params.layers[params.num_layers - 1].n;
  const HostTensor x = random_tensor({rows, k}, static_cast<unsigned>(rows));
  const size_t es = io == ElemType::kF32 ? 4 : 2;
  std::vector<uint16_t> x16(x.data.size());
  for (size_t i = 0; es == 2 && i < x.data.size(); ++i) x16[i] = to_bits(x.data[i], io);
  void* dx = nullptr;
  void* dy = nullptr;
  EXPECT_EQ(cudaMalloc(&dx, x.data.size() * es), cudaSuccess);
  EXPECT_EQ(cudaMalloc(&dy, static_cast<size_t>(rows * n) * es), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(dx, es == 4 ? static_cast<const void*>(x.data.data()) : x16.data(),
                       x.data.size() * es, cudaMemcpyHostToDevice),
            cudaSuccess);
  EXPECT_EQ(launch(params, dx, io, dy, io, rows, nullptr), cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> y(static_cast<size_t>(rows * n));
  std::vector<uint16_t> y16(y.size());
  EXPECT_EQ(cudaMemcpy(es == 4 ? static_cast<void*>(y.data()) : y16.data(), dy, y.size() * es,
                       cudaMemcpyDeviceToHost),
            cudaSuccess);
  for (size_t i = 0; es == 2 && i < y.size(); ++i) y[i] = from_bits(y16[i], io);
  cudaFree(dx);
  cudaFree(dy);
  // The reference reads the input as the kernel did (16-bit I/O rounds it first).
  HostTensor xr = x;
  for (size_t i = 0; es == 2 && i < xr.data.size(); ++i) xr.data[i] = from_bits(x16[i], io);
  return rel_l2(y, float64_output(graph, xr));
}

// The standard's bound on rel L2 against float64 for an engine's precision.
double tolerance(Precision precision) {
  switch (precision) {
    case Precision::kFp32: return 1e-5;
    case Precision::kTf32: return 1e-3;
    default: return 2e-2;
  }
}

// `large`: the 65537-row cases only; else the others (small enough for compute-sanitizer).
void check_kernel_cases(bool large) {
  struct Case {
    std::string what;
    ir::Graph graph;
    Precision precision;
    ElemType io;
    std::vector<int64_t> rows;
  };
  std::vector<Case> cases;
  cases.push_back({"tcnn 64-64x4-16 fp16", make_chain(64, {{64, "relu"}, {64, "relu"}, {64, "relu"},
                                                            {64, "relu"}, {16, "none"}}),
                   Precision::kFp16, ElemType::kF16, {1, 7, 1000, 65537}});
  cases.push_back({"tcnn128 64-128x4-16 bf16 fp32 io",
                   make_chain(64, {{128, "relu"}, {128, "relu"}, {128, "relu"}, {128, "relu"},
                                   {16, "none"}}),
                   Precision::kBf16, ElemType::kF32, {1, 7, 1000, 65537}});
  // fp32 rows read straight into the first layer's fragments (an input narrower than its
  // padding), and T rows at width 128, each at one- and two-tile rows.
  cases.push_back({"60-64x3-16 fp16 fp32 io",
                   make_chain(60, {{64, "relu"}, {64, "relu"}, {64, "relu"}, {16, "none"}}),
                   Precision::kFp16, ElemType::kF32, {1, 7, 1000, 65537}});
  cases.push_back({"tcnn128 64-128x4-16 fp16",
                   make_chain(64, {{128, "relu"}, {128, "relu"}, {128, "relu"}, {128, "relu"},
                                   {16, "none"}}),
                   Precision::kFp16, ElemType::kF16, {1, 7, 1000, 65537}});
  cases.push_back({"tutorial 784-32-10 fp16 fp32 io",
                   make_chain(784, {{32, "relu"}, {10, "none"}}), Precision::kFp16,
                   ElemType::kF32, {1, 7, 1000, 65537}});
  cases.push_back({"tutorial 784-32-10 fp16 io", make_chain(784, {{32, "relu"}, {10, "none"}}),
                   Precision::kFp16, ElemType::kF16, {1, 7, 1000, 65537}});
  // Inputs wider than the chain, streamed by the first layer (fused_rr_stream.cuh): fp32 rows at
  // width 128, a width that leaves a 16-column tail of the 32-column loads, and a single layer
  // that is also the output; an odd width (no 16-byte rows) runs the staged kernel instead.
  cases.push_back({"odd wide input 301-64-64-5 bf16",
                   make_chain(301, {{64, "gelu_erf"}, {64, "relu"}, {5, "none"}}),
                   Precision::kBf16, ElemType::kBF16, {1, 7, 1000, 65537}});
  cases.push_back({"streamed 200-128-16 fp16 fp32 io",
                   make_chain(200, {{128, "relu"}, {16, "none"}}), Precision::kFp16,
                   ElemType::kF32, {1, 7, 1000, 65537}});
  cases.push_back({"streamed 520-24-24-3 fp16",
                   make_chain(520, {{24, "none"}, {24, "tanh"}, {3, "none"}}), Precision::kFp16,
                   ElemType::kF16, {1, 7, 1000}});
  cases.push_back({"one streamed layer 784-10 fp16", make_chain(784, {{10, "sigmoid"}}),
                   Precision::kFp16, ElemType::kF16, {1, 7, 1000}});
  // 64-wide chains with padded outputs (40 -> 48, 20 -> 32) and activations other than relu,
  // fp16 and bf16, at one- and two-tile rows.
  cases.push_back({"64-64-64-40 fp16 gelu / tanh",
                   make_chain(64, {{64, "gelu_erf"}, {64, "tanh"}, {40, "none"}}),
                   Precision::kFp16, ElemType::kF16, {1, 7, 1000, 65537}});
  cases.push_back({"64-64-64-20 bf16 relu / sigmoid",
                   make_chain(64, {{64, "relu"}, {64, "sigmoid"}, {20, "none"}}),
                   Precision::kBf16, ElemType::kBF16, {1, 7, 1000, 65537}});
  // Narrow chains run the register-resident kernel: its input modes are T rows copied as they
  // are (above: fp16 io), fp32 rows converted on chip (tcnn128 fp32 io) and element loads (an
  // input width that is not a multiple of 4).
  cases.push_back({"narrow 30-48-8 fp16 fp32 io", make_chain(30, {{48, "gelu_erf"}, {8, "none"}}),
                   Precision::kFp16, ElemType::kF32, {1, 7, 1000, 65537}});
  cases.push_back({"odd widths 37-200-256-130-3 bf16",
                   make_chain(37, {{200, "gelu_erf"}, {256, "tanh"}, {130, "sigmoid"},
                                   {3, "leaky_relu", 0.1}}),
                   Precision::kBf16, ElemType::kBF16, {1, 7, 1000}});
  // Every other activation, two per chain (short chains: no overflow of fp16's range).
  const std::vector<std::pair<LayerDef, LayerDef>> pairs = {
      {{40, "gelu_tanh"}, {40, "elu", 1.0}},
      {{40, "selu", 1.6733, 1.0507}, {40, "hard_swish"}},
      {{40, "softplus"}, {40, "hard_sigmoid", 0.2, 0.5}},
      {{40, "clip", -0.5, 0.5}, {40, "abs"}},
      {{40, "neg"}, {40, "erf"}},
      {{40, "softplus_threshold", 2.0, 3.0}, {40, "sigmoid"}},
  };
  // Residual layers (ResMLP blocks, the activation a node of its own), in 64- and 128-wide and
  // padded widths, one- and two-tile rows, T rows and fp32 rows.
  cases.push_back({"residual 64-64-(64 res relu)x2-16 fp16",
                   make_residual_chain(64, 64, 2, "Relu", 16), Precision::kFp16, ElemType::kF16,
                   {1, 7, 1000, 65537}});
  cases.push_back({"residual 40-(40 res tanh)-8 bf16 fp32 io",
                   make_residual_chain(40, 40, 1, "Tanh", 8), Precision::kBf16, ElemType::kF32,
                   {1, 7, 1000, 65537}});
  cases.push_back({"residual 96-128-(128 res sigmoid)x3-10 fp16 fp32 io",
                   make_residual_chain(96, 128, 3, "Sigmoid", 10), Precision::kFp16,
                   ElemType::kF32, {1, 7, 1000, 65537}});
  for (const auto& [a, b] : pairs) {
    cases.push_back({"activations fp16 " + a.act + "+" + b.act, make_chain(24, {a, b, {8, "none"}}), Precision::kFp16,
                     ElemType::kF16, {1, 7, 1000}});
  }
  // fp32 and tf32 engines (fused_mlp_f32.h): 3xTF32 at fp32's bound and TF32 at tf32's; the
  // first layer always streams its input (784: 25 chunks; 520: a 16-column tail; 64: two
  // chunks), and an input width that is not a multiple of 4 is read element by element.
  cases.push_back({"tutorial 784-32-10 fp32", make_chain(784, {{32, "relu"}, {10, "none"}}),
                   Precision::kFp32, ElemType::kF32, {1, 7, 1000, 65537}});
  cases.push_back({"tutorial 784-32-10 tf32", make_chain(784, {{32, "relu"}, {10, "none"}}),
                   Precision::kTf32, ElemType::kF32, {1, 7, 1000, 65537}});
  cases.push_back({"tcnn 64-64x4-16 fp32",
                   make_chain(64, {{64, "relu"}, {64, "relu"}, {64, "relu"}, {64, "relu"},
                                   {16, "none"}}),
                   Precision::kFp32, ElemType::kF32, {1, 7, 1000, 65537}});
  cases.push_back({"520-24-24-3 fp32", make_chain(520, {{24, "none"}, {24, "tanh"}, {3, "none"}}),
                   Precision::kFp32, ElemType::kF32, {1, 7, 1000}});
  cases.push_back({"one layer 784-10 fp32", make_chain(784, {{10, "sigmoid"}}), Precision::kFp32,
                   ElemType::kF32, {1, 7, 1000}});
  cases.push_back({"element loads 37-48-20-3 fp32",
                   make_chain(37, {{48, "gelu_erf"}, {20, "leaky_relu", 0.1}, {3, "none"}}),
                   Precision::kFp32, ElemType::kF32, {1, 7, 1000}});
  cases.push_back({"element loads 37-48-3 tf32", make_chain(37, {{48, "gelu_tanh"}, {3, "none"}}),
                   Precision::kTf32, ElemType::kF32, {1, 7, 1000}});
  for (const Case& c : cases) {
    for (int64_t rows : c.rows) {
      if ((rows > 4096) != large) continue;
      EXPECT_LE(kernel_error(c.graph, c.precision, c.io, rows), tolerance(c.precision))
          << c.what << " rows " << rows;
    }
  }
}

TEST(CudaFusedTc, KernelMatchesFloat64AtOddRowCounts) {
  SKIP_WITHOUT_GPU();
  check_kernel_cases(false);
}

TEST(CudaFusedTc, KernelMatchesFloat64At65537Rows) {
  SKIP_WITHOUT_GPU();
  check_kernel_cases(true);
}

// 64-wide chains on each kernel that runs them, whatever launch_fused_tc picks at these rows:
// the register-resident one and, on a compute capability 9.0 GPU, the warpgroup one, with rows
// of the compute type and fp32 rows. 65537 rows give the warpgroups two tiles each and a
// partial last tile.
TEST(CudaFusedTc, SixtyFourWideChainsOnEachKernel) {
  SKIP_WITHOUT_GPU();
  struct Case {
    std::string what;
    ir::Graph graph;
    Precision precision;
  };
  const std::vector<Case> cases = {
      {"tcnn 64-64x4-16 fp16",
       make_chain(64, {{64, "relu"}, {64, "relu"}, {64, "relu"}, {64, "relu"}, {16, "none"}}),
       Precision::kFp16},
      {"56-64-64-40 fp16 gelu / tanh",
       make_chain(56, {{64, "gelu_erf"}, {64, "tanh"}, {40, "none"}}), Precision::kFp16},
      {"64-60-64-20 bf16 relu / sigmoid",
       make_chain(64, {{60, "relu"}, {64, "sigmoid"}, {20, "none"}}), Precision::kBf16},
      {"residual 64-64-(64 res relu)x2-16 fp16", make_residual_chain(64, 64, 2, "Relu", 16),
       Precision::kFp16},
      {"64-64-64 bf16 tanh output 64 wide", make_chain(64, {{64, "relu"}, {64, "tanh"}}),
       Precision::kBf16},
      {"one layer 64-32 fp16", make_chain(64, {{32, "sigmoid"}}), Precision::kFp16},
  };
  int device = 0;
  cudaDeviceProp prop{};
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  ASSERT_EQ(cudaGetDeviceProperties(&prop, device), cudaSuccess);
  const bool hopper = prop.major == 9 && prop.minor == 0;
  for (const Case& c : cases) {
    const ElemType t = c.precision == Precision::kFp16 ? ElemType::kF16 : ElemType::kBF16;
    for (const ElemType io : {t, ElemType::kF32}) {  // rows of the compute type, fp32 rows
      const char* rows_of = io == ElemType::kF32 ? " fp32 io" : " T io";
      for (const int64_t rows : {1, 7, 1000, 65537}) {
        EXPECT_LE(kernel_error(c.graph, c.precision, io, rows, backend::cuda::launch_fused_rr),
                  tolerance(c.precision))
            << c.what << rows_of << " rows " << rows << " (register-resident kernel)";
        if (hopper) {
          EXPECT_LE(kernel_error(c.graph, c.precision, io, rows, backend::cuda::launch_fused_wg),
                    tolerance(c.precision))
              << c.what << rows_of << " rows " << rows << " (warpgroup kernel)";
        }
      }
    }
  }
  if (!hopper) {
    GTEST_SKIP() << "the warpgroup kernel's cases need a compute capability 9.0 GPU (this one is "
                 << prop.major << "." << prop.minor << "); the register-resident ones ran";
  }
}

// Whole engines: the build times the fused kernel per profile and records it; every row count
// matches float64 whichever path runs it; inspect's notes say what was chosen or why not.
TEST(CudaFusedTc, EnginesRecordTheChoiceAndMatchFloat64) {
  SKIP_WITHOUT_GPU();
  struct Case {
    ir::Graph graph;
    Precision precision;
    const char* note;
  };
  std::vector<Case> cases;
  cases.push_back({make_chain(64, {{64, "relu"}, {64, "relu"}, {64, "relu"}, {16, "none"}}),
                   Precision::kFp16,
                   "fused tensor-core MLP: profile 0 (rows 1..65537, timed at 4096)"});
  cases.push_back({make_chain(784, {{32, "relu"}, {10, "none"}}), Precision::kFp32,
                   "fused tensor-core MLP: profile 0 (rows 1..65537, timed at 4096)"});
  cases.push_back({make_chain(784, {{32, "relu"}, {10, "none"}}), Precision::kTf32,
                   "fused tensor-core MLP: profile 0 (rows 1..65537, timed at 4096)"});
  cases.push_back({make_chain(64, {{128, "relu"}, {16, "none"}}), Precision::kFp32,
                   "not eligible: node"});
  cases.push_back({make_chain(48, {{300, "relu"}, {16, "none"}}), Precision::kFp16, "300 wide"});
  cases.push_back({make_residual_chain(64, 64, 2, "Relu", 16), Precision::kFp16,
                   "fused tensor-core MLP: profile 0 (rows 1..65537, timed at 4096)"});
  for (const Case& c : cases) {
    const int64_t in = static_cast<int64_t>(c.graph.constants.at(c.graph.nodes[0].inputs[1]).dims[0]);
    Network network(std::make_unique<ir::Graph>(c.graph));
    BuilderConfig config;
    config.backend = "cuda";
    config.allow_fp16 = c.precision == Precision::kFp16;
    config.allow_tf32 = c.precision == Precision::kTf32;
    OptimizationProfile profile;
    ASSERT_TRUE(profile.set_dimensions("x", {{1, in}, {4096, in}, {65537, in}}).is_ok());
    config.profiles = {profile};
    auto built = build_serialized_engine(network, config);
    ASSERT_TRUE(built.is_ok()) << built.status().message();
    auto engine = Engine::load(built->bytes, "fused");
    ASSERT_TRUE(engine.is_ok()) << engine.status().message();
    std::string notes;
    for (const std::string& line : (*engine)->info().tactics) notes += line + "\n";
    EXPECT_NE(notes.find(c.note), std::string::npos) << notes;
    for (int64_t rows : {1, 7, 1000, 65537}) {
      const HostTensor x = random_tensor({rows, in}, static_cast<unsigned>(rows) + 5);
      auto context = (*engine)->create_execution_context();
      ASSERT_TRUE(context.is_ok());
      ASSERT_TRUE((*context)->set_input_shape("x", {rows, in}).is_ok());
      std::vector<float> input = x.data;
      ASSERT_TRUE((*context)->set_tensor_address("x", input.data()).is_ok());
      const Status run = (*context)->enqueue();
      ASSERT_TRUE(run.is_ok()) << run.message();
      const std::string out_name = (*engine)->io_tensors().back().name;
      auto out = (*context)->output(out_name);
      ASSERT_TRUE(out.is_ok());
      const std::span<const float> y = out->as<float>();
      EXPECT_LE(rel_l2(std::vector<float>(y.begin(), y.end()), float64_output(c.graph, x)),
                tolerance(c.precision))
          << notes << "rows " << rows;
    }
  }
}

}  // namespace
}  // namespace mlprt::testing
