// The cpu backend's AMX chain kernel (cpu_amx_mlp.h) against a float64 reference: tiny-cuda-nn's
// shape (64-64x4-16), the tutorial's 784-32-10, widths that are no multiple of a tile (5 -> 33
// -> 3, 100 -> 200 -> 17) and the widest it takes (1024 -> 256); row counts with every tile tail
// (1, 7, 16, 17, 1000, 4097) on 1 and 3 threads; and its refusals. Then as the engine runs it:
// at the row counts a plan chose it for (a view in the chain), per layer at the
// others, and refused, saying why, for a graph that is no such chain.

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "backends/cpu/cpu_amx_mlp.h"
#include "backends/cpu/cpu_executable.h"
#include "cpu_test_graphs.h"
#include "mlprt/profiler.h"

namespace mlprt::testing {
namespace {

using backend::cpu::AmxMlp;
using backend::cpu::AmxMlpLayerDesc;

struct Net {
  std::vector<int64_t> widths;  // input, then each layer's output
  std::vector<std::vector<float>> w, b;
  std::vector<bool> relu;
};

Net make_net(const std::vector<int64_t>& widths, bool with_bias, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  Net net;
  net.widths = widths;
  for (size_t l = 0; l + 1 < widths.size(); ++l) {
    const int64_t k = widths[l], n = widths[l + 1];
    std::vector<float> w(static_cast<size_t>(k * n)), b(static_cast<size_t>(n));
    for (float& v : w) v = normal(rng) / std::sqrt(static_cast<float>(k));
    for (float& v : b) v = with_bias ? 0.1f * normal(rng) : 0.0f;
    net.w.push_back(std::move(w));
    net.b.push_back(std::move(b));
    net.relu.push_back(l + 2 < widths.size());  // ReLU between layers, none after the last
  }
  return net;
}

std::vector<AmxMlpLayerDesc> descs(const Net& net, bool with_bias) {
  std::vector<AmxMlpLayerDesc> out;
  for (size_t l = 0; l < net.w.size(); ++l) {
    out.push_back({net.widths[l], net.widths[l + 1], net.w[l].data(),
                   with_bias ? net.b[l].data() : nullptr, net.relu[l]});
  }
  return out;
}

std::vector<double> reference(const Net& net, const std::vector<float>& x, int64_t rows) {
  std::vector<double> cur(x.begin(), x.end());
  for (size_t l = 0; l < net.w.size(); ++l) {
    const int64_t k = net.widths[l], n = net.widths[l + 1];
    std::vector<double> next(static_cast<size_t>(rows * n));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < n; ++j) {
        double s = net.b[l][static_cast<size_t>(j)];
        for (int64_t i = 0; i < k; ++i) {
          s += cur[static_cast<size_t>(r * k + i)] * net.w[l][static_cast<size_t>(i * n + j)];
        }
        next[static_cast<size_t>(r * n + j)] = net.relu[l] && s < 0 ? 0.0 : s;
      }
    }
    cur = std::move(next);
  }
  return cur;
}

#define SKIP_WITHOUT_AMX()                                                        \
  do {                                                                            \
    const std::string why = backend::cpu::amx_mlp_unavailable();                  \
    if (!why.empty()) GTEST_SKIP() << "no AMX chain kernel on this machine: " << why; \
  } while (0)

TEST(CpuAmxMlp, MatchesFloat64AtEveryTileTail) {
  SKIP_WITHOUT_AMX();
  const std::vector<std::vector<int64_t>> shapes = {
      {64, 64, 64, 64, 64, 16}, {784, 32, 10}, {5, 33, 3}, {100, 200, 17}, {1024, 256}};
  for (const auto& widths : shapes) {
    for (bool with_bias : {true, false}) {
      const Net net = make_net(widths, with_bias, static_cast<unsigned>(widths[0] + widths[1]));
      Result<AmxMlp> mlp = AmxMlp::create(descs(net, with_bias));
      ASSERT_TRUE(mlp.is_ok()) << mlp.status().message();
      for (int64_t rows : {1, 7, 16, 17, 1000, 4097}) {
        std::mt19937 rng(static_cast<unsigned>(rows));
        std::normal_distribution<float> normal;
        std::vector<float> x(static_cast<size_t>(rows * widths.front()));
        for (float& v : x) v = normal(rng);
        const std::vector<double> want = reference(net, x, rows);
        for (int threads : {1, 3}) {
          // Sentinels one past the end: the kernel writes its rows and columns only.
          std::vector<float> y(want.size() + 1, -7.0f);
          std::vector<std::byte> scratch(mlp->scratch_bytes() * static_cast<size_t>(threads));
          mlp->run(x.data(), y.data(), rows, threads, scratch.data());
          y.pop_back();
          EXPECT_LE(rel_l2(y, want), 2e-2)
              << "widths " << widths.front() << "->...->" << widths.back() << " rows " << rows
              << " threads " << threads << " bias " << with_bias;
        }
      }
    }
  }
}

TEST(CpuAmxMlp, WritesNothingPastTheOutput) {
  SKIP_WITHOUT_AMX();
  const Net net = make_net({64, 64, 16}, true, 3);
  Result<AmxMlp> mlp = AmxMlp::create(descs(net, true));
  ASSERT_TRUE(mlp.is_ok()) << mlp.status().message();
  const int64_t rows = 21;
  std::vector<float> x(static_cast<size_t>(rows * 64), 0.25f);
  std::vector<float> y(static_cast<size_t>(rows * 16 + 64), -7.0f);
  std::vector<std::byte> scratch(mlp->scratch_bytes() * 2);
  mlp->run(x.data(), y.data(), rows, 2, scratch.data());
  for (size_t i = static_cast<size_t>(rows * 16); i < y.size(); ++i) EXPECT_EQ(y[i], -7.0f) << i;
}

TEST(CpuAmxMlp, RefusesWhatItCannotRun) {
  SKIP_WITHOUT_AMX();
  std::vector<float> w(2048 * 300, 0.0f);
  Result<AmxMlp> wide = AmxMlp::create({{64, 300, w.data(), nullptr, false}});
  ASSERT_FALSE(wide.is_ok());
  EXPECT_NE(wide.status().message().find("64x300"), std::string::npos) << wide.status().message();
  EXPECT_NE(wide.status().message().find("256"), std::string::npos) << wide.status().message();
  Result<AmxMlp> deep_input = AmxMlp::create({{2048, 16, w.data(), nullptr, false}});
  EXPECT_FALSE(deep_input.is_ok());
  Result<AmxMlp> broken = AmxMlp::create({{64, 32, w.data(), nullptr, true},
                                          {16, 8, w.data(), nullptr, false}});
  ASSERT_FALSE(broken.is_ok());
  EXPECT_NE(broken.status().message().find("takes 16 features"), std::string::npos)
      << broken.status().message();
  EXPECT_FALSE(AmxMlp::create({}).is_ok());
}

// x [B, 1, 40] -> Flatten -> Dense 40x48 + ReLU -> Dense 48x33 + ReLU -> Dense 33x7.
ir::Graph chain_graph(DataType io) {
  GraphMaker g(11);
  const auto x = g.input("x", {-1, 1, 40}, io);
  auto h = g.flatten(x, 1);
  h = g.dense(h, 40, 48, true, true);
  h = g.dense(h, 48, 33, true, true);
  g.output(g.dense(h, 33, 7));
  g.graph().outputs.back().dtype = io;
  return g.graph();
}

TEST(CpuAmxMlp, EngineRunsItAtThePlansRowsAndLayersElsewhere) {
  SKIP_WITHOUT_AMX();
  {
    const ir::Graph graph = chain_graph(DataType::kFloat32);
    ASSERT_EQ(backend::cpu::CpuExecutable::amx_chain_ineligible(graph), "");
    Result<std::unique_ptr<backend::cpu::CpuExecutable>> exe =
        backend::cpu::CpuExecutable::create(graph, {}, 2, {}, false, {37});
    ASSERT_TRUE(exe.is_ok()) << exe.status().message();
    bool noted = false;
    for (const std::string& line : (*exe)->layer_precisions()) {
      noted |= line.find("batch 37: bf16 AMX chain kernel") != std::string::npos;
    }
    EXPECT_TRUE(noted);
    ASSERT_NE((*exe)->amx(), nullptr);
    auto context = (*exe)->create_context();
    ASSERT_TRUE(context.is_ok()) << context.status().message();
    for (int64_t rows : {37, 36}) {  // 37: the kernel; 36: the layers, in fp32
      const TensorMap inputs = {{"x", random_tensor({rows, 1, 40}, static_cast<unsigned>(rows))}};
      TensorMap outputs;
      ASSERT_TRUE(run_context(**context, graph, inputs, outputs).is_ok());
      const auto want = reference(graph, inputs);
      const std::string& out = graph.outputs.front().name;
      EXPECT_LE(rel_l2(outputs.at(out).data, want.at(out)), 2e-2) << rows << " rows";
      if (rows == 36) {
        EXPECT_LE(rel_l2(outputs.at(out).data, want.at(out)), 1e-5) << "fp32 layers";
      }
      if (rows == 37) {
        // bf16 weights: not fp32's accuracy, so the kernel did run.
        EXPECT_GT(rel_l2(outputs.at(out).data, want.at(out)), 1e-5);
      }
    }
    // The kernel's rows with a profiler: layer by layer (the layers' tactics prepared only now),
    // in fp32, each layer reported; without it, the kernel again.
    struct Counter final : Profiler {
      int reports = 0;
      void report_layer_time(std::string_view, float) override { ++reports; }
    } counter;
    const TensorMap inputs = {{"x", random_tensor({37, 1, 40}, 5u)}};
    const auto want = reference(graph, inputs);
    const std::string& out = graph.outputs.front().name;
    TensorMap outputs;
    ASSERT_TRUE(run_context(**context, graph, inputs, outputs).is_ok());
    EXPECT_GT(rel_l2(outputs.at(out).data, want.at(out)), 1e-5) << "the kernel";
    ASSERT_TRUE((*context)->set_profiler(&counter).is_ok());
    ASSERT_TRUE(run_context(**context, graph, inputs, outputs).is_ok());
    EXPECT_LE(rel_l2(outputs.at(out).data, want.at(out)), 1e-5) << "profiled: the fp32 layers";
    EXPECT_GT(counter.reports, 0);
    ASSERT_TRUE((*context)->set_profiler(nullptr).is_ok());
    ASSERT_TRUE(run_context(**context, graph, inputs, outputs).is_ok());
    EXPECT_GT(rel_l2(outputs.at(out).data, want.at(out)), 1e-5) << "the kernel again";
  }
}

TEST(CpuAmxMlp, EngineRefusesAChainItCannotRun) {
  GraphMaker g(5);
  const auto x = g.input("x", {-1, 24});
  auto h = g.dense(x, 24, 16, true, true);
  h = g.add(h, g.constant({1, 16}));
  g.output(g.dense(h, 16, 4));
  const std::string why = backend::cpu::CpuExecutable::amx_chain_ineligible(g.graph());
  EXPECT_NE(why.find("is Add"), std::string::npos) << why;
  Result<std::unique_ptr<backend::cpu::CpuExecutable>> exe =
      backend::cpu::CpuExecutable::create(g.graph(), {}, 1, {}, false, {8});
  ASSERT_FALSE(exe.is_ok());
  EXPECT_NE(exe.status().message().find("AMX chain"), std::string::npos) << exe.status().message();
  EXPECT_NE(exe.status().message().find("is Add"), std::string::npos) << exe.status().message();
}

}  // namespace
}  // namespace mlprt::testing
