// The data-movement and batched-product layer ops (Transpose, Slice, ReduceMean, MatMul; see
// ir/data_ops.h) on every backend against the float64 IR evaluator: any permutation, negative
// steps, non-adjacent reduced axes, batched products with broadcast batch axes (uniform and
// not), transposed reads / writes, bias + activation epilogue, both operands activations.
// The cuda cases skip, saying why, where there is no GPU.

#include <gtest/gtest.h>

#include <algorithm>

#include "cpu_test_graphs.h"
#include "cuda_skip.h"
#include "ir/evaluator.h"

namespace mlprt::testing {
namespace {

// One profile covering the inputs' shapes, as the builder always hands a backend for a graph
// with dynamic inputs (resolve_profiles refuses to build one without): every dynamic axis ranges
// over [min_rows, 2 * its size in `inputs`] with opt at that size; static inputs get none.
std::vector<OptimizationProfile> profiles_for(const ir::Graph& graph, const TensorMap& inputs,
                                              int64_t min_rows = 1) {
  OptimizationProfile profile;
  bool dynamic = false;
  for (const ir::TensorInfo& input : graph.inputs) {
    const Dims& opt = inputs.at(input.name).dims;
    Dims min = opt, max = opt;
    bool input_dynamic = false;
    for (size_t i = 0; i < input.shape.size(); ++i) {
      if (input.shape[i].is_static()) continue;
      input_dynamic = true;
      min[i] = std::min(min_rows, opt[i]);
      max[i] = std::max<int64_t>(2 * opt[i], 1);
    }
    if (!input_dynamic) continue;
    dynamic = true;
    const Status status = profile.set_dimensions(input.name, {min, opt, max});
    EXPECT_TRUE(status.is_ok()) << status.message();
  }
  if (!dynamic) return {};
  return {profile};
}

// Runs `graph` on `backend` and compares its single output with the IR's float64 evaluation.
void expect_backend_matches(const std::string& backend, const ir::Graph& graph,
                            const TensorMap& inputs, double tolerance = 1e-5) {
  auto exe = load_on(backend, graph, profiles_for(graph, inputs));
  ASSERT_TRUE(exe);
  auto context = exe->create_context();
  ASSERT_TRUE(context.is_ok()) << context.status().message();
  TensorMap outputs;
  const Status status = run_context(**context, graph, inputs, outputs);
  ASSERT_TRUE(status.is_ok()) << status.message();
  std::map<std::string, ir::RefTensor> ref_inputs;
  for (const auto& [name, t] : inputs) {
    ref_inputs[name] = ir::RefTensor{t.dims, std::vector<double>(t.data.begin(), t.data.end())};
  }
  auto ref = ir::evaluate_graph(graph, ref_inputs);
  ASSERT_TRUE(ref.is_ok()) << ref.status().message();
  for (const ir::TensorInfo& out : graph.outputs) {
    const ir::RefTensor& want = ref->at(out.name);
    EXPECT_EQ(outputs.at(out.name).dims, want.dims) << out.name;
    EXPECT_LE(rel_l2(outputs.at(out.name).data, want.values), tolerance)
        << backend << ": output " << out.name << " of shape " << to_string(want.dims);
  }
}

using Attrs = std::map<std::string, ir::AttributeValue>;

struct DataCase {
  const char* name;
  ir::Graph (*make)();
  TensorMap (*inputs)();
};

ir::Graph transpose_graph() {
  GraphMaker g;
  const auto x = g.input("x", {-1, 3, 4, 5});
  g.output(g.node("Transpose", {x}, Attrs{{"perm", std::vector<int64_t>{2, 0, 3, 1}}}));
  return g.graph();
}
ir::Graph slice_graph() {
  GraphMaker g;
  const auto x = g.input("x", {-1, 6, 10});
  g.output(g.node("Slice", {x}, Attrs{{"starts", std::vector<int64_t>{-1, 1}},
                                      {"ends", std::vector<int64_t>{INT64_MIN, 9}},
                                      {"axes", std::vector<int64_t>{1, 2}},
                                      {"steps", std::vector<int64_t>{-2, 3}}}));
  return g.graph();
}
ir::Graph reduce_adjacent_graph() {
  GraphMaker g;
  const auto x = g.input("x", {-1, 6, 8});
  g.output(g.node("ReduceMean", {x}, Attrs{{"axes", std::vector<int64_t>{1}},
                                           {"keepdims", int64_t{0}}}));
  return g.graph();
}
ir::Graph reduce_general_graph() {
  GraphMaker g;
  const auto x = g.input("x", {-1, 3, 4, 5});
  g.output(g.node("ReduceMean", {x}, Attrs{{"axes", std::vector<int64_t>{0, 2}}}));
  return g.graph();
}
// Token mixing as the passes leave it: A^T read, bias, GELU; then a transposed write.
ir::Graph token_mixing_graph() {
  GraphMaker g;
  const auto x = g.input("x", {-1, 6, 8});
  const auto h = g.node("MatMul", {x, g.constant({6, 5}), g.constant({5})},
                        Attrs{{"transpose_a", int64_t{1}}, {"activation", std::string("gelu_erf")}});
  g.output(g.node("MatMul", {h, g.constant({5, 6}), g.constant({6})},
                  Attrs{{"transpose_y", int64_t{1}}}));
  return g.graph();
}
// Both operands activations, B read transposed, batch axes broadcast in the middle (offsets
// not uniform: one product at a time).
ir::Graph two_activations_graph() {
  GraphMaker g;
  const auto a = g.input("a", {2, 1, 3, 4});
  const auto b = g.input("b", {3, 5, 4});
  g.output(g.node("MatMul", {a, b}, Attrs{{"transpose_b", int64_t{1}}}));
  return g.graph();
}
// An N-D constant second operand broadcast over the batch (ONNX test_matmul_4d's shape).
ir::Graph batched_constant_graph() {
  GraphMaker g;
  const auto a = g.input("a", {-1, 2, 3, 4});
  g.output(g.node("MatMul", {a, g.constant({1, 2, 4, 3})}));
  return g.graph();
}
// An activation without a bias: the epilogue is the activation kernel alone.
ir::Graph activation_no_bias_graph() {
  GraphMaker g;
  const auto a = g.input("a", {-1, 2, 3, 4});
  g.output(g.node("MatMul", {a, g.constant({1, 2, 4, 3})},
                  Attrs{{"activation", std::string("sigmoid")}}));
  return g.graph();
}

// Residual inputs (ir::fuse_residual_adds): a Dense with y = x W + b + r, one without bias
// (empty bias slot), and token mixing whose transposed write takes x as residual.
ir::Graph residual_dense_graph() {
  GraphMaker g;
  const auto x = g.input("x", {-1, 6, 8});
  const auto r = g.relu(x);
  const auto y = g.node("Dense", {x, g.constant({8, 8}), g.constant({8}), r},
                        Attrs{{"activation", std::string("none")}});
  g.output(g.node("Dense", {y, g.constant({8, 8}), "", y}, Attrs{{"activation", std::string("none")}}));
  return g.graph();
}
ir::Graph residual_token_mixing_graph(int64_t tokens, int64_t channels, int64_t hidden) {
  GraphMaker g;
  const auto x = g.input("x", {-1, tokens, channels});
  const auto h = g.node("MatMul", {x, g.constant({tokens, hidden}), g.constant({hidden})},
                        Attrs{{"transpose_a", int64_t{1}}, {"activation", std::string("gelu_erf")}});
  g.output(g.node("MatMul", {h, g.constant({hidden, tokens}), g.constant({tokens}), x},
                  Attrs{{"transpose_y", int64_t{1}}}));
  return g.graph();
}
// Large enough for the cpu loops to split over threads (cpu_simd.h) and the MatMul into row
// blocks: layer norm, exact GELU (the vectorized erf), residual token mixing, mean over tokens.
ir::Graph large_mixer_graph() {
  GraphMaker g;
  const auto x = g.input("x", {-1, 64, 96});
  const auto n = g.node("LayerNorm", {x, g.constant({96}), g.constant({96})},
                        Attrs{{"axis", int64_t{-1}}, {"epsilon", 1e-5}});
  const auto h = g.node("MatMul", {n, g.constant({64, 48}), g.constant({48})},
                        Attrs{{"transpose_a", int64_t{1}}, {"activation", std::string("gelu_erf")}});
  const auto t = g.node("MatMul", {h, g.constant({48, 64}), g.constant({64}), x},
                        Attrs{{"transpose_y", int64_t{1}}});
  const auto a = g.node("Activation", {t}, Attrs{{"kind", std::string("gelu_erf")}});
  const auto s = g.add(a, t);
  g.output(g.node("ReduceMean", {s}, Attrs{{"axes", std::vector<int64_t>{1}},
                                           {"keepdims", int64_t{0}}}));
  return g.graph();
}
// Sizes past the cuda kernels' tiles: a mean over 70 tokens of 100 channels (more than one
// block of outputs and of reduced slices), token mixing whose sizes are not multiples of 32.
ir::Graph reduce_tokens_graph() {
  GraphMaker g;
  const auto x = g.input("x", {-1, 70, 100});
  g.output(g.node("ReduceMean", {x}, Attrs{{"axes", std::vector<int64_t>{1}},
                                           {"keepdims", int64_t{0}}}));
  return g.graph();
}
// Batch 1: one outer row, split into column blocks of whole cache lines across the team (the
// last block partial).
ir::Graph reduce_tokens_batch1_graph() {
  GraphMaker g;
  const auto x = g.input("x", {-1, 196, 120});
  g.output(g.node("ReduceMean", {x}, Attrs{{"axes", std::vector<int64_t>{1}},
                                           {"keepdims", int64_t{0}}}));
  return g.graph();
}
ir::Graph token_mixing_odd_graph() {
  GraphMaker g;
  const auto x = g.input("x", {-1, 40, 48});
  const auto h = g.node("MatMul", {x, g.constant({40, 37}), g.constant({37})},
                        Attrs{{"transpose_a", int64_t{1}}, {"activation", std::string("gelu_erf")}});
  g.output(g.node("MatMul", {h, g.constant({37, 40}), g.constant({40})},
                  Attrs{{"transpose_y", int64_t{1}}, {"activation", std::string("tanh")}}));
  return g.graph();
}
// LayerNorm rows of `width` (the cuda kernels keep rows up to 1024 in registers, one warp each,
// loading float4s when the width is a multiple of 4).
template <int kWidth>
ir::Graph layer_norm_graph() {
  GraphMaker g;
  const auto x = g.input("x", {-1, 3, kWidth});
  g.output(g.node("LayerNorm", {x, g.constant({kWidth}), g.constant({kWidth})},
                  Attrs{{"axis", int64_t{-1}}, {"epsilon", 1e-5}}));
  return g.graph();
}

const DataCase kCases[] = {
    {"residual_dense", residual_dense_graph,
     [] { return TensorMap{{"x", random_tensor({5, 6, 8}, 10)}}; }},
    {"residual_token_mixing", [] { return residual_token_mixing_graph(6, 8, 5); },
     [] { return TensorMap{{"x", random_tensor({7, 6, 8}, 11)}}; }},
    {"residual_token_mixing_batch1", [] { return residual_token_mixing_graph(40, 96, 24); },
     [] { return TensorMap{{"x", random_tensor({1, 40, 96}, 12)}}; }},
    {"large_mixer", large_mixer_graph,
     [] { return TensorMap{{"x", random_tensor({6, 64, 96}, 13)}}; }},
    {"transpose", transpose_graph, [] { return TensorMap{{"x", random_tensor({2, 3, 4, 5}, 1)}}; }},
    {"slice", slice_graph, [] { return TensorMap{{"x", random_tensor({3, 6, 10}, 2)}}; }},
    {"reduce_adjacent", reduce_adjacent_graph,
     [] { return TensorMap{{"x", random_tensor({4, 6, 8}, 3)}}; }},
    {"reduce_general", reduce_general_graph,
     [] { return TensorMap{{"x", random_tensor({2, 3, 4, 5}, 4)}}; }},
    {"token_mixing", token_mixing_graph,
     [] { return TensorMap{{"x", random_tensor({7, 6, 8}, 5)}}; }},
    {"two_activations", two_activations_graph,
     [] {
       return TensorMap{{"a", random_tensor({2, 1, 3, 4}, 6)}, {"b", random_tensor({3, 5, 4}, 7)}};
     }},
    {"batched_constant", batched_constant_graph,
     [] { return TensorMap{{"a", random_tensor({3, 2, 3, 4}, 8)}}; }},
    {"activation_no_bias", activation_no_bias_graph,
     [] { return TensorMap{{"a", random_tensor({3, 2, 3, 4}, 16)}}; }},
    {"reduce_tokens", reduce_tokens_graph,
     [] { return TensorMap{{"x", random_tensor({3, 70, 100}, 10)}}; }},
    {"reduce_tokens_batch1", reduce_tokens_batch1_graph,
     [] { return TensorMap{{"x", random_tensor({1, 196, 120}, 17)}}; }},
    {"token_mixing_odd", token_mixing_odd_graph,
     [] { return TensorMap{{"x", random_tensor({5, 40, 48}, 11)}}; }},
    {"layer_norm_37", layer_norm_graph<37>,
     [] { return TensorMap{{"x", random_tensor({5, 3, 37}, 15)}}; }},
    {"layer_norm_40", layer_norm_graph<40>,
     [] { return TensorMap{{"x", random_tensor({5, 3, 40}, 12)}}; }},
    {"layer_norm_512", layer_norm_graph<512>,
     [] { return TensorMap{{"x", random_tensor({5, 3, 512}, 13)}}; }},
    {"layer_norm_1100", layer_norm_graph<1100>,
     [] { return TensorMap{{"x", random_tensor({2, 3, 1100}, 14)}}; }},
};

class DataLayers : public ::testing::TestWithParam<DataCase> {};

TEST_P(DataLayers, CpuMatchesFloat64) {
  expect_backend_matches("cpu", GetParam().make(), GetParam().inputs());
}

TEST_P(DataLayers, CudaMatchesFloat64) {
  SKIP_WITHOUT_GPU();
  expect_backend_matches("cuda", GetParam().make(), GetParam().inputs());
}

INSTANTIATE_TEST_SUITE_P(Ops, DataLayers, ::testing::ValuesIn(kCases),
                         [](const auto& case_info) { return std::string(case_info.param.name); });

TEST(DataLayers, EmptyBatchThroughTokenMixing) {
  // Batch 0 within a profile that allows it (min 0, opt 7).
  const TensorMap inputs{{"x", random_tensor({0, 6, 8}, 9)}};
  auto exe = load_on("cpu", token_mixing_graph(),
                     profiles_for(token_mixing_graph(), {{"x", random_tensor({7, 6, 8}, 9)}}, 0));
  ASSERT_TRUE(exe);
  auto context = exe->create_context();
  ASSERT_TRUE(context.is_ok());
  TensorMap outputs;
  const Status status = run_context(**context, token_mixing_graph(), inputs, outputs);
  ASSERT_TRUE(status.is_ok()) << status.message();
  EXPECT_EQ(outputs.begin()->second.dims, (Dims{0, 6, 8}));
}

TEST(DataLayers, BadPermutationIsRefusedNamingTheNode) {
  GraphMaker g;
  const auto x = g.input("x", {2, 3});
  g.output(g.node("Transpose", {x}, Attrs{{"perm", std::vector<int64_t>{0, 0}}}));
  auto shapes = ir::infer_shapes(g.graph(), {{"x", {2, 3}}});
  ASSERT_FALSE(shapes.is_ok());
  EXPECT_NE(shapes.status().message().find("is not a permutation"), std::string::npos)
      << shapes.status().message();
  EXPECT_NE(shapes.status().message().find("Transpose_0"), std::string::npos);
}

TEST(DataLayers, MismatchedInnerSizesAreRefused) {
  GraphMaker g;
  const auto a = g.input("a", {2, 3, 4});
  const auto b = g.input("b", {2, 5, 6});
  g.output(g.node("MatMul", {a, b}));
  auto shapes = ir::infer_shapes(g.graph(), {{"a", {2, 3, 4}}, {"b", {2, 5, 6}}});
  ASSERT_FALSE(shapes.is_ok());
  EXPECT_NE(shapes.status().message().find("inner sizes 4 and 5"), std::string::npos)
      << shapes.status().message();
}

}  // namespace
}  // namespace mlprt::testing
