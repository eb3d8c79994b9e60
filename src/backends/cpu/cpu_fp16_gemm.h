#pragma once
// The cpu backend's fp16 Dense kernel, for CPUs with AVX-512 FP16 (Sapphire Rapids and later).
// oneDNN 2.6 (Debian's) has no f16 matmul on the CPU, so this is our own:
//
//   Y[m, n] = X[m, :] . W[:, n] + B[n]   with X, W in fp16 and Y, B in fp32.
//
// W is packed once at load into panels of 16 columns with K in pairs: a panel's row kp holds
// W[2kp, c], W[2kp+1, c] for its 16 columns c (one zmm of fp16, zeros past N and past an odd K).
// Each lane of an accumulator then sums every other k of one column, so the kernel broadcasts a
// pair of X values as one 32-bit element, which the load ports broadcast (a 16-bit broadcast
// also takes the shuffle port, which one of the two FMA units shares). A 6-row x 64-column tile
// lives in 24 fp16 accumulators (vfmadd231ph: 32 products an instruction, twice fp32's rate);
// every kChunkPairs pairs of K the lane pairs are added (in fp16) and the sums added into Y
// in fp32, so the fp16 rounding error grows with the chunk, not with K (and a chunk's sum stays
// far below fp16's 65504 for normalized activations). X is converted to fp16 rows of
// fp16_row_stride(K) by the caller (convert_rows_to_fp16).
//
// Measured on the GPU machine's Xeon (pinned cores, one call, against the previous kernel's
// 8-row x 32-column tiles with 16-bit broadcasts): 1024^3 GEMM 247 vs 124 GFLOP/s on 1 core,
// 360-416 vs 237-273 on 2; mnist 784-1024-1024-10 b=64 1 / 2 threads and b=4096 2 threads
// 1.22x / 1.13x / 1.18x faster.

#include <cstdint>
#include <memory>

namespace mlprt::backend::cpu {

/// Columns per packed panel: one zmm of fp16 holds a pair of K for each.
constexpr int64_t kFp16Panel = 16;

/// Elements per row of the fp16 X the kernel reads: K rounded up to a whole pair.
constexpr int64_t fp16_row_stride(int64_t k) { return (k + 1) / 2 * 2; }

/// W [K, N] in fp16 panels of K pairs, 64-byte aligned.
class Fp16Weights {
 public:
  /// Packs row-major fp32 `w` [k, n] (round to nearest even).
  Fp16Weights(const float* w, int64_t k, int64_t n);
  [[nodiscard]] int64_t k() const noexcept { return m_k; }
  [[nodiscard]] int64_t n() const noexcept { return m_n; }
  [[nodiscard]] int64_t panels() const noexcept { return m_panels; }
  /// Rows of a panel: K pairs.
  [[nodiscard]] int64_t pairs() const noexcept { return (m_k + 1) / 2; }
  /// Elements from one panel to the next.
  [[nodiscard]] int64_t panel_stride() const noexcept { return pairs() * 2 * kFp16Panel; }
  [[nodiscard]] const uint16_t* panel(int64_t p) const noexcept {
    return m_data.get() + p * panel_stride();
  }
  [[nodiscard]] size_t bytes() const noexcept {
    return static_cast<size_t>(m_panels * panel_stride()) * sizeof(uint16_t);
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

/// `x` ([m, k] row-major f32) -> fp16 rows of fp16_row_stride(k) (a zero past an odd k), round
/// to nearest even.
void convert_rows_to_fp16(const float* x, int64_t m, int64_t k, uint16_t* out);

/// Y = X W + bias (bias may be null) for `m` rows of fp16 `x` (rows of fp16_row_stride(K), as
/// convert_rows_to_fp16 writes them) into fp32 `y`
/// ([m, N] row-major). `threads` > 1 splits the column panels and row blocks over an OpenMP
/// region of that many threads; 1 runs on the calling thread (also inside another region).
/// Requires fp16_gemm_available().
void fp16_gemm(const uint16_t* x, int64_t m, const Fp16Weights& w, const float* bias, float* y,
               int threads);

}  // namespace mlprt::backend::cpu
