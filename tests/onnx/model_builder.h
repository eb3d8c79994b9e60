#pragma once
// Builds small ONNX models in memory for the tests, with the generated protobuf classes.

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "onnx/onnx.pb.h"

namespace mlprt::test {

/// Deterministic values in [-1, 1).
inline std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline size_t count_of(const std::vector<int64_t>& dims) {
  size_t n = 1;
  for (int64_t d : dims) n *= static_cast<size_t>(d);
  return n;
}

class ModelBuilder {
 public:
  explicit ModelBuilder(int64_t opset = 13) {
    m_model.set_ir_version(8);
    m_model.set_producer_name("mlprt-test");
    m_model.set_producer_version("1.0");
    auto* id = m_model.add_opset_import();
    id->set_domain("");
    id->set_version(opset);
    m_model.mutable_graph()->set_name("test_graph");
  }

  onnx::ModelProto& model() { return m_model; }
  onnx::GraphProto& graph() { return *m_model.mutable_graph(); }

  /// dims: -1 becomes the symbolic dim "batch", -2 a dim with neither value nor name.
  onnx::ValueInfoProto& input(const std::string& name, const std::vector<int64_t>& dims,
                              int32_t elem_type = onnx::TensorProto_DataType_FLOAT) {
    return fill(*graph().add_input(), name, dims, elem_type);
  }
  onnx::ValueInfoProto& output(const std::string& name, const std::vector<int64_t>& dims,
                               int32_t elem_type = onnx::TensorProto_DataType_FLOAT) {
    return fill(*graph().add_output(), name, dims, elem_type);
  }

  onnx::TensorProto& initializer(const std::string& name, const std::vector<int64_t>& dims,
                                 const std::vector<float>& values, bool raw = true) {
    onnx::TensorProto& t = *graph().add_initializer();
    t.set_name(name);
    t.set_data_type(onnx::TensorProto_DataType_FLOAT);
    for (int64_t d : dims) t.add_dims(d);
    if (raw) {
      t.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()),
                                 values.size() * sizeof(float)));
    } else {
      for (float v : values) t.add_float_data(v);
    }
    return t;
  }
  /// Random float32 initializer; returns its values.
  std::vector<float> random_initializer(const std::string& name, const std::vector<int64_t>& dims,
                                        uint32_t seed) {
    std::vector<float> v = random_values(count_of(dims), seed);
    initializer(name, dims, v);
    return v;
  }
  onnx::TensorProto& int64_initializer(const std::string& name, const std::vector<int64_t>& dims,
                                       const std::vector<int64_t>& values) {
    onnx::TensorProto& t = *graph().add_initializer();
    t.set_name(name);
    t.set_data_type(onnx::TensorProto_DataType_INT64);
    for (int64_t d : dims) t.add_dims(d);
    for (int64_t v : values) t.add_int64_data(v);
    return t;
  }

  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs, const std::string& name = "") {
    onnx::NodeProto& n = *graph().add_node();
    n.set_op_type(op);
    if (!name.empty()) n.set_name(name);
    for (const auto& i : inputs) n.add_input(i);
    for (const auto& o : outputs) n.add_output(o);
    return n;
  }

  static void attr_int(onnx::NodeProto& n, const std::string& name, int64_t v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr_float(onnx::NodeProto& n, const std::string& name, float v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void attr_ints(onnx::NodeProto& n, const std::string& name,
                        const std::vector<int64_t>& v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }

  [[nodiscard]] std::vector<uint8_t> bytes() const {
    std::string s = m_model.SerializeAsString();
    return {s.begin(), s.end()};
  }

 private:
  static onnx::ValueInfoProto& fill(onnx::ValueInfoProto& v, const std::string& name,
                                    const std::vector<int64_t>& dims, int32_t elem_type) {
    v.set_name(name);
    auto* tt = v.mutable_type()->mutable_tensor_type();
    tt->set_elem_type(elem_type);
    auto* shape = tt->mutable_shape();
    for (int64_t d : dims) {
      auto* dim = shape->add_dim();
      if (d >= 0) dim->set_dim_value(d);
      else if (d == -1) dim->set_dim_param("batch");
    }
    return v;
  }

  onnx::ModelProto m_model;
};

}  // namespace mlprt::test
