#include "backends/cpu/cpu_fp16_gemm.h"

#include <immintrin.h>
#include <omp.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

#ifndef MLPRT_CPU_FP16_KERNEL
#define MLPRT_CPU_FP16_KERNEL 0
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include <oneapi/dnnl/dnnl.hpp>

#include "backends/cpu/cpu_isa.h"
#include "backends/cpu/cpu_panels.h"
#include "mlprt/float16.h"

// GCC 12's AVX-512 headers build the upper half of some casts and extracts from a deliberately
// undefined vector (_mm256_undefined_si256), which -Wmaybe-uninitialized reports at every
// inlined use.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace mlprt::backend::cpu {
namespace {

// K pairs accumulated in fp16 before the sums go into Y in fp32: each lane sums kChunkPairs
// products, so the relative rounding error of a chunk grows about like sqrt(kChunkPairs) *
// 2^-11 (0.4% at 64), independent of K.
constexpr int64_t kChunkPairs = 64;
constexpr int kRowTile = 6;         // rows per micro-tile
constexpr int kGroupPanels = 4;     // panels per work item: 64 columns
constexpr int64_t kRowBlock = 96;   // rows per work item (X block stays in L2 across groups)

#if MLPRT_CPU_FP16_KERNEL
#define MLPRT_FP16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512fp16")))

// One chunk of K pairs [kp0, kp1) for rows [0, MR) of x and NP panels from `w0`: the products
// summed in fp16, each lane pair added, the 16 column sums added into y (or, `first`, stored
// over y with the bias). `cols`: y's valid columns from the tile's first (the last panel may run
// past N).
template <int MR, int NP>
MLPRT_FP16_TARGET void tile_chunk(const uint16_t* x, int64_t ldx, const uint16_t* w0,
                                  int64_t panel_stride, int64_t kp0, int64_t kp1, bool first,
                                  const float* bias, float* y, int64_t ldy, int64_t cols) {
  __m512h a[MR][NP];
  for (int r = 0; r < MR; ++r) {
    for (int j = 0; j < NP; ++j) a[r][j] = _mm512_setzero_ph();
  }
  const uint16_t* wp = w0 + kp0 * 2 * kFp16Panel;
  for (int64_t kp = kp0; kp < kp1; ++kp, wp += 2 * kFp16Panel) {
    __m512h wk[NP];
    for (int j = 0; j < NP; ++j) wk[j] = _mm512_load_ph(wp + j * panel_stride);
    for (int r = 0; r < MR; ++r) {
      int32_t pair;
      std::memcpy(&pair, x + r * ldx + 2 * kp, sizeof(pair));
      const __m512h xb = _mm512_castsi512_ph(_mm512_set1_epi32(pair));
      for (int j = 0; j < NP; ++j) a[r][j] = _mm512_fmadd_ph(xb, wk[j], a[r][j]);
    }
  }
  for (int j = 0; j < NP; ++j) {
    const int64_t c = j * kFp16Panel;
    const int64_t left = std::min<int64_t>(kFp16Panel, cols - c);
    if (left <= 0) break;
    const __mmask16 mask = left == 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u);
    const __m512 b = first && bias != nullptr ? _mm512_maskz_loadu_ps(mask, bias + c)
                                              : _mm512_setzero_ps();
    for (int r = 0; r < MR; ++r) {
      // Odd lanes (the odd k) onto the even ones, then the even lanes' 16 sums into fp32.
      const __m512i bits = _mm512_castph_si512(a[r][j]);
      const __m512h both = _mm512_add_ph(a[r][j], _mm512_castsi512_ph(_mm512_srli_epi32(bits, 16)));
      const __m256i even = _mm512_cvtepi32_epi16(_mm512_castph_si512(both));
      const __m512 sums = _mm512_cvtxph_ps(_mm256_castsi256_ph(even));
      float* out = y + r * ldy + c;
      const __m512 base = first ? b : _mm512_maskz_loadu_ps(mask, out);
      _mm512_mask_storeu_ps(out, mask, _mm512_add_ps(base, sums));
    }
  }
}

template <int NP>
MLPRT_FP16_TARGET void rows_chunk(int rows, const uint16_t* x, int64_t ldx, const uint16_t* w0,
                                  int64_t panel_stride, int64_t kp0, int64_t kp1, bool first,
                                  const float* bias, float* y, int64_t ldy, int64_t cols) {
  switch (rows) {
#define MLPRT_FP16_ROWS(R)                                                                    \
  case R:                                                                                      \
    tile_chunk<R, NP>(x, ldx, w0, panel_stride, kp0, kp1, first, bias, y, ldy, cols); \
    break;
    MLPRT_FP16_ROWS(6)
    MLPRT_FP16_ROWS(5)
    MLPRT_FP16_ROWS(4)
    MLPRT_FP16_ROWS(3)
    MLPRT_FP16_ROWS(2)
    default: tile_chunk<1, NP>(x, ldx, w0, panel_stride, kp0, kp1, first, bias, y, ldy, cols);
#undef MLPRT_FP16_ROWS
  }
}

using ChunkFn = void (*)(int, const uint16_t*, int64_t, const uint16_t*, int64_t, int64_t,
                         int64_t, bool, const float*, float*, int64_t, int64_t);
constexpr ChunkFn kByPanels[kGroupPanels] = {rows_chunk<1>, rows_chunk<2>, rows_chunk<3>,
                                             rows_chunk<4>};

// Work item: rows [r0, r1) x the panels of group `g`.
MLPRT_FP16_TARGET void run_item(const uint16_t* x, int64_t r0, int64_t r1, const Fp16Weights& w,
                                int64_t g, const float* bias, float* y) {
  const int64_t ldx = fp16_row_stride(w.k());
  const int64_t n = w.n();
  const int64_t p0 = g * kGroupPanels;
  const int np = static_cast<int>(std::min<int64_t>(kGroupPanels, w.panels() - p0));
  const int64_t c0 = p0 * kFp16Panel;
  const int64_t cols = std::min<int64_t>(kGroupPanels * kFp16Panel, n - c0);
  const float* b = bias != nullptr ? bias + c0 : nullptr;
  // One group (N <= 64): no other item reads these rows, so each row tile streams its rows
  // once through the whole K. Several: the chunk's weights stay in L1 over the row tiles.
  if (w.panels() <= kGroupPanels) {
    for (int64_t r = r0; r < r1; r += kRowTile) {
      const int rows = static_cast<int>(std::min<int64_t>(kRowTile, r1 - r));
      for (int64_t kp0 = 0; kp0 < w.pairs(); kp0 += kChunkPairs) {
        const int64_t kp1 = std::min(w.pairs(), kp0 + kChunkPairs);
        kByPanels[np - 1](rows, x + r * ldx, ldx, w.panel(p0), w.panel_stride(), kp0, kp1,
                          kp0 == 0, b, y + r * n + c0, n, cols);
      }
    }
    return;
  }
  for (int64_t kp0 = 0; kp0 < w.pairs(); kp0 += kChunkPairs) {
    const int64_t kp1 = std::min(w.pairs(), kp0 + kChunkPairs);
    for (int64_t r = r0; r < r1; r += kRowTile) {
      const int rows = static_cast<int>(std::min<int64_t>(kRowTile, r1 - r));
      kByPanels[np - 1](rows, x + r * ldx, ldx, w.panel(p0), w.panel_stride(), kp0, kp1, kp0 == 0,
                        b, y + r * n + c0, n, cols);
    }
  }
}

MLPRT_FP16_TARGET void convert_avx512(const float* x, uint16_t* out, int64_t count) {
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m256i h =
        _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), h);
  }
  for (; i < count; ++i) out[i] = float_to_half(x[i]);
}
#endif  // MLPRT_CPU_FP16_KERNEL

bool detect_fp16() {
#if MLPRT_CPU_FP16_KERNEL && (defined(__x86_64__) || defined(_M_X64))
  if (!cpu_avx512_usable(false, true)) return false;
  // The plan's hardware id is oneDNN's ISA, which ONEDNN_MAX_CPU_ISA can cap (to build for, or
  // act as, an older machine): fp16 counts only where that ISA is the one AVX-512 FP16 CPUs
  // have (avx512_core_amx: every AMX Xeon has AVX-512 FP16), so a capped process has no fp16
  // kernel either, as the machine it stands for.
  return onednn_isa_includes(dnnl::cpu_isa::avx512_core_amx);
#else
  return false;
#endif
}

}  // namespace

void Fp16Weights::Free::operator()(uint16_t* p) const noexcept { std::free(p); }

Fp16Weights::Fp16Weights(const float* w, int64_t k, int64_t n)
    : m_k(k), m_n(n), m_panels((n + kFp16Panel - 1) / kFp16Panel) {
  m_data.reset(static_cast<uint16_t*>(aligned_zeroed(bytes())));
  for (int64_t p = 0; p < m_panels; ++p) {
    uint16_t* dst = m_data.get() + p * panel_stride();
    const int64_t cols = std::min(kFp16Panel, n - p * kFp16Panel);
    for (int64_t row = 0; row < k; ++row) {
      const float* src = w + row * n + p * kFp16Panel;
      uint16_t* pair_row = dst + (row / 2) * 2 * kFp16Panel + row % 2;
      for (int64_t c = 0; c < cols; ++c) pair_row[2 * c] = float_to_half(src[c]);
    }
  }
}

bool fp16_kernel_compiled() { return MLPRT_CPU_FP16_KERNEL != 0; }

bool fp16_gemm_available() {
  static const bool kAvailable = detect_fp16();
  return kAvailable;
}

void convert_rows_to_fp16(const float* x, int64_t m, int64_t k, uint16_t* out) {
  const int64_t ld = fp16_row_stride(k);
  for (int64_t r = 0; r < m; ++r) {
    const float* row = x + r * k;
    uint16_t* dst = out + r * ld;
#if MLPRT_CPU_FP16_KERNEL
    if (fp16_gemm_available()) {
      convert_avx512(row, dst, k);
    } else {
      for (int64_t i = 0; i < k; ++i) dst[i] = float_to_half(row[i]);
    }
#else
    for (int64_t i = 0; i < k; ++i) dst[i] = float_to_half(row[i]);
#endif
    if (ld > k) dst[k] = 0;
  }
}

void fp16_gemm(const uint16_t* x, int64_t m, const Fp16Weights& w, const float* bias, float* y,
               int threads) {
#if MLPRT_CPU_FP16_KERNEL
  if (m <= 0) return;
  const int64_t groups = (w.panels() + kGroupPanels - 1) / kGroupPanels;
  const int64_t row_blocks = (m + kRowBlock - 1) / kRowBlock;
  const int64_t items = groups * row_blocks;
  auto item = [&](int64_t i) {
    const int64_t rb = i / groups;
    run_item(x, rb * kRowBlock, std::min(m, (rb + 1) * kRowBlock), w, i % groups, bias, y);
  };
  if (threads <= 1 || items == 1) {
    for (int64_t i = 0; i < items; ++i) item(i);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < items; ++i) item(i);
#else
  // Unreachable: fp16_gemm_available() is false in a build without the kernel, and no fp16
  // tactic is offered or loaded.
  (void)x, (void)m, (void)w, (void)bias, (void)y, (void)threads;
  std::abort();
#endif
}

}  // namespace mlprt::backend::cpu
