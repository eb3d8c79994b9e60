#pragma once
// Helpers for the cpu backend's own element-wise loops: one clone of a hot loop per x86-64
// level (the library is built for the x86-64 baseline, SSE2; the clone for the running CPU is
// picked once at load through an ifunc), a branch-free erf that vectorizes, and the parallel
// split of a loop over the context's OpenMP threads.

#include <bit>
#include <cstdint>

#include <omp.h>

namespace mlprt::backend::cpu {

/// AVX-512 (x86-64-v4), AVX2+FMA (v3) and baseline clones of a function.
#define MLPRT_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

/// Below this many elements a loop runs on the calling thread: waking the others costs more.
constexpr int64_t kParallelMinElements = 16384;

/// Threads for a loop of `elements` (OpenMP's current count, which the context set for its
/// call; 1 inside an enclosing parallel region).
inline int loop_threads(int64_t elements) {
  if (elements < kParallelMinElements || omp_in_parallel()) return 1;
  return omp_get_max_threads();
}

/// e^y for y <= 0 (clamped at -87, where e^y underflows float's normal range), branch-free:
/// y = n ln2 + r with |r| <= ln2 / 2, e^r by its degree-7 Taylor polynomial (error < 1e-8
/// relative), 2^n built in the exponent bits. Relative error a few float ulps.
inline float exp_nonpositive(float y) {
  y = y < -87.0f ? -87.0f : y;
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693145751953125f;   // ln 2 split so that n * kLn2Hi is exact
  constexpr float kLn2Lo = 1.428606765330187e-06f;
  constexpr float kRound = 12582912.0f;          // 1.5 * 2^23: adding it rounds to an integer
  const float shifted = y * kLog2e + kRound;
  const float n = shifted - kRound;
  const int32_t k = std::bit_cast<int32_t>(shifted) - std::bit_cast<int32_t>(kRound);
  const float r = (y - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * std::bit_cast<float>((k + 127) << 23);
}

/// erf(x), branch-free so that loops over it vectorize. |x| < 1: the odd Maclaurin series to
/// x^21 (truncation < 2e-8); else Abramowitz & Stegun 7.1.26, 1 - t (a1 + ... + a5 t^4) e^{-x^2}
/// with t = 1 / (1 + p |x|) (absolute error < 1.5e-7). Both are computed and one is selected.
/// Measured against float64: < 2e-7 absolute over all floats (std::erf: 5e-8).
inline float erf_vectorizable(float x) {
  const float ax = x < 0.0f ? -x : x;
  const float x2 = x * x;
  // 2/sqrt(pi) sum_k (-1)^k x^(2k+1) / (k! (2k+1)), k = 0..10
  float s = 1.0f / 76204800.0f;
  s = s * x2 - 1.0f / 6894720.0f;
  s = s * x2 + 1.0f / 685440.0f;
  s = s * x2 - 1.0f / 75600.0f;
  s = s * x2 + 1.0f / 9360.0f;
  s = s * x2 - 1.0f / 1320.0f;
  s = s * x2 + 1.0f / 216.0f;
  s = s * x2 - 1.0f / 42.0f;
  s = s * x2 + 1.0f / 10.0f;
  s = s * x2 - 1.0f / 3.0f;
  s = s * x2 + 1.0f;
  const float small = 1.12837916709551257f * x * s;
  const float t = 1.0f / (1.0f + 0.3275911f * ax);
  float q = 1.061405429f;
  q = q * t - 1.453152027f;
  q = q * t + 1.421413741f;
  q = q * t - 0.284496736f;
  q = q * t + 0.254829592f;
  const float large_abs = 1.0f - q * t * exp_nonpositive(-x2);
  const float large = x < 0.0f ? -large_abs : large_abs;
  return ax < 1.0f ? small : large;
}

/// 0.5 x (1 + erf(x / sqrt 2)).
inline float gelu_erf_vectorizable(float x) {
  return 0.5f * x * (1.0f + erf_vectorizable(x * 0.70710678118654752f));
}

}  // namespace mlprt::backend::cpu
