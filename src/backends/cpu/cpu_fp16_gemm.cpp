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

// K steps accumulated in fp16 before the tile is added into fp32: the relative rounding error
// of a chunk's sum grows about like sqrt(kChunkK) * 2^-11 (0.4% at 64), independent of K.
constexpr int64_t kChunkK = 64;
constexpr int kRowTile = 8;      // rows per micro-tile
constexpr int64_t kRowBlock = 128;  // rows per work item (X block stays in L2 across panels)

#if MLPRT_CPU_FP16_KERNEL
#define MLPRT_FP16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512fp16")))

// One tile: rows [0, MR) of x, NP panels (32 columns each) starting at panel `p0`.
template <int MR, int NP>
MLPRT_FP16_TARGET void tile(const uint16_t* x, int64_t k_total, const Fp16Weights& w, int64_t p0,
                            const float* bias, float* y, int64_t ldy) {
  alignas(64) float acc[MR][NP * kFp16Panel] = {};
  const uint16_t* panel[NP];
  for (int j = 0; j < NP; ++j) panel[j] = w.panel(p0 + j);
  for (int64_t k0 = 0; k0 < k_total; k0 += kChunkK) {
    const int64_t k1 = std::min(k_total, k0 + kChunkK);
    __m512h a[MR][NP];
    for (int r = 0; r < MR; ++r) {
      for (int j = 0; j < NP; ++j) a[r][j] = _mm512_setzero_ph();
    }
    for (int64_t k = k0; k < k1; ++k) {
      __m512h wk[NP];
      for (int j = 0; j < NP; ++j) wk[j] = _mm512_load_ph(panel[j] + k * kFp16Panel);
      for (int r = 0; r < MR; ++r) {
        const __m512h xb =
            _mm512_castsi512_ph(_mm512_set1_epi16(static_cast<short>(x[r * k_total + k])));
        for (int j = 0; j < NP; ++j) a[r][j] = _mm512_fmadd_ph(xb, wk[j], a[r][j]);
      }
    }
    for (int r = 0; r < MR; ++r) {
      for (int j = 0; j < NP; ++j) {
        const __m512i bits = _mm512_castph_si512(a[r][j]);
        const __m512 lo = _mm512_cvtxph_ps(_mm256_castsi256_ph(_mm512_castsi512_si256(bits)));
        const __m512 hi = _mm512_cvtxph_ps(_mm256_castsi256_ph(_mm512_extracti64x4_epi64(bits, 1)));
        float* out = &acc[r][j * kFp16Panel];
        _mm512_store_ps(out, _mm512_add_ps(_mm512_load_ps(out), lo));
        _mm512_store_ps(out + 16, _mm512_add_ps(_mm512_load_ps(out + 16), hi));
      }
    }
  }
  // Store the valid columns (the last panel may run past N), bias added.
  const int64_t n0 = p0 * kFp16Panel;
  const int64_t cols = std::min<int64_t>(NP * kFp16Panel, w.n() - n0);
  for (int64_t c = 0; c < cols; c += 16) {
    const int64_t left = std::min<int64_t>(16, cols - c);
    const __mmask16 mask = left == 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u);
    const __m512 b = bias != nullptr ? _mm512_maskz_loadu_ps(mask, bias + n0 + c)
                                     : _mm512_setzero_ps();
    for (int r = 0; r < MR; ++r) {
      _mm512_mask_storeu_ps(y + r * ldy + n0 + c, mask,
                            _mm512_add_ps(_mm512_load_ps(&acc[r][c]), b));
    }
  }
}

template <int NP>
MLPRT_FP16_TARGET void rows_tile(int rows, const uint16_t* x, int64_t k, const Fp16Weights& w,
                                 int64_t p0, const float* bias, float* y, int64_t ldy) {
  switch (rows) {
    case 8: tile<8, NP>(x, k, w, p0, bias, y, ldy); break;
    case 7: tile<7, NP>(x, k, w, p0, bias, y, ldy); break;
    case 6: tile<6, NP>(x, k, w, p0, bias, y, ldy); break;
    case 5: tile<5, NP>(x, k, w, p0, bias, y, ldy); break;
    case 4: tile<4, NP>(x, k, w, p0, bias, y, ldy); break;
    case 3: tile<3, NP>(x, k, w, p0, bias, y, ldy); break;
    case 2: tile<2, NP>(x, k, w, p0, bias, y, ldy); break;
    default: tile<1, NP>(x, k, w, p0, bias, y, ldy); break;
  }
}

// Work item: rows [r0, r1), panels [p0, p0 + np) with np 1 or 2.
MLPRT_FP16_TARGET void run_item(const uint16_t* x, int64_t r0, int64_t r1, const Fp16Weights& w,
                                int64_t p0, int64_t np, const float* bias, float* y) {
  const int64_t k = w.k();
  const int64_t n = w.n();
  for (int64_t r = r0; r < r1; r += kRowTile) {
    const int rows = static_cast<int>(std::min<int64_t>(kRowTile, r1 - r));
    if (np == 2) {
      rows_tile<2>(rows, x + r * k, k, w, p0, bias, y + r * n, n);
    } else {
      rows_tile<1>(rows, x + r * k, k, w, p0, bias, y + r * n, n);
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
  const size_t bytes = static_cast<size_t>(m_panels * m_k * kFp16Panel) * sizeof(uint16_t);
  m_data.reset(static_cast<uint16_t*>(aligned_zeroed(bytes)));
  pack_column_panels(w, k, n, kFp16Panel, m_data.get(), [](float v) { return float_to_half(v); });
}

bool fp16_kernel_compiled() { return MLPRT_CPU_FP16_KERNEL != 0; }

bool fp16_gemm_available() {
  static const bool kAvailable = detect_fp16();
  return kAvailable;
}

void convert_to_fp16(const float* x, uint16_t* out, int64_t count) {
#if MLPRT_CPU_FP16_KERNEL
  if (fp16_gemm_available()) {
    convert_avx512(x, out, count);
    return;
  }
#endif
  for (int64_t i = 0; i < count; ++i) out[i] = float_to_half(x[i]);
}

void fp16_gemm(const uint16_t* x, int64_t m, const Fp16Weights& w, const float* bias, float* y,
               int threads) {
#if MLPRT_CPU_FP16_KERNEL
  if (m <= 0) return;
  const int64_t pairs = (w.panels() + 1) / 2;
  const int64_t row_blocks = (m + kRowBlock - 1) / kRowBlock;
  const int64_t items = pairs * row_blocks;
  auto item = [&](int64_t i) {
    const int64_t rb = i / pairs;
    const int64_t pair = i % pairs;
    const int64_t p0 = pair * 2;
    run_item(x, rb * kRowBlock, std::min(m, (rb + 1) * kRowBlock), w, p0,
             std::min<int64_t>(2, w.panels() - p0), bias, y);
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
