#include "backends/cpu/cpu_data_layers.h"

#include <algorithm>
#include <limits>

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

namespace mlprt::backend::cpu {

void run_strided_copy(CopyRun& run, const float* x, float* y) {
  if (run.total == 0) return;
  const ir::StridedCopy& c = run.copy;
  const size_t rank = c.out.size();
  if (rank == 0) {
    y[0] = x[c.offset];
    return;
  }
  const int64_t inner = c.out[rank - 1];
  const int64_t step = c.stride[rank - 1];
  std::fill(run.counter.begin(), run.counter.end(), 0);
  int64_t src = c.offset;
  for (int64_t done = 0; done < run.total; done += inner) {
    const float* px = x + src;
    float* py = y + done;
    if (step == 1) {
      std::copy(px, px + inner, py);
    } else {
      for (int64_t i = 0; i < inner; ++i) py[i] = px[i * step];
    }
    // Odometer over the outer output dims (index arithmetic: src tracks sum index_d * stride_d).
    for (size_t axis = rank - 1; axis-- > 0;) {
      src += c.stride[axis];
      if (++run.counter[axis] < c.out[axis]) break;
      src -= c.stride[axis] * c.out[axis];
      run.counter[axis] = 0;
    }
  }
}

namespace {

// Element offset of flat index `i` over `dims` (outermost first) with element `strides`.
int64_t offset_of(int64_t i, const std::vector<int64_t>& dims, const std::vector<int64_t>& strides) {
  int64_t off = 0;
  for (size_t d = dims.size(); d-- > 0;) {
    off += (i % dims[d]) * strides[d];
    i /= dims[d];
  }
  return off;
}

}  // namespace

void run_reduce_mean(const ir::ReduceLoops& loops, const float* x, float* y) {
  const double inv = loops.n > 0 ? 1.0 / static_cast<double>(loops.n) : 0.0;
  if (loops.general) {  // reduced axes not adjacent: index arithmetic per element
    for (int64_t o = 0; o < loops.outer; ++o) {
      const float* px = x + offset_of(o, loops.kept_dims, loops.kept_strides);
      double sum = 0.0;
      for (int64_t r = 0; r < loops.n; ++r) {
        sum += px[offset_of(r, loops.reduced_dims, loops.reduced_strides)];
      }
      y[o] = loops.n > 0 ? static_cast<float>(sum * inv) : std::numeric_limits<float>::quiet_NaN();
    }
    return;
  }
  if (loops.inner == 1) {
    for (int64_t o = 0; o < loops.outer; ++o) {
      const float* px = x + o * loops.n;
      double sum = 0.0;
      for (int64_t j = 0; j < loops.n; ++j) sum += px[j];
      y[o] = loops.n > 0 ? static_cast<float>(sum * inv) : std::numeric_limits<float>::quiet_NaN();
    }
    return;
  }
  // Reduced axis in the middle: accumulate whole inner rows (contiguous, vectorizable).
  for (int64_t o = 0; o < loops.outer; ++o) {
    float* py = y + o * loops.inner;
    std::fill(py, py + loops.inner, 0.0f);
    for (int64_t j = 0; j < loops.n; ++j) {
      const float* px = x + (o * loops.n + j) * loops.inner;
      for (int64_t i = 0; i < loops.inner; ++i) py[i] += px[i];
    }
    const auto f = static_cast<float>(inv);
    for (int64_t i = 0; i < loops.inner; ++i) {
      py[i] = loops.n > 0 ? py[i] * f : std::numeric_limits<float>::quiet_NaN();
    }
  }
}

namespace {

// One product: Y (stored [m, n], or [n, m] when transposed) = op(A) op(B), row-major sgemm.
void one_product(const ir::MatMulShape& s, const LayerParams& p, const float* a, const float* b,
                 float* y) {
  const auto m = static_cast<dnnl_dim_t>(s.m), n = static_cast<dnnl_dim_t>(s.n),
             k = static_cast<dnnl_dim_t>(s.k);
  const dnnl_dim_t lda = s.transpose_a ? m : k;
  const dnnl_dim_t ldb = s.transpose_b ? k : n;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    std::fill(y, y + m * n, 0.0f);
  } else if (!s.transpose_y) {
    (void)dnnl_sgemm(s.transpose_a ? 'T' : 'N', s.transpose_b ? 'T' : 'N', m, n, k, 1.0f, a, lda,
                     b, ldb, 0.0f, y, n);
  } else {
    // Y^T [n, m] = op(B)^T op(A)^T: the operands swap and each transposition flips.
    (void)dnnl_sgemm(s.transpose_b ? 'N' : 'T', s.transpose_a ? 'N' : 'T', n, m, k, 1.0f, b, ldb,
                     a, lda, 0.0f, y, m);
  }
  const auto bias_n = static_cast<int64_t>(p.shift.size());
  if (bias_n == s.n) {
    if (!s.transpose_y) {
      for (int64_t i = 0; i < s.m; ++i) {
        float* row = y + i * s.n;
        for (int64_t j = 0; j < s.n; ++j) row[j] += p.shift[static_cast<size_t>(j)];
      }
    } else {
      for (int64_t j = 0; j < s.n; ++j) {
        float* row = y + j * s.m;
        const float v = p.shift[static_cast<size_t>(j)];
        for (int64_t i = 0; i < s.m; ++i) row[i] += v;
      }
    }
  }
  if (p.activation.kind != ir::ActivationKind::kNone) run_activation(p.activation, y, y, s.m * s.n);
}

}  // namespace

void run_matmul(const ir::MatMulShape& s, const LayerParams& params, const float* a,
                const float* b, float* y, int threads) {
  const int64_t count = s.count;
  const int64_t mn = s.m * s.n;
  if (count == 1 || threads <= 1) {
    for (int64_t p = 0; p < count; ++p) {
      one_product(s, params, a + s.a_at(p), b + s.b_at(p), y + p * mn);
    }
    return;
  }
  // Several products: one per thread at a time (oneDNN's sgemm runs single-threaded inside a
  // parallel region).
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t p = 0; p < count; ++p) {
    one_product(s, params, a + s.a_at(p), b + s.b_at(p), y + p * mn);
  }
}

}  // namespace mlprt::backend::cpu
