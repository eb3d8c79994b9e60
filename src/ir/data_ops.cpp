#include "ir/data_ops.h"

#include <algorithm>
#include <cstdint>
#include <optional>

#include "common/check.h"
#include "ir/shape_inference.h"

namespace mlprt::ir {
namespace {

std::string describe(const Node& node) { return "node '" + node.name + "' (" + node.op + ")"; }

Result<int64_t> axis_in(const Node& node, int64_t axis, size_t rank) {
  const auto r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": axis ", axis,
                      " is out of range for an input of rank ", rank);
  }
  return axis < 0 ? axis + r : axis;
}

std::vector<int64_t> row_major_strides(const Dims& d) {
  std::vector<int64_t> s(d.size(), 1);
  for (size_t i = d.size(); i-- > 1;) s[i - 1] = s[i] * d[i];
  return s;
}

Result<StridedCopy> slice_copy(const Node& node, const Dims& x) {
  const std::vector<int64_t> starts = node.get_ints("starts");
  const std::vector<int64_t> ends = node.get_ints("ends");
  std::vector<int64_t> axes = node.get_ints("axes");
  std::vector<int64_t> steps = node.get_ints("steps");
  if (axes.empty()) {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() ||
      steps.size() != starts.size()) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": starts (",
                      starts.size(), "), ends (", ends.size(), "), axes (", axes.size(),
                      ") and steps (", steps.size(), ") must have the same length");
  }
  const std::vector<int64_t> in_stride = row_major_strides(x);
  StridedCopy copy{x, in_stride, 0};
  std::vector<bool> seen(x.size(), false);
  for (size_t i = 0; i < starts.size(); ++i) {
    MLPRT_ASSIGN_OR_RETURN(const int64_t axis, axis_in(node, axes[i], x.size()));
    const auto a = static_cast<size_t>(axis);
    if (seen[a]) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": axis ", axes[i],
                        " is repeated");
    }
    seen[a] = true;
    const int64_t n = x[a];
    const int64_t s = steps[i];
    if (s == 0) return make_error(StatusCode::kInvalidArgument, describe(node), ": step is 0");
    const SliceAxis kept = slice_axis(n, starts[i], ends[i], s);
    copy.out[a] = kept.count;
    if (kept.count > 0) copy.offset += kept.begin * in_stride[a];
    copy.stride[a] = in_stride[a] * s;
  }
  return copy;
}

}  // namespace

SliceAxis slice_axis(int64_t n, int64_t start, int64_t end, int64_t step) {
  // Saturating: starts/ends are often INT64_MAX / INT64_MIN ("to the end").
  int64_t b = start < 0 ? (start < -n ? -n - 1 : start) + n : start;
  int64_t e = end < 0 ? (end < -n ? -n - 1 : end) + n : end;
  if (step > 0) {
    b = std::clamp<int64_t>(b, 0, n);
    e = std::clamp<int64_t>(e, 0, n);
    return {b, e > b ? (e - b - 1) / step + 1 : 0};
  }
  b = std::clamp<int64_t>(b, -1, n - 1);
  e = std::clamp<int64_t>(e, -1, n - 1);
  // -step overflows for INT64_MIN; such a step keeps one element at most.
  return {b, b > e ? (step == INT64_MIN ? 1 : (b - e - 1) / -step + 1) : 0};
}

Result<std::vector<int64_t>> transpose_perm(const Node& node, size_t rank) {
  std::vector<int64_t> perm = node.get_ints("perm");
  if (perm.empty()) {
    for (size_t i = rank; i-- > 0;) perm.push_back(static_cast<int64_t>(i));
  }
  std::vector<bool> seen(rank, false);
  bool ok = perm.size() == rank;
  for (int64_t p : perm) {
    ok = ok && p >= 0 && p < static_cast<int64_t>(rank) && !seen[static_cast<size_t>(p)];
    if (ok) seen[static_cast<size_t>(p)] = true;
  }
  if (!ok) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": perm ", to_string(perm),
                      " is not a permutation of the input's ", rank, " axes");
  }
  return perm;
}

Result<StridedCopy> strided_copy_of(const Node& node, const Dims& x) {
  if (node.op == "Slice") return slice_copy(node, x);
  if (node.op != "Transpose") {
    return make_error(StatusCode::kInternal, describe(node), ": not a Transpose or Slice");
  }
  MLPRT_ASSIGN_OR_RETURN(const std::vector<int64_t> perm, transpose_perm(node, x.size()));
  const std::vector<int64_t> in_stride = row_major_strides(x);
  StridedCopy copy;
  for (int64_t p : perm) {
    copy.out.push_back(x[static_cast<size_t>(p)]);
    copy.stride.push_back(in_stride[static_cast<size_t>(p)]);
  }
  return copy;
}

Result<Dims> reduce_mean_shape(const Node& node, const Dims& x) {
  const std::vector<int64_t> axes = node.get_ints("axes");
  std::vector<bool> reduce(x.size(), axes.empty() && node.get_int("noop_with_empty_axes", 0) == 0);
  for (int64_t a : axes) {
    MLPRT_ASSIGN_OR_RETURN(const int64_t axis, axis_in(node, a, x.size()));
    reduce[static_cast<size_t>(axis)] = true;
  }
  const bool keep = node.get_int("keepdims", 1) != 0;
  Dims out;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!reduce[i]) out.push_back(x[i]);
    else if (keep) out.push_back(1);
  }
  return out;
}

Result<ReduceLoops> reduce_loops(const Node& node, const Dims& x) {
  const std::vector<int64_t> axes = node.get_ints("axes");
  std::vector<bool> reduce(x.size(), axes.empty() && node.get_int("noop_with_empty_axes", 0) == 0);
  for (int64_t a : axes) {
    MLPRT_ASSIGN_OR_RETURN(const int64_t axis, axis_in(node, a, x.size()));
    reduce[static_cast<size_t>(axis)] = true;
  }
  // Axes of size 1 change nothing about the layout: treat them as reduced or not, whichever
  // keeps the reduced block contiguous.
  int first = -1, last = -1;
  for (size_t i = 0; i < x.size(); ++i) {
    if (reduce[i] && x[i] != 1) {
      if (first < 0) first = static_cast<int>(i);
      last = static_cast<int>(i);
    }
  }
  ReduceLoops loops;
  if (first < 0) {  // nothing of size > 1 reduced: a copy
    for (int64_t d : x) loops.outer *= d;
    return loops;
  }
  for (int i = first; i <= last; ++i) {
    if (!reduce[static_cast<size_t>(i)] && x[static_cast<size_t>(i)] != 1) {
      loops.general = true;
    }
  }
  if (loops.general) {
    const std::vector<int64_t> stride = row_major_strides(x);
    for (size_t i = 0; i < x.size(); ++i) {
      if (x[i] == 1) continue;
      (reduce[i] ? loops.reduced_dims : loops.kept_dims).push_back(x[i]);
      (reduce[i] ? loops.reduced_strides : loops.kept_strides).push_back(stride[i]);
    }
    loops.outer = 1;
    for (int64_t d : loops.kept_dims) loops.outer *= d;
    loops.n = 1;
    for (int64_t d : loops.reduced_dims) loops.n *= d;
    loops.inner = 1;
    return loops;
  }
  for (size_t i = 0; i < x.size(); ++i) {
    const auto at = static_cast<int>(i);
    (at < first ? loops.outer : at > last ? loops.inner : loops.n) *= x[i];
  }
  return loops;
}

Result<MatMulShape> matmul_layer_shape(const Node& node, const Dims& a_in, const Dims& b_in) {
  if (a_in.empty() || b_in.empty()) {
    return make_error(StatusCode::kInvalidArgument, describe(node),
                      ": MatMul operands must have rank >= 1, got ", to_string(a_in), " and ",
                      to_string(b_in));
  }
  MatMulShape s;
  s.transpose_a = node.get_int("transpose_a", 0) != 0;
  s.transpose_b = node.get_int("transpose_b", 0) != 0;
  s.transpose_y = node.get_int("transpose_y", 0) != 0;
  if ((s.transpose_a && a_in.size() < 2) || (s.transpose_b && b_in.size() < 2)) {
    return make_error(StatusCode::kInvalidArgument, describe(node),
                      ": a transposed operand must have rank >= 2");
  }
  // 1-D operands: A [k] -> [1, k], B [k] -> [k, 1] (the added axis is dropped from Y).
  const Dims a = a_in.size() == 1 ? Dims{1, a_in[0]} : a_in;
  const Dims b = b_in.size() == 1 ? Dims{b_in[0], 1} : b_in;
  const size_t ra = a.size(), rb = b.size();
  s.m = s.transpose_a ? a[ra - 1] : a[ra - 2];
  s.k = s.transpose_a ? a[ra - 2] : a[ra - 1];
  const int64_t kb = s.transpose_b ? b[rb - 1] : b[rb - 2];
  s.n = s.transpose_b ? b[rb - 2] : b[rb - 1];
  if (s.k != kb) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": operands of shapes ",
                      to_string(a_in), " and ", to_string(b_in), " have inner sizes ", s.k,
                      " and ", kb, "; they must be equal");
  }
  const Dims batch_a(a.begin(), a.end() - 2);
  const Dims batch_b(b.begin(), b.end() - 2);
  MLPRT_ASSIGN_OR_RETURN(const Dims batch, broadcast_dims(node, batch_a, batch_b));
  int64_t count = 1;
  for (int64_t d : batch) count *= d;
  s.count = count;
  const int64_t mat_a = s.m * s.k, mat_b = s.k * s.n;
  // An operand steps uniformly when its batch axes are all 1 (stride 0: broadcast) or are the
  // whole broadcast batch (stride: one matrix).
  const auto stride_if_uniform = [&](const Dims& own, int64_t mat) -> std::optional<int64_t> {
    if (std::all_of(own.begin(), own.end(), [](int64_t d) { return d == 1; })) return 0;
    if (own.size() == batch.size() && std::equal(own.begin(), own.end(), batch.begin())) return mat;
    return std::nullopt;
  };
  const std::optional<int64_t> ua = stride_if_uniform(batch_a, mat_a);
  const std::optional<int64_t> ub = stride_if_uniform(batch_b, mat_b);
  s.uniform = ua.has_value() && ub.has_value();
  if (s.uniform) {
    s.a_stride = *ua;
    s.b_stride = *ub;
  } else if (s.m > 0 && s.n > 0) {
    // Element offsets of each product's matrices, odometer over the broadcast batch. Only
    // here, where the output has at least `count` elements, so the tables stay proportional.
    auto strides_of = [&](const Dims& own) {
      std::vector<int64_t> st(batch.size(), 0);
      int64_t step = 1;
      for (size_t i = own.size(); i-- > 0;) {
        const size_t at = i + (batch.size() - own.size());
        st[at] = own[i] == 1 ? 0 : step;
        step *= own[i];
      }
      return st;
    };
    const std::vector<int64_t> sa = strides_of(batch_a), sb = strides_of(batch_b);
    s.a_offset.reserve(static_cast<size_t>(count));
    s.b_offset.reserve(static_cast<size_t>(count));
    std::vector<int64_t> index(batch.size(), 0);
    for (int64_t p = 0; p < count; ++p) {
      int64_t oa = 0, ob = 0;
      for (size_t i = 0; i < batch.size(); ++i) {
        oa += index[i] * sa[i];
        ob += index[i] * sb[i];
      }
      s.a_offset.push_back(oa * mat_a);
      s.b_offset.push_back(ob * mat_b);
      for (size_t i = batch.size(); i-- > 0;) {
        if (++index[i] < batch[i]) break;
        index[i] = 0;
      }
    }
  }
  s.out = batch;
  if (a_in.size() > 1) s.out.push_back(s.transpose_y ? s.n : s.m);
  if (b_in.size() > 1) s.out.push_back(s.transpose_y ? s.m : s.n);
  if (s.transpose_y && (a_in.size() == 1 || b_in.size() == 1)) {
    return make_error(StatusCode::kInvalidArgument, describe(node),
                      ": transpose_y needs 2-D or higher operands");
  }
  if (node.inputs.size() > 2 && !node.inputs[2].empty() && b_in.size() == 1) {
    return make_error(StatusCode::kInvalidArgument, describe(node),
                      ": a bias needs a 2-D or higher B");
  }
  return s;
}

}  // namespace mlprt::ir
