#include "backends/cpu/cpu_data_layers.h"

#include <algorithm>
#include <limits>

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include "backends/cpu/cpu_simd.h"

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
  const float nan = std::numeric_limits<float>::quiet_NaN();
  if (loops.inner == 1) {
    const auto threads =
        static_cast<int>(std::min<int64_t>(loop_threads(loops.outer * loops.n), loops.outer));
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t o = 0; o < loops.outer; ++o) {
      const float* px = x + o * loops.n;
      double sum = 0.0;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < loops.n; ++j) sum += px[j];
      y[o] = loops.n > 0 ? static_cast<float>(sum * inv) : nan;
    }
    return;
  }
  // Reduced axis in the middle: accumulate whole inner rows (contiguous, vectorizable), in
  // column blocks (whole cache lines, at most 256 floats) so that every thread of the team has a
  // share even of one outer row (batch 1): a team smaller than the next layer's leaves threads
  // asleep, and waking them cost the following GEMM more than this loop takes.
  const int pool = loop_threads(loops.outer * loops.n * loops.inner);
  const int64_t per_thread = (loops.outer * loops.inner + pool - 1) / pool;
  const int64_t kBlock = std::clamp<int64_t>((per_thread + 15) / 16 * 16, 16, 256);
  const int64_t blocks = (loops.inner + kBlock - 1) / kBlock;
  const auto threads = static_cast<int>(std::min<int64_t>(pool, loops.outer * blocks));
  const auto f = static_cast<float>(inv);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t ob = 0; ob < loops.outer * blocks; ++ob) {
    const int64_t o = ob / blocks;
    const int64_t i0 = ob % blocks * kBlock;
    const int64_t width = std::min(kBlock, loops.inner - i0);
    float* py = y + o * loops.inner + i0;
#pragma omp simd
    for (int64_t i = 0; i < width; ++i) py[i] = 0.0f;
    for (int64_t j = 0; j < loops.n; ++j) {
      const float* px = x + (o * loops.n + j) * loops.inner + i0;
#pragma omp simd
      for (int64_t i = 0; i < width; ++i) py[i] += px[i];
    }
    for (int64_t i = 0; i < width; ++i) py[i] = loops.n > 0 ? py[i] * f : nan;
  }
}

namespace {

// Rows [r0, r1) of one product: Y (stored [m, n], or [n, m] when transposed) = op(A) op(B)
// with a row-major single-threaded sgemm, then bias, residual and activation on those rows
// while they are in cache. `residual` (or null) is laid out as the stored Y.
void product_rows(const ir::MatMulShape& s, const LayerParams& p, const float* a, const float* b,
                  const float* residual, float* y, int64_t r0, int64_t r1) {
  const auto m = static_cast<dnnl_dim_t>(s.m), n = static_cast<dnnl_dim_t>(s.n),
             k = static_cast<dnnl_dim_t>(s.k);
  const dnnl_dim_t lda = s.transpose_a ? m : k;
  const dnnl_dim_t ldb = s.transpose_b ? k : n;
  const dnnl_dim_t rows = r1 - r0;
  if (rows <= 0 || n == 0) return;
  // Row r of op(A): A row r (lda apart), or A column r when A is stored [k, m].
  const float* a_rows = a + (s.transpose_a ? r0 : r0 * lda);
  if (k == 0) {
    if (!s.transpose_y) {
      std::fill(y + r0 * n, y + r1 * n, 0.0f);
    } else {
      for (int64_t j = 0; j < s.n; ++j) std::fill(y + j * m + r0, y + j * m + r1, 0.0f);
    }
  } else if (!s.transpose_y) {
    (void)dnnl_sgemm(s.transpose_a ? 'T' : 'N', s.transpose_b ? 'T' : 'N', rows, n, k, 1.0f,
                     a_rows, lda, b, ldb, 0.0f, y + r0 * n, n);
  } else {
    // Y^T [n, m] = op(B)^T op(A)^T: the operands swap and each transposition flips; the rows
    // r0..r1 of Y are columns r0..r1 of every stored row.
    (void)dnnl_sgemm(s.transpose_b ? 'N' : 'T', s.transpose_a ? 'N' : 'T', n, rows, k, 1.0f, b,
                     ldb, a_rows, lda, 0.0f, y + r0, m);
  }
  const bool bias = static_cast<int64_t>(p.shift.size()) == s.n;
  const bool act = p.activation.kind != ir::ActivationKind::kNone;
  const float* shift = p.shift.data();
  if (!s.transpose_y) {
    float* block = y + r0 * n;
    for (int64_t i = 0; i < rows; ++i) {
      float* row = block + i * n;
      if (bias) {
#pragma omp simd
        for (int64_t j = 0; j < s.n; ++j) row[j] += shift[j];
      }
      if (residual != nullptr) {
        const float* res = residual + (r0 + i) * n;
#pragma omp simd
        for (int64_t j = 0; j < s.n; ++j) row[j] += res[j];
      }
    }
    if (act) run_activation_span(p.activation, block, block, rows * n);
  } else {
    for (int64_t j = 0; j < s.n; ++j) {
      float* row = y + j * m + r0;
      const float v = bias ? shift[j] : 0.0f;
      if (bias) {
#pragma omp simd
        for (int64_t i = 0; i < rows; ++i) row[i] += v;
      }
      if (residual != nullptr) {
        const float* res = residual + j * m + r0;
#pragma omp simd
        for (int64_t i = 0; i < rows; ++i) row[i] += res[i];
      }
      if (act) run_activation_span(p.activation, row, row, rows);
    }
  }
}

}  // namespace

void run_matmul(const ir::MatMulShape& s, const LayerParams& params, const float* a,
                const float* b, const float* residual, float* y, int threads) {
  const int64_t count = s.count;
  const int64_t mn = s.m * s.n;
  if (count == 0 || mn == 0) return;
  // Work items: every product cut into `blocks` row blocks, enough for every thread to have
  // one; each item is a single-threaded sgemm followed by its epilogue on its rows.
  const int64_t work = count * s.m * std::max<int64_t>(s.n, 1) * std::max<int64_t>(s.k, 1);
  const int team = omp_in_parallel() || work < kParallelMinElements * 16 ? 1 : std::max(threads, 1);
  const int64_t blocks = std::clamp<int64_t>((team + count - 1) / count, 1, s.m);
  const int64_t items = count * blocks;
#pragma omp parallel for num_threads(team) schedule(static) if (team > 1 && items > 1)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t p = item / blocks, blk = item % blocks;
    product_rows(s, params, a + s.a_at(p), b + s.b_at(p),
                 residual != nullptr ? residual + p * mn : nullptr, y + p * mn,
                 s.m * blk / blocks, s.m * (blk + 1) / blocks);
  }
}

}  // namespace mlprt::backend::cpu
