#pragma once
// Helpers of the pass tests on hand-built graphs (fuse_transposes, fuse_residual_adds,
// fold_norm_affine): nodes, constant ramps, and the float64 check that a pass kept the result.

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "ir/evaluator.h"
#include "ir/graph.h"

namespace mlprt::ir::testing {

inline Node make_node(const std::string& name, const std::string& op,
                      std::vector<std::string> inputs, std::vector<std::string> outputs,
                      std::map<std::string, AttributeValue> attrs = {}) {
  Node n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  n.attributes = std::move(attrs);
  return n;
}

/// offset + scale * (i % period - period / 2) for element i: small, signed, not all equal.
inline Constant ramp(Dims dims, float scale, int period = 7, float offset = 0.0f) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = offset + scale * static_cast<float>(static_cast<int>(i % static_cast<size_t>(period)) -
                                               period / 2);
  }
  return Constant::from_floats(std::move(dims), v);
}

/// Output "y" of both graphs on input "x" = `x`, equal within `tolerance` (float64 evaluator).
inline void expect_same_output(const Graph& a, const Graph& b, const RefTensor& x,
                               double tolerance) {
  auto ya = evaluate_graph(a, {{"x", x}});
  auto yb = evaluate_graph(b, {{"x", x}});
  ASSERT_TRUE(ya.is_ok()) << ya.status().message();
  ASSERT_TRUE(yb.is_ok()) << yb.status().message();
  const RefTensor& u = ya->at("y");
  const RefTensor& v = yb->at("y");
  ASSERT_EQ(u.dims, v.dims);
  for (size_t i = 0; i < u.values.size(); ++i) EXPECT_NEAR(u.values[i], v.values[i], tolerance);
}

}  // namespace mlprt::ir::testing
