#include "backends/cpu/cpu_f32_gemm.h"

#include <immintrin.h>
#include <omp.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include <oneapi/dnnl/dnnl.hpp>

#include "backends/cpu/cpu_isa.h"
#include "backends/cpu/cpu_panels.h"
#include "backends/cpu/cpu_layers.h"

// GCC 12's AVX-512 headers build some vectors from deliberately undefined ones, which
// -Wmaybe-uninitialized reports at every inlined use.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace mlprt::backend::cpu {
namespace {

#define MLPRT_F32_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

// Panels per micro-tile (48 columns) and rows: 8 x 3 accumulators. 8 x 3 ran 64x784x1024 at
// 5.2 zmm FMAs/ns on one Sapphire Rapids core, 6 x 4 at 5.0-5.1, within the noise of a shared
// machine; blocking K for L1 gained nothing measurable either, so there is none.
constexpr int kMaxPanels = 3;
constexpr int64_t kRowBlock = 128;  // rows per work item (the X block stays in L2 across panels)
// Tiles of kPrefetchRows rows or fewer prefetch the panels 16 k steps (1 KiB) ahead: at M = 1
// (784x32) 0.75 -> 0.71 us on a Sapphire Rapids core; more rows are bound by the FMAs.
constexpr int64_t kPrefetchAhead = 16 * kF32Panel;
constexpr int kPrefetchRows = 2;

// Lines of the next work item's panels that a tile asks L2 for, one per k step: a panel group
// is read from memory by its first row tile and from L2 by the others, so the first tile of
// each group waited on memory. mnist 784-1024-1024-10 at 64 rows, 1 thread: 5% faster on an AMD
// EPYC core (8/8 alternated rounds); on a shared Sapphire Rapids host no change beyond its noise.
// Only where the weights do not stay in L2 from call to call anyway, and where two groups fit
// in L2 beside each other (a group of 4096-deep panels is 768 KiB: prefetching the next one
// evicted the current one from the EPYC's 1 MiB L2, 1-2% slower on wide 1024-4096-4096-1024).
struct NextPanels {
  const char* at = nullptr;
  int64_t lines = 0;
};
constexpr size_t kNextPanelsMinWeights = size_t{1} << 20;
constexpr int64_t kNextPanelsMaxGroup = 256 << 10;

// The epilogue after the bias: on the registers where it is one or two instructions, else the
// backend's activation loop over the stored rows.
enum class Epi { kNone, kRelu, kLeakyRelu, kClip, kLoop };

struct Epilogue {
  Epi kind = Epi::kNone;
  float alpha = 0.0f;
  float beta = 0.0f;
  const ir::ActivationSpec* spec = nullptr;
};

Epilogue epilogue_of(const ir::ActivationSpec& spec) {
  Epilogue e;
  e.alpha = static_cast<float>(spec.alpha);
  e.beta = static_cast<float>(spec.beta);
  e.spec = &spec;
  switch (spec.kind) {
    case ir::ActivationKind::kNone: e.kind = Epi::kNone; break;
    case ir::ActivationKind::kRelu: e.kind = Epi::kRelu; break;
    case ir::ActivationKind::kLeakyRelu: e.kind = Epi::kLeakyRelu; break;
    case ir::ActivationKind::kClip: e.kind = Epi::kClip; break;
    default: e.kind = Epi::kLoop; break;
  }
  return e;
}

// Rows per micro-tile: MR x NP accumulators, at most 24 of the 32 zmm registers.
constexpr int kMaxRows = 8;

// One micro-tile: rows [0, MR) of x (row stride k), NP panels starting at `w0` (panel stride
// `pstride` floats), `cols` valid columns (<= NP * 16) of y (row stride ldy); bias and y point
// at the tile's first column.
template <int MR, int NP>
MLPRT_F32_TARGET void tile(const float* x, int64_t k, const float* w0, int64_t pstride,
                           const float* bias, float* y, int64_t ldy, int64_t cols,
                           const Epilogue& epi, NextPanels next) {
  // Few accumulators (M = 1: one per panel) leave the FMA units waiting on each other's
  // latency: then several sets over interleaved k, summed at the end.
  constexpr int kSets = MR * NP >= 8 ? 1 : (MR * NP >= 4 ? 2 : 4);
  __m512 c[kSets][MR][NP];
#pragma GCC unroll 4
  for (int s = 0; s < kSets; ++s) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
      for (int j = 0; j < NP; ++j) c[s][r][j] = _mm512_setzero_ps();
    }
  }
  int64_t kk = 0;
  for (; kk + kSets <= k; kk += kSets) {
    if constexpr (MR > kPrefetchRows) {
      if (next.lines > 0) {
        _mm_prefetch(next.at, _MM_HINT_T1);
        next.at += 64;
        --next.lines;
      }
    }
#pragma GCC unroll 4
    for (int s = 0; s < kSets; ++s) {
      __m512 wv[NP];
#pragma GCC unroll 4
      for (int j = 0; j < NP; ++j) {
        const float* at = w0 + j * pstride + (kk + s) * kF32Panel;
        // Few rows: the panels stream from L2 faster than the FMAs use them; ask for the
        // lines ahead (a prefetch past the end does not fault).
        if constexpr (MR <= kPrefetchRows) {
          _mm_prefetch(reinterpret_cast<const char*>(at + kPrefetchAhead), _MM_HINT_T0);
        }
        wv[j] = _mm512_load_ps(at);
      }
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m512 xb = _mm512_set1_ps(x[r * k + kk + s]);
#pragma GCC unroll 4
        for (int j = 0; j < NP; ++j) c[s][r][j] = _mm512_fmadd_ps(xb, wv[j], c[s][r][j]);
      }
    }
  }
  for (; kk < k; ++kk) {
    __m512 wv[NP];
#pragma GCC unroll 4
    for (int j = 0; j < NP; ++j) wv[j] = _mm512_load_ps(w0 + j * pstride + kk * kF32Panel);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 xb = _mm512_set1_ps(x[r * k + kk]);
#pragma GCC unroll 4
      for (int j = 0; j < NP; ++j) c[0][r][j] = _mm512_fmadd_ps(xb, wv[j], c[0][r][j]);
    }
  }
#pragma GCC unroll 4
  for (int s = 1; s < kSets; ++s) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
      for (int j = 0; j < NP; ++j) c[0][r][j] = _mm512_add_ps(c[0][r][j], c[s][r][j]);
    }
  }
  const __m512 zero = _mm512_setzero_ps();
  const __m512 alpha = _mm512_set1_ps(epi.alpha);
  const __m512 beta = _mm512_set1_ps(epi.beta);
#pragma GCC unroll 4
  for (int j = 0; j < NP; ++j) {
    const int64_t c0 = j * kF32Panel;
    if (c0 >= cols) break;
    const int64_t left = std::min<int64_t>(kF32Panel, cols - c0);
    const __mmask16 mask = left == kF32Panel ? __mmask16(0xffff) : __mmask16((1u << left) - 1u);
    const __m512 b = bias != nullptr ? _mm512_maskz_loadu_ps(mask, bias + c0) : zero;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      __m512 v = _mm512_add_ps(c[0][r][j], b);
      switch (epi.kind) {
        case Epi::kRelu: v = _mm512_max_ps(v, zero); break;
        case Epi::kLeakyRelu:
          // x >= 0 ? x : alpha x
          v = _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, alpha);
          break;
        case Epi::kClip: v = _mm512_min_ps(_mm512_max_ps(v, alpha), beta); break;
        default: break;
      }
      _mm512_mask_storeu_ps(y + r * ldy + c0, mask, v);
    }
  }
  if (epi.kind == Epi::kLoop) {
    // The tile's rows are in L1: the activation loop over them now.
    for (int r = 0; r < MR; ++r) run_activation_span(*epi.spec, y + r * ldy, y + r * ldy, cols);
  }
}

template <int NP>
MLPRT_F32_TARGET void rows_tile(int rows, const float* x, int64_t k, const float* w0,
                                int64_t pstride, const float* bias, float* y, int64_t ldy,
                                int64_t cols, const Epilogue& epi, NextPanels next) {
  switch (rows) {
    case 8: tile<8, NP>(x, k, w0, pstride, bias, y, ldy, cols, epi, next); break;
    case 7: tile<7, NP>(x, k, w0, pstride, bias, y, ldy, cols, epi, next); break;
    case 6: tile<6, NP>(x, k, w0, pstride, bias, y, ldy, cols, epi, next); break;
    case 5: tile<5, NP>(x, k, w0, pstride, bias, y, ldy, cols, epi, next); break;
    case 4: tile<4, NP>(x, k, w0, pstride, bias, y, ldy, cols, epi, next); break;
    case 3: tile<3, NP>(x, k, w0, pstride, bias, y, ldy, cols, epi, next); break;
    case 2: tile<2, NP>(x, k, w0, pstride, bias, y, ldy, cols, epi, next); break;
    default: tile<1, NP>(x, k, w0, pstride, bias, y, ldy, cols, epi, next); break;
  }
}

// Rows [r0, r1) x panels [p0, p0 + np), np in 1..kMaxPanels: row tiles over the panel group,
// whose weights stay in L2 across them; the tiles share out the prefetch of `next` (the next
// item's panels).
MLPRT_F32_TARGET void run_item(const float* x, int64_t r0, int64_t r1, const F32Weights& w,
                               int64_t p0, int64_t np, const float* bias, float* y,
                               const Epilogue& epi, NextPanels next = {}) {
  const int64_t k = w.k();
  const int64_t n = w.n();
  const int64_t n0 = p0 * kF32Panel;
  const int64_t cols = std::min(np * kF32Panel, n - n0);
  const float* w0 = w.panel(p0);
  const int64_t pstride = k * kF32Panel;
  const float* b = bias != nullptr ? bias + n0 : nullptr;
  const int mr = kMaxRows;
  const int64_t tiles = (r1 - r0 + mr - 1) / mr;
  const int64_t share = (next.lines + tiles - 1) / tiles;
  for (int64_t r = r0; r < r1; r += mr) {
    const int rows = static_cast<int>(std::min<int64_t>(mr, r1 - r));
    const float* xr = x + r * k;
    float* yr = y + r * n + n0;
    const NextPanels part{next.at, std::min(share, next.lines)};
    next.at += part.lines * 64;
    next.lines -= part.lines;
    switch (np) {
      case 3: rows_tile<3>(rows, xr, k, w0, pstride, b, yr, n, cols, epi, part); break;
      case 2: rows_tile<2>(rows, xr, k, w0, pstride, b, yr, n, cols, epi, part); break;
      default: rows_tile<1>(rows, xr, k, w0, pstride, b, yr, n, cols, epi, part); break;
    }
  }
}

bool detect_avx512() {
#if defined(__x86_64__) || defined(_M_X64)
  if (!cpu_avx512_usable(true, false)) return false;
  // The plan's hardware id is oneDNN's ISA, which ONEDNN_MAX_CPU_ISA can cap (to act as an
  // older machine): a process capped below avx512_core has no kernel either.
  return onednn_isa_includes(dnnl::cpu_isa::avx512_core);
#else
  return false;
#endif
}

}  // namespace

void F32Weights::Free::operator()(float* p) const noexcept { std::free(p); }

F32Weights::F32Weights(const float* w, int64_t k, int64_t n)
    : m_k(k), m_n(n), m_panels((n + kF32Panel - 1) / kF32Panel) {
  const size_t bytes = static_cast<size_t>(m_panels * m_k * kF32Panel) * sizeof(float);
  m_data.reset(static_cast<float*>(aligned_zeroed(bytes)));
  pack_column_panels(w, k, n, kF32Panel, m_data.get(), [](float v) { return v; });
}

bool f32_gemm_available() {
  static const bool kAvailable = detect_avx512();
  return kAvailable;
}

void f32_gemm(const float* x, int64_t m, const F32Weights& w, const float* bias,
              const ir::ActivationSpec& activation, float* y, int threads) {
  if (m <= 0) return;
  const Epilogue epi = epilogue_of(activation);
  const int64_t panels = w.panels();
  // Panel groups of at most kMaxPanels, sizes differing by one at most (63 panels: 21 x 3; 64:
  // 20 x 3 + 2 x 2).
  const int64_t groups = (panels + kMaxPanels - 1) / kMaxPanels;
  int64_t row_blocks = (m + kRowBlock - 1) / kRowBlock;
  if (threads > 1 && row_blocks * groups < threads) {
    // Too few items for the team: smaller row blocks, of 4 rows at least.
    const int64_t wanted = (threads + groups - 1) / groups;
    row_blocks = std::max<int64_t>(row_blocks, std::min<int64_t>(wanted, (m + 3) / 4));
  }
  const int64_t items = row_blocks * groups;
  if (items == 1) {  // one group of at most kMaxPanels panels (no division on this path)
    run_item(x, 0, m, w, 0, panels, bias, y, epi);
    return;
  }
  const auto first_panel = [&](int64_t g) { return g * panels / groups; };
  const bool weights_leave_l2 = w.bytes() >= kNextPanelsMinWeights;
  auto item = [&](int64_t i) {
    const int64_t rb = i / groups;
    const int64_t g = i % groups;
    const int64_t p0 = first_panel(g);
    const int64_t p1 = first_panel(g + 1);
    // Items run in order on a thread (a static schedule's chunks are contiguous): the next
    // one's panel group, or the first group again for the next row block.
    const int64_t gn = (g + 1) % groups;
    const int64_t q0 = first_panel(gn);
    const int64_t next_bytes = (first_panel(gn + 1) - q0) * w.k() * kF32Panel * 4;
    const bool ask = i + 1 < items && weights_leave_l2 && next_bytes <= kNextPanelsMaxGroup;
    const NextPanels next{reinterpret_cast<const char*>(w.panel(q0)), ask ? next_bytes / 64 : 0};
    run_item(x, rb * m / row_blocks, (rb + 1) * m / row_blocks, w, p0, p1 - p0, bias, y, epi,
             next);
  };
  if (threads <= 1 || items == 1) {
    for (int64_t i = 0; i < items; ++i) item(i);
    return;
  }
  const int team = static_cast<int>(std::min<int64_t>(threads, items));
#pragma omp parallel for num_threads(team) schedule(static)
  for (int64_t i = 0; i < items; ++i) item(i);
}

}  // namespace mlprt::backend::cpu
