#include "test_graphs.h"

#include <cmath>
#include <random>

#include "ir/evaluator.h"

namespace mlprt::test {
namespace {

ir::Constant random_constant(Dims dims, std::mt19937& rng) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::uniform_real_distribution<float> dist(-0.5f, 0.5f);
  std::vector<float> values(static_cast<size_t>(n));
  for (float& v : values) v = dist(rng);
  return ir::Constant::from_floats(std::move(dims), values);
}

}  // namespace

ir::Graph make_mlp_graph(int64_t batch, int64_t in, int64_t hidden, int64_t out, uint32_t seed) {
  std::mt19937 rng(seed);
  ir::Graph g;
  g.name = "test_mlp";
  g.source = "test_mlp.onnx";
  g.opset = 13;
  const ir::Dim batch_dim = batch < 0 ? ir::Dim{-1, "batch"} : ir::Dim{batch, ""};
  g.inputs.push_back({"input", DataType::kFloat32, {batch_dim, ir::Dim{in, ""}}});
  g.outputs.push_back({"output", DataType::kFloat32, {batch_dim, ir::Dim{out, ""}}});
  g.constants["fc1.weight"] = random_constant({hidden, in}, rng);
  g.constants["fc1.bias"] = random_constant({hidden}, rng);
  g.constants["fc2.weight"] = random_constant({out, hidden}, rng);
  g.constants["fc2.bias"] = random_constant({out}, rng);
  ir::Node fc1{"fc1", "Gemm", {"input", "fc1.weight", "fc1.bias"}, {"h"}, {}};
  fc1.attributes["transB"] = int64_t{1};
  ir::Node relu{"relu1", "Relu", {"h"}, {"h_relu"}, {}};
  ir::Node fc2{"fc2", "Gemm", {"h_relu", "fc2.weight", "fc2.bias"}, {"output"}, {}};
  fc2.attributes["transB"] = int64_t{1};
  g.nodes = {fc1, relu, fc2};
  return g;
}

std::unique_ptr<Network> make_network(ir::Graph graph) {
  return std::make_unique<Network>(std::make_unique<ir::Graph>(std::move(graph)));
}

std::vector<double> reference_output(const ir::Graph& graph, const Dims& dims,
                                     const std::vector<float>& input) {
  ir::RefTensor x{dims, std::vector<double>(input.begin(), input.end())};
  auto result = ir::evaluate_graph(graph, {{"input", x}});
  if (!result.is_ok()) return {};
  return result->at("output").values;
}

std::vector<float> random_input(int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(count));
  for (float& v : values) v = dist(rng);
  return values;
}

double rel_l2(const std::vector<float>& actual, const std::vector<double>& expected) {
  if (actual.size() != expected.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    num += (actual[i] - expected[i]) * (actual[i] - expected[i]);
    den += expected[i] * expected[i];
  }
  return std::sqrt(num / (den > 0 ? den : 1));
}

}  // namespace mlprt::test
