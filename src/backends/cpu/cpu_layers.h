#pragma once
// The cpu backend's element-wise and normalization layers: loops over contiguous float rows
// that the compiler vectorizes, split over the context's OpenMP threads when large. Parameters are set at load (Executable), sizes in
// prepare (per context); the kernels never allocate.

#include <cstdint>
#include <vector>

#include "ir/activation.h"

namespace mlprt::backend::cpu {

enum class BinaryKind { kAdd, kSub, kMul, kDiv, kPow };

/// The sizes a reduction layer loops over: `outer` rows of `n` elements `inner` apart.
struct RowLoop {
  int64_t outer = 0;
  int64_t n = 0;
  int64_t inner = 1;
};

/// Layer parameters fixed at load.
struct LayerParams {
  ir::ActivationSpec activation;         ///< Activation
  BinaryKind binary = BinaryKind::kAdd;  ///< Add, Binary
  int64_t axis = 0;                      ///< Softmax, LayerNorm, ScaleShift (may be negative)
  bool log = false;                      ///< Softmax
  bool coerce_2d = false;                ///< Softmax
  double epsilon = 1e-5;                 ///< LayerNorm
  std::vector<float> scale;              ///< LayerNorm (empty: 1), ScaleShift
  std::vector<float> shift;              ///< LayerNorm bias (empty: 0), ScaleShift
};

/// y = act(x) over n elements, split over OpenMP's threads when large (cpu_simd.h).
void run_activation(const ir::ActivationSpec& spec, const float* x, float* y, int64_t n);
/// The same on the calling thread only (epilogues inside a parallel region).
void run_activation_span(const ir::ActivationSpec& spec, const float* x, float* y, int64_t n);
/// y[i] = a[i * sa] op b[i * sb] for i < n (strides 0 broadcast, 1 contiguous).
void run_binary_row(BinaryKind kind, const float* a, int64_t sa, const float* b, int64_t sb,
                    float* y, int64_t n);
/// y[i] += r[i] for i < n, split over OpenMP's threads when large (and not in a region).
void add_in_place(float* y, const float* r, int64_t n);
void run_softmax(const RowLoop& loop, bool log, const float* x, float* y);
/// Normalizes `outer` rows of `n`; scale/shift (if not empty) are indexed j % size.
void run_layer_norm(const RowLoop& loop, const LayerParams& p, const float* x, float* y);
/// y = x * scale[c] + shift[c]; `loop.n` channels, `loop.inner` elements per channel.
void run_scale_shift(const RowLoop& loop, const LayerParams& p, const float* x, float* y);

}  // namespace mlprt::backend::cpu
