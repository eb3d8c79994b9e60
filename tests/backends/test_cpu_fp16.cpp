// The cpu backend's AVX-512 FP16 Dense kernel against a float64 reference: shapes with every
// tail (rows not a multiple of the 6-row tile, columns not a multiple of the 16-column panel,
// panel counts not a multiple of the 4-panel group, odd K, K past several fp16 accumulation
// chunks), 1 and 3 threads, with and without bias.

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backends/cpu/cpu_fp16_gemm.h"

namespace mlprt::testing {
namespace {

using backend::cpu::convert_rows_to_fp16;
using backend::cpu::fp16_gemm;
using backend::cpu::fp16_gemm_available;
using backend::cpu::Fp16Weights;

double fp16_rel_l2(int64_t m, int64_t k, int64_t n, bool bias, int threads) {
  std::mt19937 rng(static_cast<unsigned>(m * 131 + k * 7 + n));
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(m * k)), w(static_cast<size_t>(k * n)),
      b(static_cast<size_t>(n)), y(static_cast<size_t>(m * n), -7.0f);
  for (float& v : x) v = normal(rng);
  for (float& v : w) v = normal(rng) / std::sqrt(static_cast<float>(k));
  for (float& v : b) v = 0.5f * normal(rng);
  const Fp16Weights packed(w.data(), k, n);
  std::vector<uint16_t> xh(static_cast<size_t>(m * backend::cpu::fp16_row_stride(k)), 0x7e00);
  convert_rows_to_fp16(x.data(), m, k, xh.data());
  fp16_gemm(xh.data(), m, packed, bias ? b.data() : nullptr, y.data(), threads);
  double num = 0, den = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double ref = bias ? b[static_cast<size_t>(j)] : 0.0;
      for (int64_t p = 0; p < k; ++p) {
        ref += static_cast<double>(x[static_cast<size_t>(i * k + p)]) * w[static_cast<size_t>(p * n + j)];
      }
      const double d = ref - y[static_cast<size_t>(i * n + j)];
      num += d * d;
      den += ref * ref;
    }
  }
  return std::sqrt(num / den);
}

TEST(CpuFp16Kernel, MatchesFloat64WithinTwoPercent) {
  if (!fp16_gemm_available()) GTEST_SKIP() << "this CPU has no AVX-512 FP16: no fp16 kernel";
  struct Shape {
    int64_t m, k, n;
  };
  for (const Shape& s : {Shape{1, 1, 1}, Shape{1, 784, 32}, Shape{7, 24, 16}, Shape{19, 200, 100},
                         Shape{64, 130, 65}, Shape{130, 64, 96}, Shape{97, 257, 200},
                         Shape{13, 1024, 130}}) {
    for (int threads : {1, 3}) {
      for (bool bias : {false, true}) {
        const double err = fp16_rel_l2(s.m, s.k, s.n, bias, threads);
        EXPECT_LE(err, 2e-2) << s.m << "x" << s.k << "x" << s.n << " threads " << threads
                             << " bias " << bias;
        // Not the fp32 result either: the products really are fp16 (catches a silent fallback).
        EXPECT_GT(err, 1e-6) << s.m << "x" << s.k << "x" << s.n;
      }
    }
  }
}

TEST(CpuFp16Kernel, PacksPanelsOfSixteenColumnsInPairsOfK) {
  std::vector<float> w(5 * 33);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 33);  // W[k, c] = c
  const Fp16Weights packed(w.data(), 5, 33);
  EXPECT_EQ(packed.panels(), 3);
  EXPECT_EQ(packed.pairs(), 3);
  EXPECT_EQ(packed.bytes(), 3u * 3u * 32u * sizeof(uint16_t));
  // Panel 2 holds column 32 (32.0 in fp16 is 0x5000) for k = 0 and 1, zeros past it.
  EXPECT_EQ(packed.panel(2)[0], 0x5000);
  EXPECT_EQ(packed.panel(2)[1], 0x5000);
  EXPECT_EQ(packed.panel(2)[2], 0);
  // Panel 0, pair 2: k = 4 of column 1 (1.0 is 0x3c00), then the zero past the odd K.
  EXPECT_EQ(packed.panel(0)[2 * 32 + 2], 0x3c00);
  EXPECT_EQ(packed.panel(0)[2 * 32 + 3], 0);
}

TEST(CpuFp16Kernel, ConvertsRowsToWholePairs) {
  const std::vector<float> x = {1.0f, 2.0f, 3.0f, -1.0f, -2.0f, -3.0f};
  std::vector<uint16_t> out(8, 0x7e00);
  convert_rows_to_fp16(x.data(), 2, 3, out.data());
  EXPECT_EQ(out, (std::vector<uint16_t>{0x3c00, 0x4000, 0x4200, 0, 0xbc00, 0xc000, 0xc200, 0}));
}

}  // namespace
}  // namespace mlprt::testing
