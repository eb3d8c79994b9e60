#include "backends/cpu/cpu_amx_mlp.h"

#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "common/check.h"

#if defined(MLPRT_CPU_AMX_KERNEL)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace mlprt::backend::cpu {
namespace {

constexpr int64_t kTileRows = 16;   // rows of every tile
constexpr int64_t kTileDepth = 32;  // bf16 elements of one A row / one B column pair set
constexpr int64_t kTileCols = 16;   // fp32 columns of one accumulator tile
constexpr int64_t kTileElems = kTileRows * kTileDepth;
constexpr int64_t kBlockRows = 32;  // rows a pass runs: two tiles' worth
constexpr int64_t kAccCols = 32;    // columns a pass runs: two accumulator tiles' worth
constexpr int64_t kSkewWords = 160;  // 320 bytes between scratch regions (see run_blocks)

int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

uint16_t to_bf16(float f) {
  uint32_t bits = 0;
  std::memcpy(&bits, &f, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

#if defined(MLPRT_CPU_AMX_KERNEL)

#define MLPRT_AMX_TARGET \
  __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")))

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles 0-3: accumulators, (row half, column tile) = (0, 0), (0, 1), (1, 0), (1, 1); 4-5: A,
// the block's two 16-row halves (32 bf16 deep); 6-7: B, two 16-column tiles (16 k-pairs).
TileConfig make_config() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.colsb[t] = 64;
    config.rows[t] = 16;
  }
  return config;
}

// The first `left` of 16 lanes (all for 16 or more, none for 0 or less).
__mmask16 tail_mask(int64_t left) {
  if (left >= 16) return static_cast<__mmask16>(0xffffu);
  return static_cast<__mmask16>(left > 0 ? (1u << left) - 1u : 0u);
}

// Rows [row0, row0 + 32) of x (fp32, k per row) into `a` (bf16, ld per row): zeros past k and
// past the last row.
MLPRT_AMX_TARGET void load_rows(const float* x, int64_t k, int64_t row0, int64_t rows,
                                uint16_t* a, int64_t ld) {
  for (int64_t r = 0; r < kBlockRows; ++r) {
    uint16_t* dst = a + r * ld;
    if (row0 + r >= rows) {
      std::memset(dst, 0, static_cast<size_t>(ld) * sizeof(uint16_t));
      continue;
    }
    const float* src = x + (row0 + r) * k;
    int64_t c = 0;
    for (; c + 32 <= k; c += 32) {
      _mm512_storeu_si512(dst + c, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(
                                       _mm512_loadu_ps(src + c + 16), _mm512_loadu_ps(src + c))));
    }
    for (; c < ld; c += 16) {
      const __m512 v = _mm512_maskz_loadu_ps(tail_mask(k - c), src + c);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + c),
                          reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)));
    }
  }
}

// One pass over a 32-row block and one or two 16-column tiles (columns from j0 * 16): the
// accumulators start from the bias (every row of a bias tile holds it: the tile unit adds it for
// free), each k step loads both row halves and both weight tiles once for four products (2x2:
// every tile loaded feeds two), then they are stored to `c` (32 rows x 32 fp32).
MLPRT_AMX_TARGET void tile_pass(const AmxMlp::Layer& layer, const uint16_t* a, int64_t lda,
                                int64_t j0, bool two, float* c) {
  const int64_t n_tiles = layer.n_pad / kTileCols;
  const int64_t steps = layer.k_pad / kTileDepth;
  const auto stride_a = static_cast<long>(lda * sizeof(uint16_t));
  const uint16_t* a_hi = a + kTileRows * lda;
  constexpr long kStrideB = kTileDepth * sizeof(uint16_t);
  constexpr long kStrideBias = kTileCols * sizeof(float);
  constexpr long kStrideC = kAccCols * sizeof(float);
  constexpr int64_t kBiasTile = kTileRows * kTileCols;
  const float* bias = layer.bias_tiles.data() + j0 * kBiasTile;
  _tile_loadd(0, bias, kStrideBias);
  _tile_loadd(2, bias, kStrideBias);
  if (two) {
    _tile_loadd(1, bias + kBiasTile, kStrideBias);
    _tile_loadd(3, bias + kBiasTile, kStrideBias);
  }
  for (int64_t s = 0; s < steps; ++s) {
    const uint16_t* b = layer.tiles.data() + (s * n_tiles + j0) * kTileElems;
    _tile_loadd(4, a + s * kTileDepth, stride_a);
    _tile_loadd(6, b, kStrideB);
    _tile_dpbf16ps(0, 4, 6);
    _tile_loadd(5, a_hi + s * kTileDepth, stride_a);
    _tile_dpbf16ps(2, 5, 6);
    if (two) {
      _tile_loadd(7, b + kTileElems, kStrideB);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, c, kStrideC);
  _tile_stored(2, c + kTileRows * kAccCols, kStrideC);
  if (two) {
    _tile_stored(1, c + kTileCols, kStrideC);
    _tile_stored(3, c + kTileRows * kAccCols + kTileCols, kStrideC);
  }
}

MLPRT_AMX_TARGET inline __m512 activate(__m512 v, bool relu) {
  // maskz: GCC's plain max_ps reads an undefined passthrough (-Wmaybe-uninitialized).
  return relu ? _mm512_maskz_max_ps(0xffff, v, _mm512_setzero_ps()) : v;
}

// The activation on a pass's accumulators (bias included): into the next layer's bf16 rows
// (columns past n hold 0: zero weights and bias, an activation of 0 that is 0), or (`y`) the
// valid rows and columns of the output.
MLPRT_AMX_TARGET void epilogue(const AmxMlp::Layer& layer, const float* c, int64_t j0, bool two,
                               uint16_t* next, int64_t next_ld, float* y, int64_t row0,
                               int64_t rows) {
  for (int64_t r = 0; r < kBlockRows; ++r) {
    const float* acc = c + r * kAccCols;
    if (y != nullptr) {
      if (row0 + r >= rows) break;
      for (int t = 0; t < (two ? 2 : 1); ++t) {
        const int64_t col = (j0 + t) * kTileCols;
        _mm512_mask_storeu_ps(y + (row0 + r) * layer.n + col, tail_mask(layer.n - col),
                              activate(_mm512_loadu_ps(acc + t * kTileCols), layer.relu));
      }
      continue;
    }
    uint16_t* dst = next + r * next_ld + j0 * kTileCols;
    const __m512 lo = activate(_mm512_loadu_ps(acc), layer.relu);
    if (two) {  // 32 columns: one conversion, one 64-byte store
      const __m512 hi = activate(_mm512_loadu_ps(acc + kTileCols), layer.relu);
      _mm512_storeu_si512(dst, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst),
                          reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(lo)));
    }
  }
}

MLPRT_AMX_TARGET void run_blocks(const std::vector<AmxMlp::Layer>& layers, int64_t max_ld,
                                 const float* x, float* y, int64_t block_begin, int64_t block_end,
                                 int64_t rows, std::byte* scratch) {
  // Two blocks interleaved pass by pass (one's epilogue beside the other's tile products) was
  // measured slower on 64-wide layers: the passes share the accumulator tiles.
  // Cache-line aligned: a tile or vector row split over two lines costs both.
  const auto misalign = reinterpret_cast<uintptr_t>(scratch) % 64;
  auto* words = reinterpret_cast<uint16_t*>(scratch + (misalign ? 64 - misalign : 0));
  // Regions a few lines apart past 4 KiB multiples: loads that alias an earlier store's address
  // modulo 4 KiB wait for it.
  const int64_t region = kBlockRows * max_ld + kSkewWords;
  uint16_t* buffers[2] = {words, words + region};
  float* acc = reinterpret_cast<float*>(words + 2 * region);
  const TileConfig config = make_config();
  _tile_loadconfig(&config);
  for (int64_t block = block_begin; block < block_end; ++block) {
    const int64_t row0 = block * kBlockRows;
    int cur = 0;
    load_rows(x, layers.front().k, row0, rows, buffers[cur], layers.front().k_pad);
    for (size_t l = 0; l < layers.size(); ++l) {
      const AmxMlp::Layer& layer = layers[l];
      const bool last = l + 1 == layers.size();
      const int64_t next_ld = last ? 0 : layers[l + 1].k_pad;
      uint16_t* next = buffers[1 - cur];
      const int64_t n_tiles = layer.n_pad / kTileCols;
      for (int64_t j0 = 0; j0 < n_tiles; j0 += 2) {
        const bool two = j0 + 1 < n_tiles;
        tile_pass(layer, buffers[cur], layer.k_pad, j0, two, acc);
        epilogue(layer, acc, j0, two, next, next_ld, last ? y : nullptr, row0, rows);
      }
      if (!last && layer.n_pad < next_ld) {
        // The next layer reads 32-deep steps: its last 16 columns are padding, zero them.
        for (int64_t r = 0; r < kBlockRows; ++r) {
          std::memset(next + r * next_ld + layer.n_pad, 0,
                      static_cast<size_t>(next_ld - layer.n_pad) * sizeof(uint16_t));
        }
      }
      cur = 1 - cur;
    }
  }
  _tile_release();
}

bool request_amx_permission() {
  // ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18): Linux hands out the tile state
  // per process, on request.
  return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

std::string amx_unavailable_uncached() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return "CPUID leaf 7 is missing";
  const bool amx_bf16 = (edx >> 22) & 1u;
  const bool amx_tile = (edx >> 24) & 1u;
  const bool avx512_bf16 = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) != 0 && ((a >> 5) & 1u);
  }();
  if (!amx_bf16 || !amx_tile) return "the CPU has no AMX-BF16 / AMX-TILE";
  if (!avx512_bf16) return "the CPU has no AVX-512 BF16";
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0 || !((ecx >> 27) & 1u)) {
    return "the OS does not enable XSAVE";
  }
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 0x600e6u) != 0x600e6u) return "the OS does not enable the AMX tile state (XCR0)";
  if (!request_amx_permission()) return "the kernel refused the AMX tile state (arch_prctl)";
  return {};
}

#endif  // MLPRT_CPU_AMX_KERNEL

}  // namespace

std::string amx_mlp_unavailable() {
#if defined(MLPRT_CPU_AMX_KERNEL)
  static const std::string why = amx_unavailable_uncached();
  return why;
#else
  return "this build's compiler has no AMX intrinsics";
#endif
}

Result<AmxMlp> AmxMlp::create(const std::vector<AmxMlpLayerDesc>& layers) {
  if (layers.empty()) return make_error(StatusCode::kInvalidArgument, "AMX MLP: no layers");
  if (const std::string why = amx_mlp_unavailable(); !why.empty()) {
    return make_error(StatusCode::kUnsupported, "AMX MLP: ", why);
  }
  AmxMlp out;
  for (size_t l = 0; l < layers.size(); ++l) {
    const AmxMlpLayerDesc& d = layers[l];
    if (d.weights == nullptr || d.k < 1 || d.n < 1 || d.k > kAmxMlpMaxK || d.n > kAmxMlpMaxN) {
      return make_error(StatusCode::kInvalidArgument, "AMX MLP: layer ", l, " is ", d.k, "x", d.n,
                        "; allowed: inputs of 1 to ", kAmxMlpMaxK, " and outputs of 1 to ",
                        kAmxMlpMaxN, " features, with weights");
    }
    if (l > 0 && d.k != layers[l - 1].n) {
      return make_error(StatusCode::kInvalidArgument, "AMX MLP: layer ", l, " takes ", d.k,
                        " features, layer ", l - 1, " gives ", layers[l - 1].n);
    }
    Layer layer;
    layer.k = d.k;
    layer.n = d.n;
    layer.k_pad = round_up(d.k, kTileDepth);
    layer.n_pad = round_up(d.n, kTileCols);
    layer.relu = d.relu;
    const int64_t n_tiles = layer.n_pad / kTileCols;
    const int64_t steps = layer.k_pad / kTileDepth;
    layer.tiles.assign(static_cast<size_t>(steps * n_tiles * kTileElems), 0);
    for (int64_t s = 0; s < steps; ++s) {
      for (int64_t j = 0; j < n_tiles; ++j) {
        uint16_t* tile = layer.tiles.data() + (s * n_tiles + j) * kTileElems;
        for (int64_t r = 0; r < kTileRows; ++r) {
          for (int64_t c = 0; c < kTileCols; ++c) {
            const int64_t col = j * kTileCols + c;
            for (int64_t half = 0; half < 2; ++half) {
              const int64_t kk = s * kTileDepth + 2 * r + half;
              if (kk < d.k && col < d.n) tile[r * kTileDepth + 2 * c + half] = to_bf16(d.weights[kk * d.n + col]);
            }
          }
        }
      }
    }
    layer.bias_tiles.assign(static_cast<size_t>(layer.n_pad * kTileRows), 0.0f);
    for (int64_t col = 0; d.bias != nullptr && col < d.n; ++col) {
      const int64_t j = col / kTileCols;
      for (int64_t r = 0; r < kTileRows; ++r) {
        layer.bias_tiles[static_cast<size_t>((j * kTileRows + r) * kTileCols + col % kTileCols)] =
            d.bias[col];
      }
    }
    out.m_max_ld = std::max(out.m_max_ld, layer.k_pad);
    out.m_layers.push_back(std::move(layer));
  }
  return out;
}

size_t AmxMlp::packed_bytes() const noexcept {
  size_t bytes = 0;
  for (const Layer& layer : m_layers) {
    bytes += layer.tiles.size() * sizeof(uint16_t) + layer.bias_tiles.size() * sizeof(float);
  }
  return bytes;
}

size_t AmxMlp::scratch_bytes() const noexcept {
  // Two row buffers (a layer's input and output), then a pass's accumulators; 64 bytes of
  // slack to align them.
  return static_cast<size_t>(2 * (kBlockRows * m_max_ld + kSkewWords)) * sizeof(uint16_t) +
         static_cast<size_t>(kBlockRows * kAccCols) * sizeof(float) + 64;
}

void AmxMlp::run(const float* x, float* y, int64_t rows, int threads, std::byte* scratch) const {
#if defined(MLPRT_CPU_AMX_KERNEL)
  if (rows <= 0) return;
  const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
  const int team = static_cast<int>(std::min<int64_t>(std::max(threads, 1), blocks));
  if (team <= 1) {
    run_blocks(m_layers, m_max_ld, x, y, 0, blocks, rows, scratch);
    return;
  }
  const size_t per_thread = scratch_bytes();
#pragma omp parallel num_threads(team)
  {
    const int64_t t = omp_get_thread_num();
    const int64_t n = omp_get_num_threads();
    run_blocks(m_layers, m_max_ld, x, y, blocks * t / n, blocks * (t + 1) / n, rows,
               scratch + static_cast<size_t>(t) * per_thread);
  }
#else
  (void)x, (void)y, (void)rows, (void)threads, (void)scratch;
#endif
}

}  // namespace mlprt::backend::cpu
