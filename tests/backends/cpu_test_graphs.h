#pragma once
// Helpers for the cpu backend tests: build layer-op graphs by hand with random weights, run
// them through a backend, and evaluate them with a float64 reference written with plain loops.

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/registry.h"
#include "ir/graph.h"
#include "ir/shape_inference.h"

namespace mlprt::testing {

/// Builds a graph node by node; each call returns the name of the tensor it produced.
class GraphMaker {
 public:
  explicit GraphMaker(unsigned seed = 1) : m_rng(seed) { m_graph.name = "test_graph"; }

  /// `dims`: -1 for a dynamic dim.
  std::string input(const std::string& name, const Dims& dims,
                    DataType dtype = DataType::kFloat32) {
    m_graph.inputs.push_back({name, dtype, ir::from_dims(dims)});
    return name;
  }

  std::string constant(const Dims& dims) {
    const std::string name = "c" + std::to_string(m_counter++);
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<float> values(static_cast<size_t>(n));
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (float& v : values) v = dist(m_rng);
    m_graph.constants[name] = ir::Constant::from_floats(dims, values);
    return name;
  }

  std::string dense(const std::string& x, int64_t k, int64_t n, bool bias = true,
                    bool relu = false, bool transpose_x = false) {
    ir::Node node = make_node("Dense", {x, constant({k, n})});
    if (bias) node.inputs.push_back(constant({n}));
    node.attributes["activation"] = std::string(relu ? "relu" : "none");
    node.attributes["transpose_x"] = int64_t{transpose_x ? 1 : 0};
    return push(std::move(node));
  }
  std::string add(const std::string& a, const std::string& b) {
    return push(make_node("Add", {a, b}));
  }
  std::string relu(const std::string& x) { return push(make_node("Relu", {x})); }
  std::string reshape(const std::string& x, const std::vector<int64_t>& shape,
                      bool allow_zero = false) {
    ir::Node node = make_node("Reshape", {x});
    node.attributes["shape"] = shape;
    node.attributes["allowzero"] = int64_t{allow_zero ? 1 : 0};
    return push(std::move(node));
  }
  std::string flatten(const std::string& x, int64_t axis) {
    ir::Node node = make_node("Flatten", {x});
    node.attributes["axis"] = axis;
    return push(std::move(node));
  }
  /// Any node with one output; `attributes` as the layer op takes them.
  std::string node(const std::string& op, std::vector<std::string> inputs,
                   std::map<std::string, ir::AttributeValue> attributes = {}) {
    ir::Node n = make_node(op, std::move(inputs));
    for (auto& [key, value] : attributes) n.attributes[key] = std::move(value);
    return push(std::move(n));
  }
  void output(const std::string& name) {
    m_graph.outputs.push_back({name, DataType::kFloat32, {}});
  }

  ir::Graph& graph() { return m_graph; }

 private:
  ir::Node make_node(const std::string& op, std::vector<std::string> inputs) {
    ir::Node node;
    node.name = op + "_" + std::to_string(m_counter++);
    node.op = op;
    node.inputs = std::move(inputs);
    return node;
  }
  std::string push(ir::Node node) {
    node.outputs = {node.name + "_out"};
    m_graph.nodes.push_back(node);
    return node.outputs[0];
  }

  ir::Graph m_graph;
  std::mt19937 m_rng;
  int m_counter = 0;
};

struct HostTensor {
  Dims dims;
  std::vector<float> data;
};
using TensorMap = std::map<std::string, HostTensor>;

inline HostTensor random_tensor(const Dims& dims, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  HostTensor t{dims, std::vector<float>(static_cast<size_t>(n))};
  for (float& v : t.data) v = dist(rng);
  return t;
}

/// float64 evaluation of `graph` with plain loops; returns every graph output.
std::map<std::string, std::vector<double>> reference(const ir::Graph& graph,
                                                     const TensorMap& inputs);

/// ||a - ref|| / ||ref|| (absolute error when ref is all zero).
double rel_l2(const std::vector<float>& a, const std::vector<double>& ref);

/// Compile + load on the cpu backend, with the given profiles.
std::unique_ptr<backend::Executable> load_cpu(const ir::Graph& graph,
                                              const std::vector<OptimizationProfile>& profiles = {});
/// Compile + load on the backend named `name` (test failures, and null, where that fails).
std::unique_ptr<backend::Executable> load_on(const std::string& name, const ir::Graph& graph,
                                             const std::vector<OptimizationProfile>& profiles);

/// prepare + execute `context` on `inputs`; fills the outputs with their shapes.
Status run_context(backend::BackendContext& context, const ir::Graph& graph,
                   const TensorMap& inputs, TensorMap& outputs);

/// Runs and compares every output with the float64 reference (rel L2 <= 1e-5).
void expect_matches_reference(backend::BackendContext& context, const ir::Graph& graph,
                              const TensorMap& inputs);

// X [B, 24] -> Dense 24x16 + relu -> Dense 16x16 (no bias) -> + row bias -> Relu ->
// + the first Dense's output (residual) -> Dense 16x5 -> Flatten (a view): row-wise, so that
// the cpu backend may run it as one whole-chain row split.
inline ir::Graph row_wise_graph() {
  GraphMaker g(7);
  const auto x = g.input("x", {-1, 24});
  const auto first = g.dense(x, 24, 16, true, true);
  auto h = g.dense(first, 16, 16, false);
  h = g.relu(g.add(h, g.constant({1, 16})));
  h = g.add(h, first);
  h = g.dense(h, 16, 5);
  g.output(g.flatten(h, 1));
  return g.graph();
}

}  // namespace mlprt::testing
