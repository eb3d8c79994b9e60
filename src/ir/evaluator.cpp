#include "ir/evaluator.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>

#include "common/check.h"
#include "ir/activation.h"
#include "ir/evaluator_ops.h"

namespace mlprt::ir {
namespace evaluator_detail {

std::string describe(const Node& node) { return "node '" + node.name + "' (" + node.op + ")"; }

size_t count_of(const Dims& dims) {
  size_t n = 1;
  for (int64_t d : dims) n *= static_cast<size_t>(d);
  return n;
}

// For every element of `out` (row-major), the flat index of the element of `in` that numpy
// broadcasting reads. `in` must broadcast to `out`.
std::vector<size_t> broadcast_offsets(const Dims& in, const Dims& out) {
  const size_t rank = out.size();
  const size_t lead = rank - in.size();
  std::vector<size_t> in_stride(rank, 0);
  size_t stride = 1;
  for (size_t i = rank; i-- > lead;) {
    const auto d = static_cast<size_t>(in[i - lead]);
    in_stride[i] = d == 1 ? 0 : stride;
    stride *= d;
  }
  const size_t total = count_of(out);
  std::vector<size_t> offsets(total);
  std::vector<int64_t> index(rank, 0);
  for (size_t flat = 0; flat < total; ++flat) {
    size_t off = 0;
    for (size_t i = 0; i < rank; ++i) off += static_cast<size_t>(index[i]) * in_stride[i];
    offsets[flat] = off;
    for (size_t i = rank; i-- > 0;) {  // odometer increment
      if (++index[i] < out[i]) break;
      index[i] = 0;
    }
  }
  return offsets;
}

Status need_inputs(const Node& node, const std::vector<RefTensor>& in, size_t n) {
  if (in.size() < n) {
    return make_error(StatusCode::kInvalidArgument, describe(node), " needs ", n,
                      " inputs, got ", in.size());
  }
  for (size_t i = 0; i < n; ++i) {
    if (in[i].values.empty() && count_of(in[i].dims) != 0) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": input ", i,
                        " is missing");
    }
  }
  return Status::ok();
}

bool present(const std::vector<RefTensor>& in, size_t i) {
  return i < in.size() && !(in[i].values.empty() && in[i].dims.empty());
}

}  // namespace evaluator_detail

namespace {

using namespace evaluator_detail;

Result<RefTensor> eval_gemm(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 2));
  const RefTensor& a = in[0];
  const RefTensor& b = in[1];
  if (a.dims.size() != 2 || b.dims.size() != 2) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": A ", to_string(a.dims),
                      " and B ", to_string(b.dims), " must be 2-D");
  }
  const bool ta = node.get_int("transA", 0) != 0;
  const bool tb = node.get_int("transB", 0) != 0;
  const double alpha = node.get_float("alpha", 1.0);
  const double beta = node.get_float("beta", 1.0);
  const int64_t m = ta ? a.dims[1] : a.dims[0];
  const int64_t k = ta ? a.dims[0] : a.dims[1];
  const int64_t kb = tb ? b.dims[1] : b.dims[0];
  const int64_t n = tb ? b.dims[0] : b.dims[1];
  if (k != kb) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": A ", to_string(a.dims),
                      (ta ? " (transposed)" : ""), " and B ", to_string(b.dims),
                      (tb ? " (transposed)" : ""), " have different inner sizes ", k, " and ",
                      kb);
  }
  RefTensor y{{m, n}, std::vector<double>(static_cast<size_t>(m * n), 0.0)};
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = ta ? a.values[static_cast<size_t>(p * m + i)]
                             : a.values[static_cast<size_t>(i * k + p)];
        const double bv = tb ? b.values[static_cast<size_t>(j * k + p)]
                             : b.values[static_cast<size_t>(p * n + j)];
        sum += av * bv;
      }
      y.values[static_cast<size_t>(i * n + j)] = alpha * sum;
    }
  }
  if (present(in, 2)) {
    MLPRT_ASSIGN_OR_RETURN(Dims c_dims, broadcast_dims(node, in[2].dims, y.dims));
    if (c_dims != y.dims) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": C of shape ",
                        to_string(in[2].dims), " does not broadcast to ", to_string(y.dims));
    }
    const std::vector<size_t> off = broadcast_offsets(in[2].dims, y.dims);
    for (size_t i = 0; i < y.values.size(); ++i) y.values[i] += beta * in[2].values[off[i]];
  }
  return y;
}

// numpy.matmul: 1-D operands are promoted to matrices and the added axis dropped afterwards;
// leading (batch) axes broadcast.
Result<RefTensor> eval_matmul(const Node& node, const RefTensor& a, const RefTensor& b) {
  if (a.dims.empty() || b.dims.empty()) {
    return make_error(StatusCode::kInvalidArgument, describe(node),
                      ": MatMul inputs must have rank >= 1, got ", to_string(a.dims), " and ",
                      to_string(b.dims));
  }
  const Dims da = a.dims.size() == 1 ? Dims{1, a.dims[0]} : a.dims;
  const Dims db = b.dims.size() == 1 ? Dims{b.dims[0], 1} : b.dims;
  const int64_t m = da[da.size() - 2], k = da.back(), kb = db[db.size() - 2], n = db.back();
  if (k != kb) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": shapes ",
                      to_string(a.dims), " and ", to_string(b.dims),
                      " have different inner sizes ", k, " and ", kb);
  }
  const Dims batch_a(da.begin(), da.end() - 2);
  const Dims batch_b(db.begin(), db.end() - 2);
  MLPRT_ASSIGN_OR_RETURN(Dims batch, broadcast_dims(node, batch_a, batch_b));
  const std::vector<size_t> off_a = broadcast_offsets(batch_a, batch);
  const std::vector<size_t> off_b = broadcast_offsets(batch_b, batch);
  const auto mk = static_cast<size_t>(m * k), kn = static_cast<size_t>(k * n);
  const auto mn = static_cast<size_t>(m * n);
  RefTensor y;
  y.values.assign(off_a.size() * mn, 0.0);
  for (size_t bi = 0; bi < off_a.size(); ++bi) {
    const double* pa = a.values.data() + off_a[bi] * mk;
    const double* pb = b.values.data() + off_b[bi] * kn;
    double* py = y.values.data() + bi * mn;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double sum = 0.0;
        for (int64_t p = 0; p < k; ++p) sum += pa[i * k + p] * pb[p * n + j];
        py[i * n + j] = sum;
      }
    }
  }
  y.dims = batch;
  if (a.dims.size() > 1) y.dims.push_back(m);
  if (b.dims.size() > 1) y.dims.push_back(n);
  return y;
}

// The residual input (3) of a Dense / MatMul layer, of the output's shape, added last.
Result<RefTensor> add_residual(const Node& node, const std::vector<RefTensor>& in, RefTensor y) {
  if (!present(in, 3)) return y;
  if (in[3].dims != y.dims) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": residual of shape ",
                      to_string(in[3].dims), " is not the output's shape ", to_string(y.dims));
  }
  for (size_t i = 0; i < y.values.size(); ++i) y.values[i] += in[3].values[i];
  return y;
}

Result<RefTensor> eval_dense(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 2));
  const RefTensor& x = in[0];
  const RefTensor& w = in[1];
  if (w.dims.size() != 2) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": weight has shape ",
                      to_string(w.dims), "; Dense needs a 2-D [K, N] weight");
  }
  RefTensor y;
  if (node.get_int("transpose_x", 0) != 0) {
    if (x.dims.size() != 2) {
      return make_error(StatusCode::kInvalidArgument, describe(node),
                        ": transposed input must be 2-D, got ", to_string(x.dims));
    }
    RefTensor xt{{x.dims[1], x.dims[0]}, std::vector<double>(x.values.size())};
    for (int64_t r = 0; r < x.dims[0]; ++r) {
      for (int64_t c = 0; c < x.dims[1]; ++c) {
        xt.values[static_cast<size_t>(c * x.dims[0] + r)] =
            x.values[static_cast<size_t>(r * x.dims[1] + c)];
      }
    }
    MLPRT_ASSIGN_OR_RETURN(y, eval_matmul(node, xt, w));
  } else {
    MLPRT_ASSIGN_OR_RETURN(y, eval_matmul(node, x, w));
  }
  const auto n = static_cast<size_t>(w.dims[1]);
  if (present(in, 2)) {
    if (in[2].values.size() != n) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": bias has shape ",
                        to_string(in[2].dims), "; expected ", n, " values");
    }
    for (size_t i = 0; i < y.values.size(); ++i) y.values[i] += in[2].values[i % n];
  }
  const std::string activation = node.get_string("activation", "none");
  const std::optional<ActivationKind> kind = parse_activation(activation);
  if (!kind) {
    return make_error(StatusCode::kUnsupported, describe(node), ": activation '", activation,
                      "' is not supported; supported: ", kActivationKinds);
  }
  const double alpha = node.get_float("alpha", 0.0);
  const double beta = node.get_float("beta", 0.0);
  for (double& v : y.values) v = apply_activation(*kind, v, alpha, beta);
  return add_residual(node, in, std::move(y));
}

// Swaps the last two axes (the transposed reads and writes of the MatMul layer op).
RefTensor swap_last_two(const RefTensor& t) {
  const size_t r = t.dims.size();
  const int64_t rows = t.dims[r - 2], cols = t.dims[r - 1];
  RefTensor y{t.dims, std::vector<double>(t.values.size())};
  std::swap(y.dims[r - 2], y.dims[r - 1]);
  const int64_t mat = rows * cols;
  for (int64_t b = 0; mat > 0 && b < static_cast<int64_t>(t.values.size()) / mat; ++b) {
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < cols; ++j) {
        y.values[static_cast<size_t>(b * mat + j * rows + i)] =
            t.values[static_cast<size_t>(b * mat + i * cols + j)];
      }
    }
  }
  return y;
}

// The MatMul layer op: ONNX MatMul plus transposed reads / write, bias and activation.
Result<RefTensor> eval_matmul_layer(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 2));
  const bool ta = node.get_int("transpose_a", 0) != 0;
  const bool tb = node.get_int("transpose_b", 0) != 0;
  if ((ta && in[0].dims.size() < 2) || (tb && in[1].dims.size() < 2)) {
    return make_error(StatusCode::kInvalidArgument, describe(node),
                      ": a transposed operand must have rank >= 2");
  }
  MLPRT_ASSIGN_OR_RETURN(RefTensor y, eval_matmul(node, ta ? swap_last_two(in[0]) : in[0],
                                                  tb ? swap_last_two(in[1]) : in[1]));
  if (present(in, 2)) {
    const size_t n = in[2].values.size();
    if (y.dims.empty() || static_cast<int64_t>(n) != y.dims.back()) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": bias of shape ",
                        to_string(in[2].dims), " does not match the output ", to_string(y.dims));
    }
    for (size_t i = 0; i < y.values.size(); ++i) y.values[i] += in[2].values[i % n];
  }
  const std::optional<ActivationKind> kind =
      parse_activation(node.get_string("activation", "none"));
  if (!kind) {
    return make_error(StatusCode::kUnsupported, describe(node), ": activation '",
                      node.get_string("activation", ""), "' is not supported; supported: ",
                      kActivationKinds);
  }
  const double alpha = node.get_float("alpha", 0.0);
  const double beta = node.get_float("beta", 0.0);
  for (double& v : y.values) v = apply_activation(*kind, v, alpha, beta);
  if (node.get_int("transpose_y", 0) != 0) {
    if (y.dims.size() < 2) {
      return make_error(StatusCode::kInvalidArgument, describe(node),
                        ": transpose_y needs a 2-D or higher output");
    }
    return add_residual(node, in, swap_last_two(y));
  }
  return add_residual(node, in, std::move(y));
}

Result<RefTensor> eval_add(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 2));
  MLPRT_ASSIGN_OR_RETURN(Dims dims, broadcast_dims(node, in[0].dims, in[1].dims));
  const std::vector<size_t> off_a = broadcast_offsets(in[0].dims, dims);
  const std::vector<size_t> off_b = broadcast_offsets(in[1].dims, dims);
  RefTensor y{dims, std::vector<double>(off_a.size())};
  for (size_t i = 0; i < y.values.size(); ++i) {
    y.values[i] = in[0].values[off_a[i]] + in[1].values[off_b[i]];
  }
  return y;
}

Result<RefTensor> eval_reshape(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 1));
  std::vector<int64_t> target;
  if (node.has_attribute("shape")) {
    target = node.get_ints("shape");
  } else if (present(in, 1)) {
    for (double v : in[1].values) target.push_back(static_cast<int64_t>(v));
  } else {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": no target shape");
  }
  const bool allow_zero = node.get_int("allowzero", 0) != 0;
  const Dims& src = in[0].dims;
  Dims out(target.size());
  int64_t known = 1;
  std::optional<size_t> infer_at;
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t t = target[i];
    if (t == 0 && !allow_zero) {
      if (i >= src.size()) {
        return make_error(StatusCode::kInvalidArgument, describe(node), ": target entry ", i,
                          " copies a dimension the input ", to_string(src), " does not have");
      }
      t = src[i];
    }
    if (t == -1 && !infer_at) {
      infer_at = i;
      continue;
    }
    if (t < 0) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": target shape entry ",
                        i, " is ", t, "; allowed: >= 0 or a single -1");
    }
    out[i] = t;
    known *= t;
  }
  const auto total = static_cast<int64_t>(in[0].values.size());
  if (infer_at) {
    if (known == 0 || total % known != 0) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": cannot reshape ",
                        to_string(src), " with -1 in the target");
    }
    out[*infer_at] = total / known;
  } else if (known != total) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": cannot reshape ",
                      to_string(src), " (", total, " elements) to ", to_string(out));
  }
  return RefTensor{out, in[0].values};
}

Result<RefTensor> eval_flatten(const Node& node, const std::vector<RefTensor>& in) {
  MLPRT_RETURN_IF_ERROR(need_inputs(node, in, 1));
  const auto rank = static_cast<int64_t>(in[0].dims.size());
  int64_t axis = node.get_int("axis", 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis > rank) {
    return make_error(StatusCode::kInvalidArgument, describe(node), ": axis ",
                      node.get_int("axis", 1), " is out of range for rank ", rank);
  }
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < rank; ++i) (i < axis ? outer : inner) *= in[0].dims[static_cast<size_t>(i)];
  return RefTensor{{outer, inner}, in[0].values};
}

}  // namespace

namespace {

// A double as T. Integer types saturate (NaN gives 0): a folded integer past T's range (a
// fuzzer's shape arithmetic) must not be undefined behaviour; the shape checks refuse it later.
template <typename T>
T narrow_value(double value) {
  if constexpr (std::is_integral_v<T>) {
    if (std::isnan(value)) return T{0};
    // 2^63 etc. are exact doubles: compare against them, not against max() rounded up.
    constexpr double kTop = static_cast<double>(std::numeric_limits<T>::max()) + 1.0;
    if (value >= kTop) return std::numeric_limits<T>::max();
    if (value <= static_cast<double>(std::numeric_limits<T>::min())) {
      return std::numeric_limits<T>::min();
    }
  }
  return static_cast<T>(value);
}

}  // namespace

RefTensor to_ref_tensor(const Constant& constant) {
  return RefTensor{constant.dims, constant.to_doubles()};
}

Constant to_constant(const RefTensor& tensor, DataType dtype) {
  Constant c;
  c.dims = tensor.dims;
  auto store = [&](auto tag) {
    using T = decltype(tag);
    c.data.resize(tensor.values.size() * sizeof(T));
    for (size_t i = 0; i < tensor.values.size(); ++i) {
      const T v = narrow_value<T>(tensor.values[i]);
      std::memcpy(c.data.data() + i * sizeof(T), &v, sizeof(T));
    }
  };
  c.dtype = dtype;
  switch (dtype) {
    case DataType::kFloat64: store(double{}); break;
    case DataType::kInt64: store(int64_t{}); break;
    case DataType::kInt32: store(int32_t{}); break;
    case DataType::kInt8: store(int8_t{}); break;
    case DataType::kUInt8:
    case DataType::kBool: store(uint8_t{}); break;
    case DataType::kFloat32:
    case DataType::kFloat16:
    case DataType::kBFloat16:
      // 16-bit results are kept in float32: nothing downstream needs them narrower.
      c.dtype = DataType::kFloat32;
      store(float{});
      break;
  }
  return c;
}

Result<std::vector<RefTensor>> evaluate_node(const Graph& /*graph*/, const Node& node,
                                             const std::vector<RefTensor>& inputs) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (present(inputs, i) && inputs[i].values.size() != count_of(inputs[i].dims)) {
      return make_error(StatusCode::kInvalidArgument, describe(node), ": input ", i,
                        " has shape ", to_string(inputs[i].dims), " but ",
                        inputs[i].values.size(), " values");
    }
  }
  const std::string& op = node.op;
  std::vector<RefTensor> out(1);
  if (op == "Gemm") {
    MLPRT_ASSIGN_OR_RETURN(out[0], eval_gemm(node, inputs));
  } else if (op == "MatMul") {
    MLPRT_ASSIGN_OR_RETURN(out[0], eval_matmul_layer(node, inputs));
  } else if (op == "Dense") {
    MLPRT_ASSIGN_OR_RETURN(out[0], eval_dense(node, inputs));
  } else if (op == "Add") {
    MLPRT_ASSIGN_OR_RETURN(out[0], eval_add(node, inputs));
  } else if (op == "Relu") {
    MLPRT_RETURN_IF_ERROR(need_inputs(node, inputs, 1));
    out[0] = inputs[0];
    for (double& v : out[0].values) v = std::max(v, 0.0);
  } else if (op == "Identity" || op == "Dropout") {
    MLPRT_RETURN_IF_ERROR(need_inputs(node, inputs, 1));
    out[0] = inputs[0];
    if (op == "Dropout" && node.outputs.size() > 1) {  // inference: the mask keeps everything
      out.push_back(RefTensor{inputs[0].dims, std::vector<double>(inputs[0].values.size(), 1.0)});
    }
  } else if (op == "Reshape") {
    MLPRT_ASSIGN_OR_RETURN(out[0], eval_reshape(node, inputs));
  } else if (op == "Flatten") {
    MLPRT_ASSIGN_OR_RETURN(out[0], eval_flatten(node, inputs));
  } else {
    return evaluate_more_ops(node, inputs);
  }
  return out;
}

Result<std::map<std::string, RefTensor>> evaluate_graph(
    const Graph& graph, const std::map<std::string, RefTensor>& inputs) {
  std::map<std::string, RefTensor> tensors;
  for (const auto& [name, constant] : graph.constants) tensors[name] = to_ref_tensor(constant);
  for (const TensorInfo& info : graph.inputs) {
    auto it = inputs.find(info.name);
    if (it == inputs.end()) {
      return make_error(StatusCode::kInvalidArgument, "no value given for graph input '",
                        info.name, "'");
    }
    const RefTensor& t = it->second;
    bool fits = t.dims.size() == info.shape.size();
    for (size_t i = 0; fits && i < t.dims.size(); ++i) {
      fits = t.dims[i] >= 0 && (!info.shape[i].is_static() || info.shape[i].value == t.dims[i]);
    }
    if (!fits) {
      return make_error(StatusCode::kInvalidArgument, "graph input '", info.name,
                        "' has shape ", to_string(info.shape), "; got ", to_string(t.dims));
    }
    if (t.values.size() != count_of(t.dims)) {
      return make_error(StatusCode::kInvalidArgument, "graph input '", info.name, "': shape ",
                        to_string(t.dims), " needs ", count_of(t.dims), " values, got ",
                        t.values.size());
    }
    tensors[info.name] = t;
  }
  for (const Node& node : graph.nodes) {
    std::vector<RefTensor> in;
    in.reserve(node.inputs.size());
    for (const std::string& name : node.inputs) {
      if (name.empty()) {
        in.emplace_back();
        continue;
      }
      auto it = tensors.find(name);
      if (it == tensors.end()) {
        return make_error(StatusCode::kInvalidArgument, describe(node), ": input '", name,
                          "' is produced by no earlier node, graph input or constant");
      }
      in.push_back(it->second);
    }
    MLPRT_ASSIGN_OR_RETURN(std::vector<RefTensor> out, evaluate_node(graph, node, in));
    for (size_t i = 0; i < node.outputs.size() && i < out.size(); ++i) {
      if (!node.outputs[i].empty()) tensors[node.outputs[i]] = std::move(out[i]);
    }
  }
  return tensors;
}

}  // namespace mlprt::ir
