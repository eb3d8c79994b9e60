#pragma once
// Weights as column panels, the layout of the backend's own Dense kernels (cpu_f32_gemm.h,
// cpu_fp16_gemm.h): [ceil(n / P) panels][k rows][P columns], zeros past n, 64-byte aligned.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace mlprt::backend::cpu {

/// `bytes` of zeroed memory aligned to 64, for std::free; throws std::bad_alloc.
inline void* aligned_zeroed(size_t bytes) {
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  return p;
}

/// w [k, n] (f32, row-major) into `out` (zeroed, ceil(n / panel) * k * panel elements) as
/// panels of `panel` columns, each value through `convert`.
template <typename T, typename Convert>
void pack_column_panels(const float* w, int64_t k, int64_t n, int64_t panel, T* out,
                        Convert convert) {
  for (int64_t c0 = 0; c0 < n; c0 += panel) {
    T* dst = out + (c0 / panel) * k * panel;
    const int64_t cols = std::min(panel, n - c0);
    for (int64_t row = 0; row < k; ++row) {
      for (int64_t c = 0; c < cols; ++c) dst[row * panel + c] = convert(w[row * n + c0 + c]);
    }
  }
}

}  // namespace mlprt::backend::cpu
