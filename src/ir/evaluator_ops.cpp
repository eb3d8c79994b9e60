#include "ir/evaluator_ops.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>

#include "common/check.h"
#include "ir/activation.h"
#include "ir/data_ops.h"
#include "ir/split.h"

namespace mlprt::ir {
namespace {

using namespace evaluator_detail;

Result<int64_t> normalize_axis(const Node& node, int64_t axis, size_t rank) {
  const auto r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": axis ", axis,
                      " is out of range for rank ", r, "; allowed: ", -r, "..", r - 1);
  }
  return axis < 0 ? axis + r : axis;
}

// Axes from the attribute (older opsets) or from input `index` (newer opsets); empty if neither.
std::vector<int64_t> axes_of(const Node& node, const std::vector<RefTensor>& in, size_t index) {
  if (node.has_attribute("axes")) return node.get_ints("axes");
  std::vector<int64_t> axes;
  if (present(in, index)) {
    for (double v : in[index].values) axes.push_back(static_cast<int64_t>(v));
  }
  return axes;
}

int64_t product(const Dims& dims, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= dims[i];
  return p;
}

Result<RefTensor> unary(const Node& node, const std::vector<RefTensor>& in,
                        const std::function<double(double)>& f) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 1));
  RefTensor y = in[0];
  for (double& v : y.values) v = f(v);
  return y;
}

Result<RefTensor> binary(const Node& node, const std::vector<RefTensor>& in,
                         const std::function<double(double, double)>& f) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 2));
  MLPRT_ASSIGN_OR_RETURN(Dims dims, broadcast_dims(node, in[0].dims, in[1].dims));
  const std::vector<size_t> off_a = broadcast_offsets(in[0].dims, dims);
  const std::vector<size_t> off_b = broadcast_offsets(in[1].dims, dims);
  RefTensor y{dims, std::vector<double>(off_a.size())};
  for (size_t i = 0; i < y.values.size(); ++i) {
    y.values[i] = f(in[0].values[off_a[i]], in[1].values[off_b[i]]);
  }
  return y;
}

Result<std::function<double(double, double)>> binary_kind(const Node& node,
                                                          const std::string& kind) {
  if (kind == "add") return std::function<double(double, double)>(std::plus<double>());
  if (kind == "sub") return std::function<double(double, double)>(std::minus<double>());
  if (kind == "mul") return std::function<double(double, double)>(std::multiplies<double>());
  if (kind == "div") return std::function<double(double, double)>(std::divides<double>());
  if (kind == "pow") {
    return std::function<double(double, double)>([](double a, double b) { return std::pow(a, b); });
  }
  return make_error(StatusCode::kUnsupported, describe(node), ": binary kind '", kind,
                    "'; allowed: add, sub, mul, div, pow");
}

// Softmax over `axis` (or, with coerce_2d, over all dims from `axis` on, as before opset 13).
Result<RefTensor> softmax(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 1));
  const RefTensor& x = in[0];
  const size_t rank = x.dims.size();
  if (rank == 0) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": input is a scalar");
  }
  MLPRT_ASSIGN_OR_RETURN(const int64_t axis, normalize_axis(node, node.get_int("axis", -1), rank));
  const auto a = static_cast<size_t>(axis);
  const bool coerce = node.get_int("coerce_2d", 0) != 0;
  const int64_t outer = product(x.dims, 0, a);
  const int64_t n = coerce ? product(x.dims, a, rank) : x.dims[a];
  const int64_t inner = coerce ? 1 : product(x.dims, a + 1, rank);
  const bool log = node.get_int("log", 0) != 0;
  RefTensor y = x;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t j) { return static_cast<size_t>((o * n + j) * inner + i); };
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < n; ++j) mx = std::max(mx, x.values[at(j)]);
      double sum = 0.0;
      for (int64_t j = 0; j < n; ++j) sum += std::exp(x.values[at(j)] - mx);
      for (int64_t j = 0; j < n; ++j) {
        const double d = x.values[at(j)] - mx;
        y.values[at(j)] = log ? d - std::log(sum) : std::exp(d) / sum;
      }
    }
  }
  return y;
}

// ONNX LayerNormalization / our LayerNorm: normalize over dims axis..end, then scale and bias
// (broadcast against the normalized dims).
Result<RefTensor> layer_norm(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 2));
  const RefTensor& x = in[0];
  MLPRT_ASSIGN_OR_RETURN(const int64_t axis,
                         normalize_axis(node, node.get_int("axis", -1), x.dims.size()));
  const double eps = node.get_float("epsilon", 1e-5);
  const Dims norm_dims(x.dims.begin() + axis, x.dims.end());
  const std::vector<size_t> off_s = broadcast_offsets(in[1].dims, norm_dims);
  std::vector<size_t> off_b;
  if (present(in, 2)) off_b = broadcast_offsets(in[2].dims, norm_dims);
  const int64_t n = product(x.dims, static_cast<size_t>(axis), x.dims.size());
  const int64_t outer = n == 0 ? 0 : static_cast<int64_t>(x.values.size()) / n;
  RefTensor y = x;
  for (int64_t o = 0; o < outer; ++o) {
    const double* px = x.values.data() + o * n;
    double mean = 0.0;
    for (int64_t j = 0; j < n; ++j) mean += px[j];
    mean /= static_cast<double>(n);
    double var = 0.0;
    for (int64_t j = 0; j < n; ++j) var += (px[j] - mean) * (px[j] - mean);
    var /= static_cast<double>(n);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t j = 0; j < n; ++j) {
      const auto s = static_cast<size_t>(j);
      double v = (px[j] - mean) * inv * in[1].values[off_s[s]];
      if (!off_b.empty()) v += in[2].values[off_b[s]];
      y.values[static_cast<size_t>(o * n + j)] = v;
    }
  }
  return y;
}

// y = x * scale[c] + shift[c] along `axis` (BatchNormalization in inference, ScaleShift).
RefTensor channel_affine(const RefTensor& x, size_t axis, const std::vector<double>& scale,
                         const std::vector<double>& shift) {
  const int64_t c = x.dims[axis];
  const int64_t inner = product(x.dims, axis + 1, x.dims.size());
  RefTensor y = x;
  for (size_t i = 0; i < y.values.size(); ++i) {
    const auto ch = static_cast<size_t>((static_cast<int64_t>(i) / inner) % c);
    y.values[i] = x.values[i] * scale[ch] + shift[ch];
  }
  return y;
}

Result<RefTensor> batch_norm(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 5));
  const RefTensor& x = in[0];
  if (x.dims.size() < 2) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": input of shape ",
                      to_string(x.dims), " has no channel dimension (rank >= 2 needed)");
  }
  const auto c = static_cast<size_t>(x.dims[1]);
  for (size_t i = 1; i < 5; ++i) {
    if (in[i].values.size() != c) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": input ", i, " has shape ",
                        to_string(in[i].dims), "; expected ", c, " values");
    }
  }
  const double eps = node.get_float("epsilon", 1e-5);
  std::vector<double> scale(c), shift(c);
  for (size_t j = 0; j < c; ++j) {
    scale[j] = in[1].values[j] / std::sqrt(in[4].values[j] + eps);
    shift[j] = in[2].values[j] - in[3].values[j] * scale[j];
  }
  return channel_affine(x, 1, scale, shift);
}

Result<RefTensor> scale_shift(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 3));
  MLPRT_ASSIGN_OR_RETURN(const int64_t axis,
                         normalize_axis(node, node.get_int("axis", 1), in[0].dims.size()));
  const auto c = static_cast<size_t>(in[0].dims[static_cast<size_t>(axis)]);
  if (in[1].values.size() != c || in[2].values.size() != c) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": scale ",
                      to_string(in[1].dims), " and shift ", to_string(in[2].dims), " need ", c,
                      " values");
  }
  return channel_affine(in[0], static_cast<size_t>(axis), in[1].values, in[2].values);
}

Result<RefTensor> clip(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 1));
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  if (node.has_attribute("min") || node.has_attribute("max")) {  // before opset 11
    lo = node.get_float("min", lo);
    hi = node.get_float("max", hi);
  } else {
    if (present(in, 1) && !in[1].values.empty()) lo = in[1].values[0];
    if (present(in, 2) && !in[2].values.empty()) hi = in[2].values[0];
  }
  RefTensor y = in[0];
  for (double& v : y.values) v = std::min(std::max(v, lo), hi);
  return y;
}

Result<RefTensor> squeeze(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 1));
  const Dims& d = in[0].dims;
  std::vector<bool> drop(d.size(), false);
  const std::vector<int64_t> axes = axes_of(node, in, 1);
  if (axes.empty()) {
    for (size_t i = 0; i < d.size(); ++i) drop[i] = d[i] == 1;
  }
  for (int64_t a : axes) {
    MLPRT_ASSIGN_OR_RETURN(const int64_t axis, normalize_axis(node, a, d.size()));
    if (d[static_cast<size_t>(axis)] != 1) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": cannot squeeze axis ", a,
                        " of shape ", to_string(d), " (size is not 1)");
    }
    drop[static_cast<size_t>(axis)] = true;
  }
  RefTensor y{{}, in[0].values};
  for (size_t i = 0; i < d.size(); ++i) {
    if (!drop[i]) y.dims.push_back(d[i]);
  }
  return y;
}

Result<RefTensor> unsqueeze(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 1));
  const std::vector<int64_t> axes = axes_of(node, in, 1);
  const size_t rank = in[0].dims.size() + axes.size();
  std::vector<bool> added(rank, false);
  for (int64_t a : axes) {
    MLPRT_ASSIGN_OR_RETURN(const int64_t axis, normalize_axis(node, a, rank));
    if (added[static_cast<size_t>(axis)]) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": axis ", a,
                        " is given twice");
    }
    added[static_cast<size_t>(axis)] = true;
  }
  RefTensor y{{}, in[0].values};
  size_t next = 0;
  for (size_t i = 0; i < rank; ++i) y.dims.push_back(added[i] ? 1 : in[0].dims[next++]);
  return y;
}

Result<RefTensor> transpose(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 1));
  const Dims& d = in[0].dims;
  const size_t rank = d.size();
  std::vector<int64_t> perm = node.get_ints("perm");
  if (perm.empty()) {
    for (size_t i = rank; i-- > 0;) perm.push_back(static_cast<int64_t>(i));
  }
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (sorted.size() != rank || sorted[i] != static_cast<int64_t>(i)) {
      return make_error(StatusCode::kInvalidArgument, describe(node),
                        ": perm is not a "
                        "permutation of 0..",
                        rank, " - 1 for shape ", to_string(d));
    }
  }
  Dims out(rank);
  std::vector<size_t> in_stride(rank);
  size_t stride = 1;
  for (size_t i = rank; i-- > 0;) {
    in_stride[i] = stride;
    stride *= static_cast<size_t>(d[i]);
  }
  for (size_t i = 0; i < rank; ++i) out[i] = d[static_cast<size_t>(perm[i])];
  RefTensor y{out, std::vector<double>(in[0].values.size())};
  std::vector<int64_t> index(rank, 0);
  for (size_t flat = 0; flat < y.values.size(); ++flat) {
    size_t src = 0;
    for (size_t i = 0; i < rank; ++i) {
      src += static_cast<size_t>(index[i]) * in_stride[static_cast<size_t>(perm[i])];
    }
    y.values[flat] = in[0].values[src];
    for (size_t i = rank; i-- > 0;) {
      if (++index[i] < out[i]) break;
      index[i] = 0;
    }
  }
  return y;
}

Result<RefTensor> gather(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 2));
  const RefTensor& data = in[0];
  if (data.dims.empty()) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": data is a scalar");
  }
  MLPRT_ASSIGN_OR_RETURN(const int64_t axis,
                         normalize_axis(node, node.get_int("axis", 0), data.dims.size()));
  const auto a = static_cast<size_t>(axis);
  const int64_t outer = product(data.dims, 0, a);
  const int64_t n = data.dims[a];
  const int64_t inner = product(data.dims, a + 1, data.dims.size());
  RefTensor y;
  y.dims.assign(data.dims.begin(), data.dims.begin() + axis);
  y.dims.insert(y.dims.end(), in[1].dims.begin(), in[1].dims.end());
  y.dims.insert(y.dims.end(), data.dims.begin() + axis + 1, data.dims.end());
  for (int64_t o = 0; o < outer; ++o) {
    for (double iv : in[1].values) {
      auto idx = static_cast<int64_t>(iv);
      if (idx < 0) idx += n;
      if (idx < 0 || idx >= n) {
        return make_error(StatusCode::kInvalidArgument, describe(node), ": index ",
                          static_cast<int64_t>(iv), " is out of range for axis ", axis, " of size ",
                          n);
      }
      const double* src = data.values.data() + (o * n + idx) * inner;
      y.values.insert(y.values.end(), src, src + inner);
    }
  }
  return y;
}

Result<RefTensor> concat(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 1));
  const Dims& first = in[0].dims;
  MLPRT_ASSIGN_OR_RETURN(const int64_t axis,
                         normalize_axis(node, node.get_int("axis", 0), first.size()));
  const auto a = static_cast<size_t>(axis);
  Dims out = first;
  out[a] = 0;
  for (const RefTensor& t : in) {
    bool fits = t.dims.size() == first.size();
    for (size_t i = 0; fits && i < first.size(); ++i) fits = i == a || t.dims[i] == first[i];
    if (!fits) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": shapes ", to_string(first),
                        " and ", to_string(t.dims), " differ outside axis ", axis);
    }
    out[a] += t.dims[a];
  }
  const int64_t outer = product(first, 0, a);
  RefTensor y{out, {}};
  for (int64_t o = 0; o < outer; ++o) {
    for (const RefTensor& t : in) {
      const int64_t chunk = product(t.dims, a, t.dims.size());
      const double* src = t.values.data() + o * chunk;
      y.values.insert(y.values.end(), src, src + chunk);
    }
  }
  return y;
}

// Slice (opset 10+: starts/ends/axes/steps inputs; before: attributes), ONNX clamping rules.
Result<RefTensor> slice(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 1));
  const Dims& d = in[0].dims;
  auto ints = [&](const char* attr, size_t index) {
    if (node.has_attribute(attr)) return node.get_ints(attr);
    std::vector<int64_t> v;
    if (present(in, index)) {
      for (double x : in[index].values) v.push_back(static_cast<int64_t>(x));
    }
    return v;
  };
  const std::vector<int64_t> starts = ints("starts", 1), ends = ints("ends", 2);
  std::vector<int64_t> axes = ints("axes", 3), steps = ints("steps", 4);
  if (axes.empty()) {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() ||
      steps.size() != starts.size()) {
    return make_error(StatusCode::kInvalidArgument, describe(node),
                      ": starts, ends, axes and steps have different lengths");
  }
  std::vector<int64_t> begin(d.size(), 0), step(d.size(), 1);
  Dims out = d;
  for (size_t i = 0; i < starts.size(); ++i) {
    MLPRT_ASSIGN_OR_RETURN(const int64_t axis, normalize_axis(node, axes[i], d.size()));
    const int64_t n = d[static_cast<size_t>(axis)];
    const int64_t s = steps[i];
    if (s == 0) return make_error(StatusCode::kInvalidArgument, describe(node), ": step is 0");
    const SliceAxis kept = slice_axis(n, starts[i], ends[i], s);
    begin[static_cast<size_t>(axis)] = kept.begin;
    step[static_cast<size_t>(axis)] = s;
    out[static_cast<size_t>(axis)] = kept.count;
  }
  const size_t rank = d.size();
  std::vector<int64_t> stride(rank, 1);
  for (size_t i = rank; i-- > 1;) stride[i - 1] = stride[i] * d[i];
  RefTensor y{out, std::vector<double>(count_of(out))};
  std::vector<int64_t> index(rank, 0);
  for (size_t flat = 0; flat < y.values.size(); ++flat) {
    int64_t src = 0;
    for (size_t i = 0; i < rank; ++i) src += (begin[i] + index[i] * step[i]) * stride[i];
    y.values[flat] = in[0].values[static_cast<size_t>(src)];
    for (size_t i = rank; i-- > 0;) {
      if (++index[i] < out[i]) break;
      index[i] = 0;
    }
  }
  return y;
}

Result<RefTensor> reduce_mean(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 1));
  const Dims& d = in[0].dims;
  std::vector<int64_t> axes = axes_of(node, in, 1);
  std::vector<bool> reduce(d.size(), axes.empty() && node.get_int("noop_with_empty_axes", 0) == 0);
  for (int64_t a : axes) {
    MLPRT_ASSIGN_OR_RETURN(const int64_t axis, normalize_axis(node, a, d.size()));
    reduce[static_cast<size_t>(axis)] = true;
  }
  const bool keep = node.get_int("keepdims", 1) != 0;
  Dims kept_dims = d;  // with 1 on reduced axes
  Dims out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (reduce[i]) kept_dims[i] = 1;
    if (!reduce[i] || keep) out.push_back(kept_dims[i]);
  }
  const size_t total = count_of(kept_dims);
  std::vector<double> sum(total, 0.0);
  const std::vector<size_t> off = broadcast_offsets(kept_dims, d);
  for (size_t i = 0; i < in[0].values.size(); ++i) sum[off[i]] += in[0].values[i];
  const double n =
      total == 0 ? 1.0 : static_cast<double>(in[0].values.size()) / static_cast<double>(total);
  for (double& v : sum) v /= n;
  return RefTensor{out, sum};
}

// Ops that make large tensors from small inputs (Expand, ConstantOfShape) stop at this many
// elements: they run at build time on constants, where a bigger result is a malformed model.
constexpr double kMaxGeneratedElements = double(1 << 26);

Status check_generated_size(const Node& node, const Dims& dims) {
  double n = 1.0;
  for (int64_t d : dims) n *= static_cast<double>(d);
  if (n > kMaxGeneratedElements) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": result of shape ",
                      to_string(dims), " has more than 2^26 elements");
  }
  return Status::ok();
}

Result<RefTensor> range(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 3));
  const double start = in[0].values.at(0), limit = in[1].values.at(0), delta = in[2].values.at(0);
  if (delta == 0.0) return make_error(StatusCode::kInvalidArgument, describe(node), ": delta is 0");
  const double count = std::max(0.0, std::ceil((limit - start) / delta));
  if (!(count <= kMaxGeneratedElements)) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": ", count,
                      " elements; at most 2^26 are allowed");
  }
  const auto n = static_cast<int64_t>(count);
  RefTensor y{{n}, {}};
  for (int64_t i = 0; i < n; ++i) y.values.push_back(start + static_cast<double>(i) * delta);
  return y;
}

Result<RefTensor> constant_of_shape(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 1));
  double value = 0.0;
  if (node.has_attribute("value")) {
    const auto& c = std::get<Constant>(node.attributes.at("value"));
    const std::vector<double> v = c.to_doubles();
    if (!v.empty()) value = v[0];
  }
  Dims dims;
  for (double v : in[0].values) {
    if (v < 0 || v > 1e15) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": dim ", v,
                        " is negative or too large");
    }
    dims.push_back(static_cast<int64_t>(v));
  }
  MLPRT_RETURN_IF_ERROR(check_generated_size(node, dims));
  return RefTensor{dims, std::vector<double>(count_of(dims), value)};
}

Result<RefTensor> shape_of(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 1));
  const auto rank = static_cast<int64_t>(in[0].dims.size());
  int64_t start = node.get_int("start", 0);
  int64_t end = node.get_int("end", rank);
  start = std::clamp<int64_t>(start < 0 ? start + rank : start, 0, rank);
  end = std::clamp<int64_t>(end < 0 ? end + rank : end, 0, rank);
  RefTensor y{{std::max<int64_t>(0, end - start)}, {}};
  for (int64_t i = start; i < end; ++i) {
    y.values.push_back(static_cast<double>(in[0].dims[static_cast<size_t>(i)]));
  }
  return y;
}

// Cast: the value as the target type holds it (float32 rounding, integer truncation).
Result<RefTensor> cast(const Node& node, const std::vector<RefTensor>& in) {
  const int64_t to = node.get_int("to", 1);
  return unary(node, in, [to](double v) {
    switch (to) {
      case 1:
        return static_cast<double>(static_cast<float>(v));
      case 9:
        return v != 0.0 ? 1.0 : 0.0;
      case 2:
      case 3:
      case 5:
      case 6:
      case 7:
        return std::trunc(v);
      default:
        return v;
    }
  });
}

// Comparisons give booleans as 0 / 1 (ONNX BOOL outputs).
std::function<double(double, double)> compare_kind(const std::string& op) {
  if (op == "Greater") return [](double a, double b) { return a > b ? 1.0 : 0.0; };
  if (op == "Less") return [](double a, double b) { return a < b ? 1.0 : 0.0; };
  if (op == "GreaterOrEqual") return [](double a, double b) { return a >= b ? 1.0 : 0.0; };
  if (op == "LessOrEqual") return [](double a, double b) { return a <= b ? 1.0 : 0.0; };
  return [](double a, double b) { return a == b ? 1.0 : 0.0; };
}

Result<RefTensor> where(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 3));
  MLPRT_ASSIGN_OR_RETURN(Dims dims, broadcast_dims(node, in[0].dims, in[1].dims));
  MLPRT_ASSIGN_OR_RETURN(dims, broadcast_dims(node, dims, in[2].dims));
  const std::vector<size_t> off_c = broadcast_offsets(in[0].dims, dims);
  const std::vector<size_t> off_x = broadcast_offsets(in[1].dims, dims);
  const std::vector<size_t> off_y = broadcast_offsets(in[2].dims, dims);
  RefTensor y{dims, std::vector<double>(off_c.size())};
  for (size_t i = 0; i < y.values.size(); ++i) {
    y.values[i] = in[0].values[off_c[i]] != 0.0 ? in[1].values[off_x[i]] : in[2].values[off_y[i]];
  }
  return y;
}

// Expand: numpy broadcasting of the input with the target shape (either may be larger).
Result<RefTensor> expand(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 2));
  Dims target;
  for (double v : in[1].values) {
    if (v < 0 || v > 1e15) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": target dim ", v,
                        " is negative or too large");
    }
    target.push_back(static_cast<int64_t>(v));
  }
  MLPRT_ASSIGN_OR_RETURN(Dims dims, broadcast_dims(node, in[0].dims, target));
  MLPRT_RETURN_IF_ERROR(check_generated_size(node, dims));
  const std::vector<size_t> off = broadcast_offsets(in[0].dims, dims);
  RefTensor y{dims, std::vector<double>(off.size())};
  for (size_t i = 0; i < off.size(); ++i) y.values[i] = in[0].values[off[i]];
  return y;
}

}  // namespace

Result<std::vector<RefTensor>> evaluate_more_ops(const Node& node,
                                                 const std::vector<RefTensor>& inputs) {
  const std::string& op = node.op;
  std::vector<RefTensor> out(1);
  if (const std::optional<ActivationSpec> act = activation_of(node)) {
    MLPRT_ASSIGN_OR_RETURN(out[0], unary(node, inputs, [&](double v) {
                             return apply_activation(act->kind, v, act->alpha, act->beta);
                           }));
  } else if (op == "Activation" || op == "Gelu") {
    return make_error(StatusCode::kUnsupported, describe(node), ": activation '",
                      node.get_string(op == "Gelu" ? "approximate" : "kind", ""),
                      "' is not supported; supported: ",
                      op == "Gelu" ? std::string("none, tanh") : std::string(kActivationKinds));
  } else if (op == "Sub" || op == "Mul" || op == "Div" || op == "Pow" || op == "Binary") {
    std::string kind = op == "Binary" ? node.get_string("kind", "") : op;
    std::transform(kind.begin(), kind.end(), kind.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    MLPRT_ASSIGN_OR_RETURN(auto f, binary_kind(node, kind));
    MLPRT_ASSIGN_OR_RETURN(out[0], binary(node, inputs, f));
  } else if (op == "Greater" || op == "Less" || op == "Equal" || op == "GreaterOrEqual" ||
             op == "LessOrEqual") {
    MLPRT_ASSIGN_OR_RETURN(out[0], binary(node, inputs, compare_kind(op)));
  } else if (op == "Where") {
    MLPRT_ASSIGN_OR_RETURN(out[0], where(node, inputs));
  } else if (op == "Expand") {
    MLPRT_ASSIGN_OR_RETURN(out[0], expand(node, inputs));
  } else if (op == "Softmax") {
    MLPRT_ASSIGN_OR_RETURN(out[0], softmax(node, inputs));
  } else if (op == "LayerNormalization" || op == "LayerNorm") {
    MLPRT_ASSIGN_OR_RETURN(out[0], layer_norm(node, inputs));
  } else if (op == "BatchNormalization") {
    MLPRT_ASSIGN_OR_RETURN(out[0], batch_norm(node, inputs));
  } else if (op == "ScaleShift") {
    MLPRT_ASSIGN_OR_RETURN(out[0], scale_shift(node, inputs));
  } else if (op == "Clip") {
    MLPRT_ASSIGN_OR_RETURN(out[0], clip(node, inputs));
  } else if (op == "Squeeze") {
    MLPRT_ASSIGN_OR_RETURN(out[0], squeeze(node, inputs));
  } else if (op == "Unsqueeze") {
    MLPRT_ASSIGN_OR_RETURN(out[0], unsqueeze(node, inputs));
  } else if (op == "Transpose") {
    MLPRT_ASSIGN_OR_RETURN(out[0], transpose(node, inputs));
  } else if (op == "Cast") {
    MLPRT_ASSIGN_OR_RETURN(out[0], cast(node, inputs));
  } else if (op == "Shape") {
    MLPRT_ASSIGN_OR_RETURN(out[0], shape_of(node, inputs));
  } else if (op == "Gather") {
    MLPRT_ASSIGN_OR_RETURN(out[0], gather(node, inputs));
  } else if (op == "Concat") {
    MLPRT_ASSIGN_OR_RETURN(out[0], concat(node, inputs));
  } else if (op == "Slice") {
    MLPRT_ASSIGN_OR_RETURN(out[0], slice(node, inputs));
  } else if (op == "Split") {
    MLPRT_RETURN_IF_ERROR(need_inputs(node, inputs, 1));
    MLPRT_ASSIGN_OR_RETURN(const int64_t axis,
                           normalize_axis(node, node.get_int("axis", 0), inputs[0].dims.size()));
    std::optional<std::vector<int64_t>> given;
    if (present(inputs, 1)) {
      given.emplace();
      for (double v : inputs[1].values) given->push_back(static_cast<int64_t>(v));
    }
    MLPRT_ASSIGN_OR_RETURN(
        const std::vector<int64_t> sizes,
        split_sizes(node, inputs[0].dims[static_cast<size_t>(axis)], given));
    out.assign(node.outputs.size(), RefTensor{});
    for (const Node& part : split_to_slices(node, sizes)) {
      const auto i = static_cast<size_t>(
          std::find(node.outputs.begin(), node.outputs.end(), part.outputs[0]) -
          node.outputs.begin());
      MLPRT_ASSIGN_OR_RETURN(out[i], slice(part, {inputs[0]}));
    }
  } else if (op == "ReduceMean") {
    MLPRT_ASSIGN_OR_RETURN(out[0], reduce_mean(node, inputs));
  } else if (op == "Range") {
    MLPRT_ASSIGN_OR_RETURN(out[0], range(node, inputs));
  } else if (op == "ConstantOfShape") {
    MLPRT_ASSIGN_OR_RETURN(out[0], constant_of_shape(node, inputs));
  } else {
    return make_error(StatusCode::kUnsupported, describe(node),
                      ": the reference evaluator does not implement this op");
  }
  return out;
}

}  // namespace mlprt::ir
