// Every Dense tactic of the cpu backend (whole, 1-thread, row split, unfused; fp32, bf16 and
// fp16 where the CPU has them; fp32 on our own AVX-512 kernel where the CPU has AVX-512)
// and the whole-chain row split against the float64 reference, at several batches (1, odd,
// fewer rows than threads) and thread counts 1..4.

#include <omp.h>

#include <nlohmann/json.hpp>

#include "backends/cpu/cpu_dense.h"
#include "backends/cpu/cpu_executable.h"
#include "backends/cpu/cpu_isa.h"
#include "cpu_test_graphs.h"

namespace mlprt::testing {
namespace {

using backend::cpu::CpuExecutable;
using backend::cpu::DensePrecision;
using backend::cpu::DenseTactic;
using backend::cpu::WeightLayout;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::map<std::string, std::vector<DenseTactic>> tactics_for(const ir::Graph& graph,
                                                            const DenseTactic& tactic) {
  std::map<std::string, std::vector<DenseTactic>> out;
  for (const ir::Node& node : graph.nodes) {
    if (node.op != "Dense") continue;
    DenseTactic runtime;
    runtime.precision = tactic.precision;
    out[node.name] = {runtime};
    if (tactic.m >= 0) out[node.name].push_back(tactic);
  }
  return out;
}

double run_rel_l2(const CpuExecutable& exe, const ir::Graph& graph, int64_t batch, int threads) {
  auto context = exe.create_context();
  EXPECT_TRUE(context.is_ok()) << context.status().message();
  if (!context.is_ok()) return 1e9;
  EXPECT_TRUE((*context)->set_num_threads(threads).is_ok());
  const TensorMap inputs = {{"x", random_tensor({batch, 24}, static_cast<unsigned>(batch))}};
  TensorMap outputs;
  const Status status = run_context(**context, graph, inputs, outputs);
  EXPECT_TRUE(status.is_ok()) << status.message();
  if (!status.is_ok()) return 1e9;
  const auto expected = reference(graph, inputs);
  double worst = 0;
  for (const auto& [name, ref] : expected) worst = std::max(worst, rel_l2(outputs.at(name).data, ref));
  return worst;
}

std::vector<DensePrecision> precisions() {
  std::vector<DensePrecision> out = {DensePrecision::kFp32};
  if (backend::cpu::cpu_has_bf16()) out.push_back(DensePrecision::kBf16);
  if (backend::cpu::fp16_gemm_available()) out.push_back(DensePrecision::kFp16);
  return out;
}

TEST(CpuTactics, EveryTacticMatchesTheReference) {
  const ir::Graph graph = row_wise_graph();
  for (DensePrecision precision : precisions()) {
    const double limit = precision == DensePrecision::kFp32 ? 1e-5 : 2e-2;
    for (int64_t batch : {1, 3, 7, 64}) {
      for (int threads : {1, 2, 3, 4}) {
        std::vector<DenseTactic> list = {
            DenseTactic{-1, precision, WeightLayout::kPacked, 0},
            DenseTactic{batch, precision, WeightLayout::kPacked, 0},
            DenseTactic{batch, precision, WeightLayout::kPlain, 0},
            DenseTactic{batch, precision, WeightLayout::kPacked, 1},
            DenseTactic{batch, precision, WeightLayout::kPacked, 1, false, false},
            DenseTactic{batch, precision, WeightLayout::kPacked, threads, true},
            DenseTactic{batch, precision, WeightLayout::kPlain, threads, true, false},
        };
        if (precision == DensePrecision::kFp32 && backend::cpu::f32_gemm_available()) {
          // Our own fp32 kernel: on the team, on one thread, row-split.
          for (const auto& [t, split] : {std::pair{0, false}, std::pair{1, false},
                                          std::pair{threads, true}}) {
            DenseTactic own{batch, precision, WeightLayout::kPacked, t, split};
            own.kernel = backend::cpu::DenseKernel::kMlprt;
            list.push_back(own);
          }
        }
        for (const DenseTactic& tactic : list) {
          // Primitives are planned for the engine's count; contexts run with `threads`.
          auto exe = CpuExecutable::create(graph, tactics_for(graph, tactic), threads);
          ASSERT_TRUE(exe.is_ok()) << exe.status().message();
          const std::string what = backend::cpu::describe(tactic) + " batch " +
                                   std::to_string(batch) + " threads " + std::to_string(threads);
          EXPECT_LE(run_rel_l2(**exe, graph, batch, threads), limit) << what;
          // A batch the fixed tactics were not made for runs on the runtime-M primitive.
          EXPECT_LE(run_rel_l2(**exe, graph, batch + 2, threads), limit) << what << " + 2";
        }
      }
    }
  }
}

TEST(CpuTactics, WholeChainRowSplitMatchesTheReference) {
  const ir::Graph graph = row_wise_graph();
  for (DensePrecision precision : precisions()) {
    const double limit = precision == DensePrecision::kFp32 ? 1e-5 : 2e-2;
    // oneDNN's 1-thread primitives in the blocks, and (fp32) our own kernel.
    for (const bool own : {false, true}) {
      if (own && (precision != DensePrecision::kFp32 || !backend::cpu::f32_gemm_available())) {
        continue;
      }
      for (int64_t batch : {2, 3, 7, 64}) {
        for (int threads : {1, 2, 3, 4}) {
          DenseTactic split{batch, precision, WeightLayout::kPacked, threads, true};
          if (own) split.kernel = backend::cpu::DenseKernel::kMlprt;
          auto exe = CpuExecutable::create(graph, tactics_for(graph, split), threads, {batch});
          ASSERT_TRUE(exe.is_ok()) << exe.status().message();
          EXPECT_TRUE(contains((*exe)->layer_precisions()[0], "whole chain row-split"));
          if (own) {
            EXPECT_TRUE(contains((*exe)->layer_precisions()[0], "mlprt:avx512_f32"));
          }
          const std::string what = std::string(own ? "mlprt " : "") + "chain batch " +
                                   std::to_string(batch) + " threads " + std::to_string(threads);
          EXPECT_LE(run_rel_l2(**exe, graph, batch, threads), limit) << what;
          // Fewer rows than threads, and a row count the chain was not planned for.
          EXPECT_LE(run_rel_l2(**exe, graph, 1, threads), limit) << what << " at 1 row";
          EXPECT_LE(run_rel_l2(**exe, graph, batch + 1, threads), limit) << what << " + 1";
          // From inside an enclosing OpenMP region the chain runs on one thread, still right.
          double inside = 0;
#pragma omp parallel num_threads(2)
          {
#pragma omp single
            inside = run_rel_l2(**exe, graph, batch, threads);
          }
          EXPECT_LE(inside, limit) << what << " inside a parallel region";
        }
      }
    }
  }
}

// The row split relies on OpenMP running a region opened inside another one on one thread
// (oneDNN's own regions in the block primitives, or a nested split): check the runtime does.
TEST(CpuTactics, NestedRegionsRunOnOneThread) {
  int nested_threads = 0;
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    {
#pragma omp parallel num_threads(2)
      {
#pragma omp single
        nested_threads = omp_get_num_threads();
      }
    }
  }
  EXPECT_EQ(nested_threads, 1);
}

TEST(CpuTactics, NonRowWiseGraphIgnoresTheChain) {
  // A reshape to [2B, 4] puts two rows of the batch into one: the chain must not split it.
  GraphMaker g(3);
  const auto x = g.input("x", {-1, 24});
  auto h = g.dense(x, 24, 8, true, true);
  g.output(g.dense(g.reshape(h, {-1, 4}), 4, 3));
  const ir::Graph& graph = g.graph();
  const DenseTactic split{8, DensePrecision::kFp32, WeightLayout::kPacked, 2, true};
  auto exe = CpuExecutable::create(graph, tactics_for(graph, split), 2, {8});
  ASSERT_TRUE(exe.is_ok()) << exe.status().message();
  EXPECT_LE(run_rel_l2(**exe, graph, 8, 2), 1e-5);
}

TEST(CpuTactics, CompileRecordsRowSplitAndChainChoices) {
  const ir::Graph graph = row_wise_graph();
  OptimizationProfile profile;
  ASSERT_TRUE(profile.set_dimensions("x", {{1, 24}, {64, 24}, {128, 24}}).is_ok());
  BuilderConfig config;
  config.num_threads = 2;
  auto backend = backend::find_backend("cpu");
  ASSERT_TRUE(backend.is_ok());
  auto blob = (*backend)->compile(graph, {profile}, config);
  ASSERT_TRUE(blob.is_ok()) << blob.status().message();
  const auto json = nlohmann::json::parse(blob->begin(), blob->end());
  EXPECT_EQ(json.at("version"), 3);
  ASSERT_TRUE(json.contains("chain_rows"));
  for (const auto& layer : json.at("layers")) {
    const auto& opt = layer.at("opt")[0];
    EXPECT_TRUE(opt.contains("row_split") && opt.contains("fused")) << opt.dump();
    // A chain at 64 rows runs every Dense layer on its row split.
    if (!json.at("chain_rows").empty()) {
      EXPECT_TRUE(opt.at("row_split").get<bool>()) << opt.dump();
    }
  }
  auto exe = (*backend)->load(graph, *blob);
  ASSERT_TRUE(exe.is_ok()) << exe.status().message();
  const auto context = (*exe)->create_context();
  ASSERT_TRUE(context.is_ok());
  for (int64_t batch : {1, 5, 64, 128}) {
    const TensorMap inputs = {{"x", random_tensor({batch, 24}, 9)}};
    expect_matches_reference(**context, graph, inputs);
  }
}

}  // namespace
}  // namespace mlprt::testing

namespace mlprt::testing {
namespace {

// X [B, 24] -> Dense 24x16 relu -> Dense 16x16 (no bias) -> Dense 16x16 relu -> Dense 16x5:
// every inner edge is read only by the next Dense.
ir::Graph dense_chain_graph() {
  GraphMaker g(11);
  auto h = g.dense(g.input("x", {-1, 24}), 24, 16, true, true);
  h = g.dense(h, 16, 16, false);
  h = g.dense(h, 16, 16, true, true);
  g.output(g.dense(h, 16, 5));
  return g.graph();
}

TEST(CpuTactics, Bf16HandoffBetweenBf16DenseLayers) {
  if (!backend::cpu::cpu_has_bf16()) GTEST_SKIP() << "this CPU has neither AVX-512 BF16 nor AMX";
  const ir::Graph graph = dense_chain_graph();
  for (int64_t batch : {1, 7, 64}) {
    for (int threads : {1, 3}) {
      for (const DenseTactic& tactic :
           {DenseTactic{batch, DensePrecision::kBf16, WeightLayout::kPacked, 0},
            DenseTactic{batch, DensePrecision::kBf16, WeightLayout::kPlain, 1},
            DenseTactic{batch, DensePrecision::kBf16, WeightLayout::kPacked, threads, true}}) {
        for (bool chain : {false, true}) {
          auto exe = CpuExecutable::create(graph, tactics_for(graph, tactic), threads,
                                           chain ? std::vector<int64_t>{batch} : std::vector<int64_t>{});
          ASSERT_TRUE(exe.is_ok()) << exe.status().message();
          const std::vector<std::string> layers = (*exe)->layer_precisions();
          ASSERT_EQ(layers.size(), 4u);
          EXPECT_FALSE(contains(layers[0], "reads bf16"));  // the graph input is fp32
          EXPECT_TRUE(contains(layers[0], "writes bf16")) << layers[0];
          EXPECT_TRUE(contains(layers[1], "reads bf16") && contains(layers[1], "writes bf16"));
          EXPECT_TRUE(contains(layers[3], "reads bf16")) << layers[3];
          EXPECT_FALSE(contains(layers[3], "writes bf16"));  // the graph output stays fp32
          const std::string what = backend::cpu::describe(tactic) + " batch " +
                                   std::to_string(batch) + " threads " + std::to_string(threads) +
                                   (chain ? " chain" : "");
          for (int64_t rows : {batch, batch + 2}) {  // + 2: the runtime-M primitives
            auto context = (*exe)->create_context();
            ASSERT_TRUE(context.is_ok()) << context.status().message();
            ASSERT_TRUE((*context)->set_num_threads(threads).is_ok());
            const TensorMap inputs = {{"x", random_tensor({rows, 24}, 5)}};
            TensorMap outputs;
            const Status status = run_context(**context, graph, inputs, outputs);
            ASSERT_TRUE(status.is_ok()) << status.message();
            const auto expected = reference(graph, inputs);
            EXPECT_LE(rel_l2(outputs.at(graph.outputs[0].name).data,
                             expected.at(graph.outputs[0].name)),
                      2e-2)
                << what << " rows " << rows;
          }
        }
      }
    }
  }
}

TEST(CpuTactics, NoBf16HandoffWhereALayerMayRunInFp32) {
  if (!backend::cpu::cpu_has_bf16()) GTEST_SKIP() << "this CPU has neither AVX-512 BF16 nor AMX";
  const ir::Graph graph = dense_chain_graph();
  auto tactics = tactics_for(graph, DenseTactic{8, DensePrecision::kBf16});
  // The third layer's runtime-M primitive in fp32: neither of its edges travels in bf16; an
  // unfused activation (the first layer's) likewise keeps its output fp32.
  tactics[graph.nodes[2].name][0].precision = DensePrecision::kFp32;
  tactics[graph.nodes[0].name][1].fused = false;
  auto exe = CpuExecutable::create(graph, tactics, 2);
  ASSERT_TRUE(exe.is_ok()) << exe.status().message();
  const std::vector<std::string> layers = (*exe)->layer_precisions();
  EXPECT_FALSE(contains(layers[0], "writes bf16")) << layers[0];
  EXPECT_FALSE(contains(layers[1], "reads bf16") ||
               contains(layers[1], "writes bf16"))
      << layers[1];
  EXPECT_FALSE(contains(layers[2], "reads bf16") || contains(layers[2], "writes bf16"));
  EXPECT_FALSE(contains(layers[3], "reads bf16")) << layers[3];
}

}  // namespace
}  // namespace mlprt::testing
