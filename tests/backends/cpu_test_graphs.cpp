#include "cpu_test_graphs.h"

#include <algorithm>

namespace mlprt::testing {
namespace {

struct RefTensor {
  Dims dims;
  std::vector<double> data;
};

int64_t count(const Dims& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

RefTensor ref_dense(const ir::Graph& graph, const ir::Node& node, const RefTensor& x) {
  const ir::Constant& w_const = graph.constants.at(node.inputs[1]);
  const std::vector<double> w = w_const.to_doubles();
  const int64_t k = w_const.dims[0];
  const int64_t n = w_const.dims[1];
  const bool transpose = node.get_int("transpose_x", 0) != 0;
  const int64_t m = transpose ? x.dims[1] : count(x.dims) / k;
  std::vector<double> b(static_cast<size_t>(n), 0.0);
  if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
    b = graph.constants.at(node.inputs[2]).to_doubles();
  }
  const bool relu = node.get_string("activation", "none") == "relu";
  RefTensor y;
  if (transpose) {
    y.dims = {m, n};
  } else {
    y.dims = x.dims;
    y.dims.back() = n;
  }
  y.data.resize(static_cast<size_t>(m * n));
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t c = 0; c < n; ++c) {
      double acc = b[static_cast<size_t>(c)];
      for (int64_t i = 0; i < k; ++i) {
        const double xv = transpose ? x.data[static_cast<size_t>(i * m + r)]
                                    : x.data[static_cast<size_t>(r * k + i)];
        acc += xv * w[static_cast<size_t>(i * n + c)];
      }
      y.data[static_cast<size_t>(r * n + c)] = relu ? std::max(acc, 0.0) : acc;
    }
  }
  return y;
}

RefTensor ref_add(const RefTensor& a, const RefTensor& b) {
  const size_t rank = std::max(a.dims.size(), b.dims.size());
  auto padded = [&](const Dims& d) {
    Dims out(rank - d.size(), 1);
    out.insert(out.end(), d.begin(), d.end());
    return out;
  };
  const Dims da = padded(a.dims);
  const Dims db = padded(b.dims);
  RefTensor y;
  for (size_t i = 0; i < rank; ++i) y.dims.push_back(std::max(da[i], db[i]));
  y.data.resize(static_cast<size_t>(count(y.dims)));
  Dims index(rank, 0);
  for (size_t flat = 0; flat < y.data.size(); ++flat) {
    int64_t ia = 0, ib = 0;
    for (size_t i = 0; i < rank; ++i) {
      ia = ia * da[i] + (da[i] == 1 ? 0 : index[i]);
      ib = ib * db[i] + (db[i] == 1 ? 0 : index[i]);
    }
    y.data[flat] = a.data[static_cast<size_t>(ia)] + b.data[static_cast<size_t>(ib)];
    for (size_t i = rank; i-- > 0;) {
      if (++index[i] < y.dims[i]) break;
      index[i] = 0;
    }
  }
  return y;
}

// ONNX Reshape rules: 0 copies the input dim (unless allowzero), -1 is inferred.
Dims ref_reshape_dims(const ir::Node& node, const Dims& in) {
  const std::vector<int64_t> target = node.get_ints("shape");
  const bool allow_zero = node.get_int("allowzero", 0) != 0;
  Dims out(target.begin(), target.end());
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 0 && !allow_zero) out[i] = in[i];
    if (out[i] == -1) {
      infer = static_cast<int>(i);
    } else {
      known *= out[i];
    }
  }
  if (infer >= 0) out[static_cast<size_t>(infer)] = count(in) / known;
  return out;
}

}  // namespace

std::map<std::string, std::vector<double>> reference(const ir::Graph& graph,
                                                     const TensorMap& inputs) {
  std::map<std::string, RefTensor> values;
  for (const auto& [name, t] : inputs) {
    values[name] = {t.dims, std::vector<double>(t.data.begin(), t.data.end())};
  }
  for (const auto& [name, c] : graph.constants) values[name] = {c.dims, c.to_doubles()};
  for (const ir::Node& node : graph.nodes) {
    const RefTensor& x = values.at(node.inputs[0]);
    RefTensor y;
    if (node.op == "Dense") {
      y = ref_dense(graph, node, x);
    } else if (node.op == "Add") {
      y = ref_add(x, values.at(node.inputs[1]));
    } else if (node.op == "Relu") {
      y = x;
      for (double& v : y.data) v = std::max(v, 0.0);
    } else if (node.op == "Reshape") {
      y = {ref_reshape_dims(node, x.dims), x.data};
    } else if (node.op == "Flatten") {
      const auto axis = static_cast<size_t>(node.get_int("axis", 1));
      int64_t outer = 1;
      for (size_t i = 0; i < axis; ++i) outer *= x.dims[i];
      y = {{outer, count(x.dims) / outer}, x.data};
    } else {
      ADD_FAILURE() << "reference: unknown op " << node.op;
    }
    values[node.outputs[0]] = std::move(y);
  }
  std::map<std::string, std::vector<double>> out;
  for (const ir::TensorInfo& o : graph.outputs) out[o.name] = values.at(o.name).data;
  return out;
}

double rel_l2(const std::vector<float>& a, const std::vector<double>& ref) {
  if (a.size() != ref.size()) return 1e30;
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  return den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
}

std::unique_ptr<backend::Executable> load_cpu(const ir::Graph& graph,
                                              const std::vector<OptimizationProfile>& profiles) {
  return load_on("cpu", graph, profiles);
}

std::unique_ptr<backend::Executable> load_on(const std::string& name, const ir::Graph& graph,
                                             const std::vector<OptimizationProfile>& profiles) {
  auto backend = backend::find_backend(name);
  EXPECT_TRUE(backend.is_ok()) << backend.status().message();
  if (!backend.is_ok()) return nullptr;
  auto blob = (*backend)->compile(graph, profiles, BuilderConfig{});
  EXPECT_TRUE(blob.is_ok()) << blob.status().message();
  if (!blob.is_ok()) return nullptr;
  auto exe = (*backend)->load(graph, *blob);
  EXPECT_TRUE(exe.is_ok()) << exe.status().message();
  if (!exe.is_ok()) return nullptr;
  return std::move(exe).value();
}

Status run_context(backend::BackendContext& context, const ir::Graph& graph,
                   const TensorMap& inputs, TensorMap& outputs) {
  ir::ShapeMap input_shapes;
  for (const auto& [name, t] : inputs) input_shapes[name] = t.dims;
  Result<ir::ShapeMap> shapes = ir::infer_shapes(graph, input_shapes);
  if (!shapes.is_ok()) return shapes.status();
  Status status = context.prepare(*shapes);
  if (!status.is_ok()) return status;
  backend::IoBindings io;
  for (const auto& [name, t] : inputs) io.inputs[name] = t.data.data();
  outputs.clear();
  for (const ir::TensorInfo& o : graph.outputs) {
    HostTensor& t = outputs[o.name];
    t.dims = shapes->at(o.name);
    // NaN-filled so an output the backend forgets to write cannot pass.
    t.data.assign(static_cast<size_t>(count(t.dims)), std::nanf(""));
    io.outputs[o.name] = t.data.data();
  }
  return context.execute(io, nullptr);
}

void expect_matches_reference(backend::BackendContext& context, const ir::Graph& graph,
                              const TensorMap& inputs) {
  TensorMap outputs;
  const Status status = run_context(context, graph, inputs, outputs);
  ASSERT_TRUE(status.is_ok()) << status.message();
  const auto expected = reference(graph, inputs);
  for (const auto& [name, ref] : expected) {
    const HostTensor& got = outputs.at(name);
    EXPECT_EQ(got.data.size(), ref.size()) << name;
    EXPECT_LE(rel_l2(got.data, ref), 1e-5) << "output " << name << " of shape "
                                           << to_string(got.dims);
  }
}

}  // namespace mlprt::testing
