#pragma once
// The cpu backend's own fp32 Dense kernel for AVX-512 CPUs, for small row counts, where a oneDNN
// matmul call's fixed cost (argument setup, dnnl_primitive_execute, stream wait: 0.5-1 us) is
// most of the layer's time:
//
//   Y[m, n] = act(X[m, :] . W[:, n] + B[n])   all fp32, X and Y row-major.
//
// W is packed once at load into panels of 16 columns (one zmm): panel p holds W[k, 16p .. 16p+15]
// for k = 0..K-1, contiguous, zero-padded past N. A micro-tile keeps up to 8 rows x 3 panels in
// zmm accumulators; with few rows (M = 1: a matrix-vector product) it keeps several
// accumulator sets over interleaved k so that the FMA latency is hidden. The bias is added and
// the activation applied in the tile's store: ReLU, leaky ReLU, clip and identity on the
// registers, the other kinds by the backend's vectorized activation loop on the tile's rows
// while they are in L1. No allocation, no oneDNN call.

#include <cstdint>
#include <memory>

#include "ir/activation.h"

namespace mlprt::backend::cpu {

/// Columns per packed panel: one zmm of fp32.
constexpr int64_t kF32Panel = 16;

/// W [K, N] in fp32 panels, 64-byte aligned.
class F32Weights {
 public:
  /// Packs row-major `w` [k, n].
  F32Weights(const float* w, int64_t k, int64_t n);
  [[nodiscard]] int64_t k() const noexcept { return m_k; }
  [[nodiscard]] int64_t n() const noexcept { return m_n; }
  [[nodiscard]] int64_t panels() const noexcept { return m_panels; }
  [[nodiscard]] const float* panel(int64_t p) const noexcept {
    return m_data.get() + p * m_k * kF32Panel;
  }
  [[nodiscard]] size_t bytes() const noexcept {
    return static_cast<size_t>(m_panels * m_k * kF32Panel) * sizeof(float);
  }

 private:
  struct Free {
    void operator()(float* p) const noexcept;
  };
  int64_t m_k = 0;
  int64_t m_n = 0;
  int64_t m_panels = 0;
  std::unique_ptr<float, Free> m_data;
};

/// Whether this CPU runs the kernel: AVX-512 F (with BW, VL, DQ: x86-64-v4) and the OS saves
/// the zmm state.
bool f32_gemm_available();

/// Y = act(X W + bias) (bias may be null) for `m` rows of `x` ([m, K] row-major) into `y`
/// ([m, N] row-major; may not alias x). `threads` > 1 splits row blocks x panel groups over an
/// OpenMP region of that many threads (where there are as many work items); 1 runs on the
/// calling thread (also inside another region). Requires f32_gemm_available().
void f32_gemm(const float* x, int64_t m, const F32Weights& w, const float* bias,
              const ir::ActivationSpec& activation, float* y, int threads);

}  // namespace mlprt::backend::cpu
