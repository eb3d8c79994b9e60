#pragma once
// A whole chain of Dense layers in one pass over the rows on AMX (the CPU's analogue of the cuda
// backend's fused MLP kernel): each thread takes a share of the rows and runs 32 of them at a
// time through every layer, with the activations kept in two small bf16 buffers between layers
// and the weights packed once, at load, in the tiles' VNNI layout. Per layer, 32 rows and
// 32 columns: four accumulator tiles loaded with the bias, then per 32-deep step two A tiles (the
// row halves) and two B tiles (the weights' column halves) for four TDPBF16PS, then the
// activation in AVX-512 on the way to the next layer's bf16 rows (or to y, in fp32, for the last
// layer). One OpenMP region per call, no barrier.
//
// bf16 weights and activations, fp32 accumulation, bias and output: a bf16 tactic, for builds
// that allow bf16 (`--bf16`), timed by the builder against the per-layer engine.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mlprt/status.h"

namespace mlprt::backend::cpu {

/// Widest layer input (the model's input included) and widest layer output the kernel takes.
inline constexpr int64_t kAmxMlpMaxK = 1024;
inline constexpr int64_t kAmxMlpMaxN = 256;

/// One Dense layer as the kernel sees it: y = act(x W + b), W f32 [k, n] row-major.
struct AmxMlpLayerDesc {
  int64_t k = 0;
  int64_t n = 0;
  const float* weights = nullptr;
  const float* bias = nullptr;  ///< null: no bias
  bool relu = false;            ///< else identity
};

/// Whether this machine and build can run the kernel: AMX-BF16 and AMX-TILE on the CPU, the
/// OS's tile state enabled, and the process granted it (arch_prctl); else why not.
std::string amx_mlp_unavailable();

class AmxMlp {
 public:
  /// Packs the weights (bf16, VNNI tiles) and biases; the sizes must chain (k of layer i+1 ==
  /// n of layer i) and fit kAmxMlpMaxK / kAmxMlpMaxN.
  static Result<AmxMlp> create(const std::vector<AmxMlpLayerDesc>& layers);

  /// Scratch each thread of run() needs: its blocks' bf16 rows between layers and their
  /// accumulators.
  [[nodiscard]] size_t scratch_bytes() const noexcept;

  /// y [rows, n_last] = the chain on x [rows, k_first], both fp32 row-major, on up to `threads`
  /// OpenMP threads, each using its scratch_bytes() of `scratch` (threads x that, from the
  /// caller: run() allocates nothing).
  void run(const float* x, float* y, int64_t rows, int threads, std::byte* scratch) const;

  [[nodiscard]] size_t packed_bytes() const noexcept;
  [[nodiscard]] int64_t input_features() const noexcept { return m_layers.front().k; }
  [[nodiscard]] int64_t output_features() const noexcept { return m_layers.back().n; }

  struct Layer {
    int64_t k = 0;
    int64_t n = 0;
    int64_t k_pad = 0;  ///< k rounded up to 32 (one tile's depth)
    int64_t n_pad = 0;  ///< n rounded up to 16 (one tile's width)
    bool relu = false;
    std::vector<uint16_t> tiles;  ///< per (k step, 16-column tile): 16 x 32 bf16, VNNI pairs
    /// Per 16-column tile, 16 rows of its bias (zeros past n, and where there is none): the
    /// accumulators start from it.
    std::vector<float> bias_tiles;
  };

 private:
  std::vector<Layer> m_layers;
  int64_t m_max_ld = 0;  ///< widest k_pad: the row buffers' stride
};

}  // namespace mlprt::backend::cpu
