#include "backends/cpu/cpu_layers.h"

#include <algorithm>
#include <cmath>

#include "backends/cpu/cpu_simd.h"

namespace mlprt::backend::cpu {
namespace {

template <typename Op>
void binary_loop(const float* a, int64_t sa, const float* b, int64_t sb, float* y, int64_t n,
                 Op op) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) y[i] = op(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const float bv = *b;
    for (int64_t i = 0; i < n; ++i) y[i] = op(a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const float av = *a;
    for (int64_t i = 0; i < n; ++i) y[i] = op(av, b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = op(a[i * sa], b[i * sb]);
  }
}

template <ir::ActivationKind K>
void activation_loop(const float* x, float* y, int64_t n, float alpha, float beta) {
  for (int64_t i = 0; i < n; ++i) y[i] = ir::apply_activation<float>(K, x[i], alpha, beta);
}

// erf-based kinds: std::erf does not vectorize; erf_vectorizable does (cpu_simd.h).
MLPRT_CPU_CLONES void gelu_erf_loop(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_erf_vectorizable(x[i]);
}

MLPRT_CPU_CLONES void erf_loop(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = erf_vectorizable(x[i]);
}

// Rows [begin, end) of a layer norm: double sums (the reference is float64; the float -> double
// widening vectorizes), scale/shift tiled over the row without a modulo per element.
MLPRT_CPU_CLONES void layer_norm_rows(int64_t begin, int64_t end, int64_t n, const float* scale,
                                      int64_t ns, const float* shift, int64_t nb, double epsilon,
                                      const float* x, float* y) {
  for (int64_t o = begin; o < end; ++o) {
    const float* px = x + o * n;
    float* py = y + o * n;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; ++j) sum += px[j];
    const double mean = sum / static_cast<double>(n);
    double var = 0.0;
#pragma omp simd reduction(+ : var)
    for (int64_t j = 0; j < n; ++j) {
      const double d = px[j] - mean;
      var += d * d;
    }
    var /= static_cast<double>(n);
    const auto inv = static_cast<float>(1.0 / std::sqrt(var + epsilon));
    const auto m = static_cast<float>(mean);
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) py[j] = (px[j] - m) * inv;
    if (ns > 0) {
      for (int64_t j0 = 0; j0 < n; j0 += ns) {
#pragma omp simd
        for (int64_t j = 0; j < ns; ++j) py[j0 + j] *= scale[j];
      }
    }
    if (nb > 0) {
      for (int64_t j0 = 0; j0 < n; j0 += nb) {
#pragma omp simd
        for (int64_t j = 0; j < nb; ++j) py[j0 + j] += shift[j];
      }
    }
  }
}

}  // namespace

void run_activation(const ir::ActivationSpec& spec, const float* x, float* y, int64_t n) {
  const int threads = loop_threads(n);
  if (threads <= 1) {
    run_activation_span(spec, x, y, n);
    return;
  }
  // Chunks of whole cache lines (16 floats) per thread.
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), count = omp_get_num_threads();
    const int64_t lines = (n + 15) / 16;
    const int64_t begin = std::min(n, lines * t / count * 16);
    const int64_t end = std::min(n, lines * (t + 1) / count * 16);
    run_activation_span(spec, x + begin, y + begin, end - begin);
  }
}

void run_activation_span(const ir::ActivationSpec& spec, const float* x, float* y, int64_t n) {
  using K = ir::ActivationKind;
  const auto alpha = static_cast<float>(spec.alpha);
  const auto beta = static_cast<float>(spec.beta);
  // One instantiation per kind: the switch is outside the loop so each loop vectorizes.
  switch (spec.kind) {
    case K::kNone:
      std::copy(x, x + n, y);
      break;
    case K::kRelu:
      activation_loop<K::kRelu>(x, y, n, alpha, beta);
      break;
    case K::kLeakyRelu:
      activation_loop<K::kLeakyRelu>(x, y, n, alpha, beta);
      break;
    case K::kSigmoid:
      activation_loop<K::kSigmoid>(x, y, n, alpha, beta);
      break;
    case K::kTanh:
      activation_loop<K::kTanh>(x, y, n, alpha, beta);
      break;
    case K::kElu:
      activation_loop<K::kElu>(x, y, n, alpha, beta);
      break;
    case K::kSelu:
      activation_loop<K::kSelu>(x, y, n, alpha, beta);
      break;
    case K::kHardSigmoid:
      activation_loop<K::kHardSigmoid>(x, y, n, alpha, beta);
      break;
    case K::kHardSwish:
      activation_loop<K::kHardSwish>(x, y, n, alpha, beta);
      break;
    case K::kSoftplus:
      activation_loop<K::kSoftplus>(x, y, n, alpha, beta);
      break;
    case K::kGeluErf:
      gelu_erf_loop(x, y, n);
      break;
    case K::kGeluTanh:
      activation_loop<K::kGeluTanh>(x, y, n, alpha, beta);
      break;
    case K::kClip:
      activation_loop<K::kClip>(x, y, n, alpha, beta);
      break;
    case K::kSoftplusThreshold:
      activation_loop<K::kSoftplusThreshold>(x, y, n, alpha, beta);
      break;
    case K::kExp:
      activation_loop<K::kExp>(x, y, n, alpha, beta);
      break;
    case K::kLog:
      activation_loop<K::kLog>(x, y, n, alpha, beta);
      break;
    case K::kNeg:
      activation_loop<K::kNeg>(x, y, n, alpha, beta);
      break;
    case K::kAbs:
      activation_loop<K::kAbs>(x, y, n, alpha, beta);
      break;
    case K::kSqrt:
      activation_loop<K::kSqrt>(x, y, n, alpha, beta);
      break;
    case K::kReciprocal:
      activation_loop<K::kReciprocal>(x, y, n, alpha, beta);
      break;
    case K::kErf:
      erf_loop(x, y, n);
      break;
  }
}

void run_binary_row(BinaryKind kind, const float* a, int64_t sa, const float* b, int64_t sb,
                    float* y, int64_t n) {
  switch (kind) {
    case BinaryKind::kAdd:
      binary_loop(a, sa, b, sb, y, n, [](float u, float v) { return u + v; });
      break;
    case BinaryKind::kSub:
      binary_loop(a, sa, b, sb, y, n, [](float u, float v) { return u - v; });
      break;
    case BinaryKind::kMul:
      binary_loop(a, sa, b, sb, y, n, [](float u, float v) { return u * v; });
      break;
    case BinaryKind::kDiv:
      binary_loop(a, sa, b, sb, y, n, [](float u, float v) { return u / v; });
      break;
    case BinaryKind::kPow:
      binary_loop(a, sa, b, sb, y, n, [](float u, float v) { return std::pow(u, v); });
      break;
  }
}

void add_in_place(float* y, const float* r, int64_t n) {
  const int threads = loop_threads(n);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int64_t t = omp_get_thread_num(), count = omp_get_num_threads();
    const int64_t lines = (n + 15) / 16;
    const int64_t begin = std::min(n, lines * t / count * 16);
    const int64_t end = std::min(n, lines * (t + 1) / count * 16);
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) y[i] += r[i];
  }
}

void run_softmax(const RowLoop& loop, bool log, const float* x, float* y) {
  // No element along the axis (a 0 dim): nothing to normalize, and px[0] below would be read
  // from an empty, possibly null, buffer (found by the plan fuzzer).
  if (loop.n == 0) return;
  for (int64_t o = 0; o < loop.outer; ++o) {
    for (int64_t i = 0; i < loop.inner; ++i) {
      const float* px = x + o * loop.n * loop.inner + i;
      float* py = y + o * loop.n * loop.inner + i;
      float mx = px[0];
      for (int64_t j = 1; j < loop.n; ++j) mx = std::max(mx, px[j * loop.inner]);
      // Accumulate in double: rows can be long, and the reference is float64.
      double sum = 0.0;
      for (int64_t j = 0; j < loop.n; ++j) {
        const float e = std::exp(px[j * loop.inner] - mx);
        if (!log) py[j * loop.inner] = e;
        sum += e;
      }
      if (log) {
        const auto ls = static_cast<float>(std::log(sum));
        for (int64_t j = 0; j < loop.n; ++j) py[j * loop.inner] = px[j * loop.inner] - mx - ls;
      } else {
        const auto inv = static_cast<float>(1.0 / sum);
        for (int64_t j = 0; j < loop.n; ++j) py[j * loop.inner] *= inv;
      }
    }
  }
}

void run_layer_norm(const RowLoop& loop, const LayerParams& p, const float* x, float* y) {
  if (loop.n == 0) return;
  const auto ns = static_cast<int64_t>(p.scale.size());
  const auto nb = static_cast<int64_t>(p.shift.size());
  const auto threads = static_cast<int>(std::min<int64_t>(loop_threads(loop.outer * loop.n), loop.outer));
  if (threads <= 1) {
    layer_norm_rows(0, loop.outer, loop.n, p.scale.data(), ns, p.shift.data(), nb, p.epsilon, x, y);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), count = omp_get_num_threads();
    layer_norm_rows(loop.outer * t / count, loop.outer * (t + 1) / count, loop.n, p.scale.data(),
                    ns, p.shift.data(), nb, p.epsilon, x, y);
  }
}

void run_scale_shift(const RowLoop& loop, const LayerParams& p, const float* x, float* y) {
  const int64_t channels = loop.outer * loop.n;
  const int threads = loop_threads(channels * loop.inner);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t oc = 0; oc < channels; ++oc) {
    const float s = p.scale[static_cast<size_t>(oc % loop.n)];
    const float t = p.shift[static_cast<size_t>(oc % loop.n)];
    const float* px = x + oc * loop.inner;
    float* py = y + oc * loop.inner;
#pragma omp simd
    for (int64_t i = 0; i < loop.inner; ++i) py[i] = px[i] * s + t;
  }
}

}  // namespace mlprt::backend::cpu
