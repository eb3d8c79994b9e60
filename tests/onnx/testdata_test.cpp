// Real ONNX files from Debian's libonnx-testdata: import, evaluate in float64, compare with the
// stored expected output. Models whose weights are graph inputs are also run with every input
// but the first frozen into an initializer, so that the passes apply to them.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "ir/evaluator.h"
#include "ir/passes/passes.h"
#include "onnx/onnx.pb.h"
#include "onnx/onnx_importer.h"
#include "onnx/onnx_tensor.h"

namespace mlprt {
namespace {

namespace fs = std::filesystem;
const fs::path kNodeTests = "/usr/share/libonnx-testdata/data/node";

std::string read_bytes(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

ir::RefTensor load_tensor(const fs::path& path, onnx::TensorProto* proto_out = nullptr) {
  onnx::TensorProto proto;
  EXPECT_TRUE(proto.ParseFromString(read_bytes(path))) << path;
  auto c = onnx_import::convert_tensor(proto, path.string());
  EXPECT_TRUE(c.is_ok()) << c.status().message();
  if (proto_out) *proto_out = proto;
  return c.is_ok() ? ir::to_ref_tensor(*c) : ir::RefTensor{};
}

void expect_close(const ir::RefTensor& got, const ir::RefTensor& want, const std::string& what) {
  ASSERT_EQ(got.dims, want.dims) << what;
  ASSERT_EQ(got.values.size(), want.values.size()) << what;
  for (size_t i = 0; i < got.values.size(); ++i) {
    ASSERT_NEAR(got.values[i], want.values[i], 1e-5 * (1.0 + std::abs(want.values[i])))
        << what << " element " << i;
  }
}

// freeze_from: inputs with this index or higher become initializers (int64 shape inputs always).
void run_case(const std::string& name, bool optimize_too) {
  const fs::path dir = kNodeTests / name;
  if (!fs::exists(dir / "model.onnx")) GTEST_SKIP() << dir << " not installed (libonnx-testdata)";
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(read_bytes(dir / "model.onnx")));
  const fs::path data = dir / "test_data_set_0";
  std::map<std::string, ir::RefTensor> inputs;
  std::map<std::string, ir::RefTensor> frozen;
  for (int i = 0; i < model.graph().input_size(); ++i) {
    const std::string& input = model.graph().input(i).name();
    onnx::TensorProto proto;
    ir::RefTensor t = load_tensor(data / ("input_" + std::to_string(i) + ".pb"), &proto);
    const bool is_float =
        model.graph().input(i).type().tensor_type().elem_type() == onnx::TensorProto_DataType_FLOAT;
    if (!is_float) {  // e.g. Reshape's int64 shape: our graph inputs are float32 only
      proto.set_name(input);
      *model.mutable_graph()->add_initializer() = proto;
    } else {
      inputs[input] = t;
    }
    if (i > 0 && is_float) frozen[input] = t;
  }
  const ir::RefTensor expected = load_tensor(data / "output_0.pb");
  const std::string bytes = model.SerializeAsString();
  auto graph = onnx_import::import_onnx_bytes(
      std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), name);
  ASSERT_TRUE(graph.is_ok()) << graph.status().message();
  auto out = ir::evaluate_graph(*graph, inputs);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  expect_close(out->at(graph->outputs[0].name), expected, name);

  if (!optimize_too) return;
  // Weights (inputs after the first) as initializers, then optimized.
  for (const auto& [input, tensor] : frozen) {
    onnx::TensorProto* t = model.mutable_graph()->add_initializer();
    t->set_name(input);
    t->set_data_type(onnx::TensorProto_DataType_DOUBLE);
    for (int64_t d : tensor.dims) t->add_dims(d);
    for (double v : tensor.values) t->add_double_data(v);
  }
  const std::string frozen_bytes = model.SerializeAsString();
  auto g2 = onnx_import::import_onnx_bytes(
      std::span(reinterpret_cast<const uint8_t*>(frozen_bytes.data()), frozen_bytes.size()), name);
  ASSERT_TRUE(g2.is_ok()) << g2.status().message();
  Status s = ir::optimize(*g2);
  ASSERT_TRUE(s.is_ok()) << s.message();
  for (const ir::Node& node : g2->nodes) {
    EXPECT_NE(std::find(ir::kLayerOps.begin(), ir::kLayerOps.end(), node.op), ir::kLayerOps.end())
        << node.op;
  }
  std::map<std::string, ir::RefTensor> first_only;
  const std::string first = model.graph().input(0).name();
  first_only[first] = inputs.at(first);
  auto out2 = ir::evaluate_graph(*g2, first_only);
  ASSERT_TRUE(out2.is_ok()) << out2.status().message();
  expect_close(out2->at(g2->outputs[0].name), expected, name + " (optimized)");
}

class NodeTestData : public ::testing::TestWithParam<std::pair<const char*, bool>> {};

TEST_P(NodeTestData, ImportAndEvaluateMatchStoredOutput) {
  run_case(GetParam().first, GetParam().second);
}

INSTANTIATE_TEST_SUITE_P(
    Onnx, NodeTestData,
    ::testing::Values(
        std::pair{"test_gemm_all_attributes", true}, std::pair{"test_gemm_alpha", true},
        std::pair{"test_gemm_beta", true}, std::pair{"test_gemm_default_matrix_bias", true},
        std::pair{"test_gemm_default_no_bias", true},
        std::pair{"test_gemm_default_scalar_bias", true},
        std::pair{"test_gemm_default_single_elem_vector_bias", true},
        std::pair{"test_gemm_default_vector_bias", true},
        std::pair{"test_gemm_default_zero_bias", true}, std::pair{"test_gemm_transposeA", true},
        std::pair{"test_gemm_transposeB", true}, std::pair{"test_matmul_2d", true},
        std::pair{"test_matmul_3d", false}, std::pair{"test_matmul_4d", false},
        std::pair{"test_relu", true}, std::pair{"test_add", true},
        std::pair{"test_add_bcast", true}, std::pair{"test_identity", true},
        std::pair{"test_dropout_default", true}, std::pair{"test_flatten_axis0", true},
        std::pair{"test_flatten_axis1", true}, std::pair{"test_flatten_axis2", true},
        std::pair{"test_flatten_axis3", true}, std::pair{"test_flatten_default_axis", true},
        std::pair{"test_flatten_negative_axis1", true},
        std::pair{"test_flatten_negative_axis4", true},
        std::pair{"test_reshape_extended_dims", true},
        std::pair{"test_reshape_negative_dim", true},
        std::pair{"test_reshape_negative_extended_dims", true},
        std::pair{"test_reshape_one_dim", true}, std::pair{"test_reshape_reduced_dims", true},
        std::pair{"test_reshape_reordered_all_dims", true},
        std::pair{"test_reshape_reordered_last_dims", true},
        std::pair{"test_reshape_zero_and_negative_dim", true},
        std::pair{"test_reshape_zero_dim", true},
        std::pair{"test_reshape_allowzero_reordered", true}),
    [](const ::testing::TestParamInfo<std::pair<const char*, bool>>& param) {
      return std::string(param.param.first).substr(5);
    });

}  // namespace
}  // namespace mlprt
