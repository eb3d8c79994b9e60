#pragma once
// The cpu backend's fp16 Dense kernel, for CPUs with AVX-512 FP16 (Sapphire Rapids and later).
// oneDNN 2.6 (Debian's) has no f16 matmul on the CPU, so this is our own:
//
//   Y[m, n] = X[m, :] . W[:, n] + B[n]   with X, W in fp16 and Y, B in fp32.
//
// W is packed once at load into panels of 32 columns (one zmm of fp16): panel p holds
// W[k, 32p .. 32p+31] for k = 0..K-1, contiguous, zero-padded past N. The micro-kernel keeps an
// 8-row x 64-column tile in 16 fp16 accumulators (vfmadd231ph: 32 products an instruction,
// twice fp32's rate) and flushes them into fp32 every kChunkK steps of K, so that the fp16
// rounding error grows with kChunkK, not with K (and a chunk's sum stays far below fp16's
// 65504 for normalized activations). X is converted to fp16 by the caller (convert_src_to_fp16).

#include <cstdint>
#include <memory>

namespace mlprt::backend::cpu {

/// Columns per packed panel: one zmm of fp16.
constexpr int64_t kFp16Panel = 32;

/// W [K, N] in fp16 panels, 64-byte aligned.
class Fp16Weights {
 public:
  /// Packs row-major fp32 `w` [k, n] (round to nearest even).
  Fp16Weights(const float* w, int64_t k, int64_t n);
  [[nodiscard]] int64_t k() const noexcept { return m_k; }
  [[nodiscard]] int64_t n() const noexcept { return m_n; }
  [[nodiscard]] int64_t panels() const noexcept { return m_panels; }
  [[nodiscard]] const uint16_t* panel(int64_t p) const noexcept {
    return m_data.get() + p * m_k * kFp16Panel;
  }
  [[nodiscard]] size_t bytes() const noexcept {
    return static_cast<size_t>(m_panels * m_k * kFp16Panel) * sizeof(uint16_t);
  }

 private:
  struct Free {
    void operator()(uint16_t* p) const noexcept;
  };
  int64_t m_k = 0;
  int64_t m_n = 0;
  int64_t m_panels = 0;
  std::unique_ptr<uint16_t, Free> m_data;
};

/// Whether this build has the fp16 kernel: its compiler must know AVX-512 FP16 (GCC 12 does,
/// clang 14 does not; CMake checks, MLPRT_CPU_FP16_KERNEL).
bool fp16_kernel_compiled();

/// Whether this CPU runs the fp16 kernel: the build has it, AVX-512 FP16, the OS saves zmm state, and oneDNN's
/// ISA (the plan's hardware id, which ONEDNN_MAX_CPU_ISA may cap) is avx512_core_amx.
bool fp16_gemm_available();

/// `x` ([m, k] row-major f32) -> fp16, round to nearest even.
void convert_to_fp16(const float* x, uint16_t* out, int64_t count);

/// Y = X W + bias (bias may be null) for `m` rows of fp16 `x` ([m, K] row-major) into fp32 `y`
/// ([m, N] row-major). `threads` > 1 splits the column panels and row blocks over an OpenMP
/// region of that many threads; 1 runs on the calling thread (also inside another region).
/// Requires fp16_gemm_available().
void fp16_gemm(const uint16_t* x, int64_t m, const Fp16Weights& w, const float* bias, float* y,
               int threads);

}  // namespace mlprt::backend::cpu
