#pragma once
// Small ONNX-semantics graphs for builder and runtime tests, with a float64 reference.

#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "mlprt/network.h"

namespace mlprt::test {

/// input [batch, in] -> Gemm(transB) -> Relu -> Gemm(transB) -> output [batch, out].
/// `batch` < 0 makes the batch dim symbolic ("batch").
ir::Graph make_mlp_graph(int64_t batch, int64_t in, int64_t hidden, int64_t out, uint32_t seed);
std::unique_ptr<Network> make_network(ir::Graph graph);

/// Float64 reference outputs of `graph` (ONNX semantics) for a float32 input.
std::vector<double> reference_output(const ir::Graph& graph, const Dims& dims,
                                     const std::vector<float>& input);
std::vector<float> random_input(int64_t count, uint32_t seed);
double rel_l2(const std::vector<float>& actual, const std::vector<double>& expected);

}  // namespace mlprt::test
