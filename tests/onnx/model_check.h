#pragma once
// The ops tests' harness: import -> float64 evaluator on the imported graph (the reference) ->
// optimize -> cpu backend, every graph output compared at a rel L2 tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "backends/registry.h"
#include "ir/evaluator.h"
#include "ir/passes/passes.h"
#include "model_builder.h"
#include "onnx/onnx_importer.h"

namespace mlprt::test {

inline double rel_l2(const std::vector<float>& a, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - ref[i]) * (a[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

inline size_t count_ops(const ir::Graph& g, const std::string& op) {
  return static_cast<size_t>(
      std::count_if(g.nodes.begin(), g.nodes.end(), [&](const ir::Node& n) { return n.op == op; }));
}

struct ModelRun {
  ir::Graph optimized;
  std::map<std::string, ir::RefTensor> reference;  // evaluator on the imported graph
};

// Imports, evaluates the imported graph in float64, optimizes, runs the cpu backend and checks
// every graph output. `inputs` gives concrete shapes (and values).
inline ModelRun check_model(const ModelBuilder& b,
                            const std::map<std::string, ir::RefTensor>& inputs,
                            double tolerance = 1e-5) {
  ModelRun run;
  const auto bytes = b.bytes();
  auto imported = onnx_import::import_onnx_bytes(bytes, "t.onnx");
  EXPECT_TRUE(imported.is_ok()) << imported.status().message();
  if (!imported.is_ok()) return run;
  auto ref = ir::evaluate_graph(*imported, inputs);
  EXPECT_TRUE(ref.is_ok()) << ref.status().message();
  if (!ref.is_ok()) return run;
  run.reference = *ref;
  run.optimized = *imported;
  const Status s = ir::optimize(run.optimized);
  EXPECT_TRUE(s.is_ok()) << s.message();
  if (!s.is_ok()) return run;

  auto backend = backend::find_backend("cpu");
  EXPECT_TRUE(backend.is_ok());
  if (!backend.is_ok()) return run;
  auto blob = (*backend)->compile(run.optimized, {}, BuilderConfig{});
  EXPECT_TRUE(blob.is_ok()) << blob.status().message();
  if (!blob.is_ok()) return run;
  auto exe = (*backend)->load(run.optimized, *blob);
  EXPECT_TRUE(exe.is_ok()) << exe.status().message();
  if (!exe.is_ok()) return run;
  auto context = (*exe)->create_context();
  EXPECT_TRUE(context.is_ok()) << context.status().message();
  if (!context.is_ok()) return run;

  ir::ShapeMap input_shapes;
  std::map<std::string, std::vector<float>> in_data, out_data;
  backend::IoBindings io;
  for (const auto& [name, t] : inputs) {
    input_shapes[name] = t.dims;
    in_data[name].assign(t.values.begin(), t.values.end());
    io.inputs[name] = in_data[name].data();
  }
  auto shapes = ir::infer_shapes(run.optimized, input_shapes);
  EXPECT_TRUE(shapes.is_ok()) << shapes.status().message();
  if (!shapes.is_ok()) return run;
  for (const ir::TensorInfo& out : run.optimized.outputs) {
    EXPECT_EQ(shapes->at(out.name), ref->at(out.name).dims) << out.name;
    out_data[out.name].assign(ref->at(out.name).values.size(), 0.0f);
    io.outputs[out.name] = out_data[out.name].data();
  }
  const Status prepared = (*context)->prepare(*shapes);
  EXPECT_TRUE(prepared.is_ok()) << prepared.message();
  const Status executed = (*context)->execute(io, nullptr);
  EXPECT_TRUE(executed.is_ok()) << executed.message();
  for (const ir::TensorInfo& out : run.optimized.outputs) {
    EXPECT_LE(rel_l2(out_data[out.name], ref->at(out.name).values), tolerance) << out.name;
  }
  return run;
}

inline ir::RefTensor random_tensor(Dims dims, uint32_t seed, double scale = 2.0) {
  const auto v = random_values(count_of(dims), seed);
  ir::RefTensor t{std::move(dims), {}};
  // Float32-representable values, so the cpu backend and the reference see the same inputs.
  for (float x : v) t.values.push_back(static_cast<double>(static_cast<float>(x * scale)));
  return t;
}

}  // namespace mlprt::test
