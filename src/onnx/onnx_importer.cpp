#include "onnx/onnx_importer.h"

#include <fcntl.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string_view>

#include "common/check.h"
#include "ir/shape_inference.h"
#include "mlprt/float16.h"
#include "onnx/onnx.pb.h"
#include "onnx/external_data.h"
#include "onnx/onnx_tensor.h"
#include "onnx/utf8_check.h"

namespace mlprt::onnx_import {
namespace {

struct OpArity {
  std::string_view op;
  size_t min_inputs, max_inputs, min_outputs, max_outputs;
};

constexpr size_t kMany = 1 << 20;

// Sorted by name: supported_ops_list() prints them in this order.
constexpr std::array<OpArity, 53> kSupportedOps = {{
    {"Abs", 1, 1, 1, 1},
    {"Add", 2, 2, 1, 1},
    {"BatchNormalization", 5, 5, 1, 1},
    {"Cast", 1, 1, 1, 1},
    {"Clip", 1, 3, 1, 1},
    {"Concat", 1, kMany, 1, 1},
    {"Constant", 0, 0, 1, 1},
    {"ConstantOfShape", 1, 1, 1, 1},
    {"Div", 2, 2, 1, 1},
    {"Dropout", 1, 3, 1, 2},
    {"Elu", 1, 1, 1, 1},
    {"Equal", 2, 2, 1, 1},
    {"Erf", 1, 1, 1, 1},
    {"Exp", 1, 1, 1, 1},
    {"Expand", 2, 2, 1, 1},
    {"Flatten", 1, 1, 1, 1},
    {"Gather", 2, 2, 1, 1},
    {"Gelu", 1, 1, 1, 1},
    {"Gemm", 2, 3, 1, 1},
    {"Greater", 2, 2, 1, 1},
    {"GreaterOrEqual", 2, 2, 1, 1},
    {"HardSigmoid", 1, 1, 1, 1},
    {"HardSwish", 1, 1, 1, 1},
    {"Identity", 1, 1, 1, 1},
    {"LayerNormalization", 2, 3, 1, 3},
    {"LeakyRelu", 1, 1, 1, 1},
    {"Less", 2, 2, 1, 1},
    {"LessOrEqual", 2, 2, 1, 1},
    {"Log", 1, 1, 1, 1},
    {"LogSoftmax", 1, 1, 1, 1},
    {"MatMul", 2, 2, 1, 1},
    {"Mul", 2, 2, 1, 1},
    {"Neg", 1, 1, 1, 1},
    {"Pow", 2, 2, 1, 1},
    {"Range", 3, 3, 1, 1},
    {"Reciprocal", 1, 1, 1, 1},
    {"ReduceMean", 1, 2, 1, 1},
    {"Relu", 1, 1, 1, 1},
    {"Reshape", 1, 2, 1, 1},
    {"Selu", 1, 1, 1, 1},
    {"Shape", 1, 1, 1, 1},
    {"Sigmoid", 1, 1, 1, 1},
    {"Slice", 1, 5, 1, 1},
    {"Softmax", 1, 1, 1, 1},
    {"Softplus", 1, 1, 1, 1},
    {"Split", 1, 2, 1, kMany},
    {"Sqrt", 1, 1, 1, 1},
    {"Squeeze", 1, 2, 1, 1},
    {"Sub", 2, 2, 1, 1},
    {"Tanh", 1, 1, 1, 1},
    {"Transpose", 1, 1, 1, 1},
    {"Unsqueeze", 1, 2, 1, 1},
    {"Where", 3, 3, 1, 1},
}};

const OpArity* find_op(const std::string& op) {
  for (const OpArity& entry : kSupportedOps) {
    if (entry.op == op) return &entry;
  }
  return nullptr;
}

Result<ir::AttributeValue> convert_attribute(const onnx::AttributeProto& attr,
                                             const std::string& where) {
  using onnx::AttributeProto;
  switch (attr.type()) {
    case AttributeProto::FLOAT: return ir::AttributeValue(static_cast<double>(attr.f()));
    case AttributeProto::INT: return ir::AttributeValue(static_cast<int64_t>(attr.i()));
    case AttributeProto::STRING: return ir::AttributeValue(attr.s());
    case AttributeProto::FLOATS:
      return ir::AttributeValue(std::vector<double>(attr.floats().begin(), attr.floats().end()));
    case AttributeProto::INTS:
      return ir::AttributeValue(std::vector<int64_t>(attr.ints().begin(), attr.ints().end()));
    case AttributeProto::STRINGS:
      return ir::AttributeValue(
          std::vector<std::string>(attr.strings().begin(), attr.strings().end()));
    case AttributeProto::TENSOR: {
      MLPRT_ASSIGN_OR_RETURN(ir::Constant c,
                             convert_tensor(attr.t(), where + ": attribute '" + attr.name() + "'"));
      return ir::AttributeValue(std::move(c));
    }
    default:
      return make_error(StatusCode::kUnsupported, where, ": attribute '", attr.name(),
                        "' has type ", AttributeProto::AttributeType_Name(attr.type()),
                        "; supported: FLOAT, INT, STRING, FLOATS, INTS, STRINGS, TENSOR");
  }
}

class Importer {
 public:
  /// `folder`: where external data files are looked up; empty for models read from memory.
  Importer(std::string source, std::filesystem::path folder)
      : m_source(std::move(source)), m_folder(std::move(folder)) {}

  // Takes the initializers' bytes out of `model` as it converts them (see read_initializers).
  Result<ir::Graph> run(onnx::ModelProto& model) {
    MLPRT_RETURN_IF_ERROR(check_utf8(model, m_source));
    MLPRT_RETURN_IF_ERROR(read_header(model));
    MLPRT_RETURN_IF_ERROR(read_initializers(*model.mutable_graph()));
    const onnx::GraphProto& g = model.graph();
    MLPRT_RETURN_IF_ERROR(read_inputs(g));
    for (int i = 0; i < g.node_size(); ++i) {
      MLPRT_RETURN_IF_ERROR(read_node(g.node(i), static_cast<size_t>(i)));
    }
    MLPRT_RETURN_IF_ERROR(read_outputs(g));
    MLPRT_RETURN_IF_ERROR(check_node_inputs());
    MLPRT_RETURN_IF_ERROR(sort_nodes());
    MLPRT_RETURN_IF_ERROR(check_dropouts());
    MLPRT_RETURN_IF_ERROR(check_layer_norm_outputs());
    MLPRT_RETURN_IF_ERROR(check_ranks());
    fill_missing_output_shapes();
    MLPRT_RETURN_IF_ERROR(find_model_precision());
    return std::move(m_graph);
  }

 private:
  // "<source>: node 'fc1' (op 'Gemm', opset 13)"
  [[nodiscard]] std::string where(const std::string& node, const std::string& op) const {
    return m_source + ": node '" + node + "' (op '" + op + "', opset " +
           std::to_string(m_graph.opset) + ")";
  }
  [[nodiscard]] std::string where(const ir::Node& node) const {
    return where(node.name, node.op);
  }

  Status read_header(const onnx::ModelProto& model) {
    if (!model.has_graph()) {
      return make_error(StatusCode::kCorruptData, m_source,
                        ": not a valid ONNX model (it has no graph)");
    }
    std::optional<int64_t> opset;
    for (const onnx::OperatorSetIdProto& id : model.opset_import()) {
      if (id.domain().empty() || id.domain() == "ai.onnx") opset = id.version();
    }
    if (!opset) {
      return make_error(StatusCode::kCorruptData, m_source,
                        ": the model imports no opset for the default ONNX domain (\"\" or "
                        "\"ai.onnx\")");
    }
    m_graph.opset = *opset;
    m_graph.source = m_source;
    m_graph.name = model.graph().name();
    m_graph.ir_version = model.ir_version();
    m_graph.producer = model.producer_name();
    if (!model.producer_version().empty()) {
      m_graph.producer += (m_graph.producer.empty() ? "" : " ") + model.producer_version();
    }
    return Status::ok();
  }

  // Records who produces `tensor`; a second producer is an error naming both.
  Status add_producer(const std::string& tensor, const std::string& who) {
    auto [it, inserted] = m_producers.emplace(tensor, who);
    if (!inserted) {
      return make_error(StatusCode::kInvalidArgument, m_source, ": tensor '", tensor,
                        "' is produced twice: by ", it->second, " and by ", who,
                        "; tensor names must be unique");
    }
    return Status::ok();
  }

  // Each initializer's bytes are released from the proto once converted, so that the proto
  // and the graph do not both hold every weight (the import's peak was twice the weights).
  Status read_initializers(onnx::GraphProto& g) {
    for (onnx::TensorProto& t : *g.mutable_initializer()) {
      const std::string what = m_source + ": initializer '" + t.name() + "'";
      if (t.name().empty()) {
        return make_error(StatusCode::kCorruptData, m_source, ": an initializer has no name");
      }
      MLPRT_RETURN_IF_ERROR(add_producer(t.name(), "initializer '" + t.name() + "'"));
      if (t.data_location() == onnx::TensorProto_DataLocation_EXTERNAL) {
        MLPRT_ASSIGN_OR_RETURN(onnx::TensorProto loaded, load_external(t, what, m_folder));
        MLPRT_ASSIGN_OR_RETURN(ir::Constant c, convert_tensor(loaded, what));
        m_graph.constants.emplace(t.name(), std::move(c));
        continue;
      }
      MLPRT_ASSIGN_OR_RETURN(ir::Constant c, convert_tensor(t, what));
      m_graph.constants.emplace(t.name(), std::move(c));
      std::string().swap(*t.mutable_raw_data());
      google::protobuf::RepeatedField<float>().Swap(t.mutable_float_data());
    }
    if (g.sparse_initializer_size() > 0) {
      return make_error(StatusCode::kUnsupported, m_source, ": sparse initializer '",
                        g.sparse_initializer(0).values().name(), "' is not supported");
    }
    return Status::ok();
  }

  // A model whose float tensors are float16 (or bfloat16) is strongly typed: the builder runs
  // its layers in that type. Mixing the two narrow types has no single meaning here.
  Status find_model_precision() {
    std::set<DataType> narrow;
    for (const auto* list : {&m_graph.inputs, &m_graph.outputs}) {
      for (const ir::TensorInfo& t : *list) {
        if (t.dtype != DataType::kFloat32) narrow.insert(t.dtype);
      }
    }
    for (const auto& [name, c] : m_graph.constants) {
      if (c.dtype == DataType::kFloat16 || c.dtype == DataType::kBFloat16) narrow.insert(c.dtype);
    }
    if (narrow.size() > 1) {
      return make_error(StatusCode::kUnsupported, m_source,
                        ": the model mixes float16 and bfloat16 tensors; a strongly typed model "
                        "may use one of them (with float32)");
    }
    if (!narrow.empty()) m_graph.model_precision = *narrow.begin();
    return Status::ok();
  }

  Result<ir::TensorInfo> convert_io(const onnx::ValueInfoProto& v, const std::string& kind,
                                    bool require_shape) const {
    const std::string what = m_source + ": graph " + kind + " '" + v.name() + "'";
    if (!v.type().has_tensor_type()) {
      return make_error(StatusCode::kUnsupported, what,
                        " is not a tensor; only tensor inputs and outputs are supported");
    }
    const onnx::TypeProto_Tensor& tt = v.type().tensor_type();
    Result<DataType> dtype = convert_dtype(tt.elem_type(), what);
    if (!dtype.is_ok() || !is_io_float_type(*dtype)) {
      return make_error(StatusCode::kUnsupported, what, " has data type ",
                        onnx_dtype_name(tt.elem_type()),
                        "; graph inputs and outputs may be FLOAT, FLOAT16 or BFLOAT16");
    }
    ir::TensorInfo info;
    info.name = v.name();
    info.dtype = *dtype;
    if (!tt.has_shape()) {
      if (require_shape) {
        return make_error(StatusCode::kInvalidArgument, what,
                          " has no shape; re-export the model with input shapes (dynamic "
                          "dimensions may be named, e.g. 'batch')");
      }
      m_outputs_without_shape.insert(v.name());
      return info;
    }
    for (const onnx::TensorShapeProto_Dimension& d : tt.shape().dim()) {
      if (d.has_dim_value()) {
        if (d.dim_value() < 0) {
          return make_error(StatusCode::kCorruptData, what, " has a negative dimension ",
                            d.dim_value());
        }
        info.shape.push_back(ir::Dim{d.dim_value(), {}});
      } else if (d.has_dim_param()) {
        info.shape.push_back(ir::Dim{-1, d.dim_param()});
      } else {
        info.shape.push_back(ir::Dim{-1, {}});
      }
    }
    return info;
  }

  Status read_inputs(const onnx::GraphProto& g) {
    for (const onnx::ValueInfoProto& v : g.input()) {
      // Older exporters list initializers as graph inputs too; those are not runtime inputs.
      if (m_graph.is_constant(v.name())) continue;
      MLPRT_ASSIGN_OR_RETURN(ir::TensorInfo info, convert_io(v, "input", true));
      MLPRT_RETURN_IF_ERROR(add_producer(v.name(), "graph input '" + v.name() + "'"));
      m_graph.inputs.push_back(std::move(info));
    }
    return Status::ok();
  }

  Status read_outputs(const onnx::GraphProto& g) {
    for (const onnx::ValueInfoProto& v : g.output()) {
      MLPRT_ASSIGN_OR_RETURN(ir::TensorInfo info, convert_io(v, "output", false));
      if (!m_producers.count(v.name())) {
        return make_error(StatusCode::kInvalidArgument, m_source, ": graph output '", v.name(),
                          "' is produced by no node, graph input or initializer");
      }
      m_graph.outputs.push_back(std::move(info));
    }
    if (m_graph.outputs.empty()) {
      return make_error(StatusCode::kInvalidArgument, m_source, ": the graph has no outputs");
    }
    return Status::ok();
  }

  std::string unique_node_name(const std::string& wanted) {
    std::string name = wanted;
    for (int k = 1; m_node_names.count(name); ++k) name = wanted + "_" + std::to_string(k);
    m_node_names.insert(name);
    return name;
  }

  Status read_node(const onnx::NodeProto& proto, size_t index) {
    const std::string name =
        unique_node_name(proto.name().empty() ? proto.op_type() + "_" + std::to_string(index)
                                              : proto.name());
    if (!proto.domain().empty() && proto.domain() != "ai.onnx") {
      return make_error(StatusCode::kUnsupported, m_source, ": node '", name, "' (op '",
                        proto.op_type(), "', domain '", proto.domain(),
                        "'): unsupported domain; only the default ONNX domain is supported, "
                        "with ops: ",
                        supported_ops_list());
    }
    const OpArity* arity = find_op(proto.op_type());
    if (!arity) {
      return make_error(StatusCode::kUnsupported, where(name, proto.op_type()),
                        ": unsupported op; supported ops: ", supported_ops_list());
    }
    ir::Node node;
    node.name = name;
    node.op = proto.op_type();
    node.inputs.assign(proto.input().begin(), proto.input().end());
    while (!node.inputs.empty() && node.inputs.back().empty()) node.inputs.pop_back();
    node.outputs.assign(proto.output().begin(), proto.output().end());
    while (!node.outputs.empty() && node.outputs.back().empty()) node.outputs.pop_back();
    for (const onnx::AttributeProto& a : proto.attribute()) {
      MLPRT_ASSIGN_OR_RETURN(node.attributes[a.name()], convert_attribute(a, where(node)));
    }
    if (node.op == "Reshape" && node.inputs.size() == 1 && !node.has_attribute("shape")) {
      return make_error(StatusCode::kInvalidArgument, where(node),
                        ": has no target shape (neither a 'shape' input nor, before opset 5, "
                        "a 'shape' attribute)");
    }
    if (node.op == "Reshape" && m_graph.opset < 14) node.attributes.erase("allowzero");
    if (node.op == "Softmax" || node.op == "LogSoftmax") normalize_softmax(node);
    if (node.inputs.size() < arity->min_inputs || node.inputs.size() > arity->max_inputs ||
        node.outputs.size() < arity->min_outputs || node.outputs.size() > arity->max_outputs) {
      return make_error(StatusCode::kInvalidArgument, where(node), ": has ", node.inputs.size(),
                        " inputs and ", node.outputs.size(), " outputs; ", node.op, " takes ",
                        arity->min_inputs, "..", arity->max_inputs, " inputs and ",
                        arity->min_outputs, "..", arity->max_outputs, " outputs");
    }
    for (const std::string& out : node.outputs) {
      if (out.empty()) continue;
      MLPRT_RETURN_IF_ERROR(add_producer(out, "node '" + node.name + "'"));
    }
    if (node.op == "Constant") return read_constant_node(node);
    m_graph.nodes.push_back(std::move(node));
    return Status::ok();
  }

  // Softmax / LogSoftmax -> our Softmax with explicit semantics: before opset 13 the input is
  // coerced to 2-D at `axis` (default 1) and normalized over all dims from it; from 13 on over
  // the single `axis` (default -1).
  void normalize_softmax(ir::Node& node) const {
    const bool legacy = m_graph.opset < 13;
    node.attributes["axis"] = node.get_int("axis", legacy ? 1 : -1);
    node.attributes["coerce_2d"] = int64_t{legacy ? 1 : 0};
    node.attributes["log"] = int64_t{node.op == "LogSoftmax" ? 1 : 0};
    node.op = "Softmax";
  }

  Status read_constant_node(const ir::Node& node) {
    if (node.attributes.size() != 1) {
      return make_error(StatusCode::kInvalidArgument, where(node), ": has ",
                        node.attributes.size(),
                        " attributes; exactly one of value, value_float, value_floats, "
                        "value_int, value_ints is expected");
    }
    const auto& [key, value] = *node.attributes.begin();
    ir::Constant c;
    if (key == "value" && std::holds_alternative<ir::Constant>(value)) {
      c = std::get<ir::Constant>(value);
    } else if (key == "value_float" && std::holds_alternative<double>(value)) {
      c = ir::Constant::from_floats({}, {static_cast<float>(std::get<double>(value))});
    } else if (key == "value_floats" && std::holds_alternative<std::vector<double>>(value)) {
      const auto& v = std::get<std::vector<double>>(value);
      c = ir::Constant::from_floats({static_cast<int64_t>(v.size())},
                                    std::vector<float>(v.begin(), v.end()));
    } else if (key == "value_int" && std::holds_alternative<int64_t>(value)) {
      c = ir::Constant::from_int64s({}, {std::get<int64_t>(value)});
    } else if (key == "value_ints" && std::holds_alternative<std::vector<int64_t>>(value)) {
      const auto& v = std::get<std::vector<int64_t>>(value);
      c = ir::Constant::from_int64s({static_cast<int64_t>(v.size())}, v);
    } else {
      return make_error(StatusCode::kUnsupported, where(node), ": attribute '", key,
                        "' is not supported; supported: value (tensor), value_float, "
                        "value_floats, value_int, value_ints");
    }
    m_graph.constants.emplace(node.outputs[0], std::move(c));
    return Status::ok();
  }

  Status check_node_inputs() const {
    for (const ir::Node& node : m_graph.nodes) {
      for (const std::string& in : node.inputs) {
        if (!in.empty() && !m_producers.count(in)) {
          return make_error(StatusCode::kInvalidArgument, where(node), ": input '", in,
                            "' is produced by no node, graph input or initializer");
        }
      }
    }
    return Status::ok();
  }

  // Kahn's algorithm; among ready nodes the file order is kept, so sorted files stay as they are.
  Status sort_nodes() {
    std::map<std::string, size_t> producer;
    for (size_t i = 0; i < m_graph.nodes.size(); ++i) {
      for (const std::string& out : m_graph.nodes[i].outputs) producer[out] = i;
    }
    const size_t n = m_graph.nodes.size();
    std::vector<size_t> pending(n, 0);
    std::vector<std::vector<size_t>> readers(n);
    for (size_t i = 0; i < n; ++i) {
      for (const std::string& in : m_graph.nodes[i].inputs) {
        auto it = producer.find(in);
        if (it == producer.end()) continue;
        ++pending[i];
        readers[it->second].push_back(i);
      }
    }
    std::set<size_t> ready;
    for (size_t i = 0; i < n; ++i) {
      if (pending[i] == 0) ready.insert(i);
    }
    std::vector<size_t> order;
    while (!ready.empty()) {
      const size_t i = *ready.begin();
      ready.erase(ready.begin());
      order.push_back(i);
      for (size_t r : readers[i]) {
        if (--pending[r] == 0) ready.insert(r);
      }
    }
    if (order.size() != n) {
      std::string stuck;
      for (size_t i = 0; i < n; ++i) {
        if (pending[i] == 0) continue;
        stuck += (stuck.empty() ? "'" : ", '") + m_graph.nodes[i].name + "'";
      }
      return make_error(StatusCode::kInvalidArgument, m_source,
                        ": the graph has a cycle; these nodes wait on each other: ", stuck);
    }
    std::vector<ir::Node> sorted;
    sorted.reserve(n);
    for (size_t i : order) sorted.push_back(std::move(m_graph.nodes[i]));
    m_graph.nodes = std::move(sorted);
    return Status::ok();
  }

  [[nodiscard]] bool is_read(const std::string& tensor) const {
    return m_graph.use_count(tensor) != 0;
  }

  Status check_dropouts() const {
    for (const ir::Node& node : m_graph.nodes) {
      if (node.op != "Dropout") continue;
      if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
        const ir::Constant* mode = m_graph.find_constant(node.inputs[2]);
        bool is_false = mode != nullptr;
        if (mode) {
          for (double v : mode->to_doubles()) is_false = is_false && v == 0.0;
        }
        if (!is_false) {
          return make_error(StatusCode::kUnsupported, where(node), ": training_mode '",
                            node.inputs[2],
                            "' is not a constant false; only inference-mode Dropout is "
                            "supported");
        }
      }
      if (node.outputs.size() > 1 && !node.outputs[1].empty() && is_read(node.outputs[1])) {
        return make_error(StatusCode::kUnsupported, where(node), ": its mask output '",
                          node.outputs[1], "' is used; only the data output is supported");
      }
    }
    return Status::ok();
  }

  // LayerNormalization's Mean and InvStdDev outputs (training helpers) must be unused.
  Status check_layer_norm_outputs() const {
    for (const ir::Node& node : m_graph.nodes) {
      if (node.op != "LayerNormalization") continue;
      for (size_t i = 1; i < node.outputs.size(); ++i) {
        const std::string& out = node.outputs[i];
        if (out.empty()) continue;
        const bool graph_output =
            std::any_of(m_graph.outputs.begin(), m_graph.outputs.end(),
                        [&](const ir::TensorInfo& t) { return t.name == out; });
        if (is_read(out) || graph_output) {
          return make_error(StatusCode::kUnsupported, where(node), ": its ",
                            i == 1 ? "Mean" : "InvStdDev", " output '", out, "' is ",
                            graph_output ? "a graph output" : "used",
                            "; only the normalized output Y is supported");
        }
      }
    }
    return Status::ok();
  }

  Status rank_error(const ir::Node& node, size_t input, size_t rank,
                    const std::string& allowed) const {
    const ir::Constant* c = m_graph.find_constant(node.inputs[input]);
    return make_error(StatusCode::kInvalidArgument, where(node), ": input ", input, " ('",
                      node.inputs[input], "') has rank ", rank,
                      c ? " (shape " + to_string(c->dims) + ")" : std::string(), "; ", node.op,
                      " needs ", allowed);
  }

  static bool is_rank_preserving(const std::string& op) {
    static const std::set<std::string, std::less<>> kOps = {
        "Relu", "Identity", "Dropout", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "Selu",
        "HardSigmoid", "HardSwish", "Softplus", "Gelu", "Erf", "Sqrt", "Clip", "Softmax",
        "LayerNormalization", "BatchNormalization", "Cast", "Exp", "Log", "Neg", "Abs",
        "Reciprocal", "Split"};
    return kOps.count(op) != 0;
  }

  // Rank-level checks (all that is known before the caller picks shapes).
  Status check_ranks() const {
    std::map<std::string, size_t> rank;
    for (const ir::TensorInfo& in : m_graph.inputs) rank[in.name] = in.shape.size();
    for (const auto& [name, c] : m_graph.constants) rank[name] = c.dims.size();
    auto rank_of = [&](const ir::Node& node, size_t i) -> std::optional<size_t> {
      if (i >= node.inputs.size() || node.inputs[i].empty()) return std::nullopt;
      auto it = rank.find(node.inputs[i]);
      return it == rank.end() ? std::nullopt : std::optional<size_t>(it->second);
    };
    for (const ir::Node& node : m_graph.nodes) {
      std::optional<size_t> out;
      const auto r0 = rank_of(node, 0);
      const auto r1 = rank_of(node, 1);
      if (node.op == "Gemm") {
        for (size_t i = 0; i < 2; ++i) {
          const auto r = rank_of(node, i);
          if (r && *r != 2) return rank_error(node, i, *r, "2-D inputs A and B");
        }
        const auto r2 = rank_of(node, 2);
        if (r2 && *r2 > 2) return rank_error(node, 2, *r2, "C of rank 0, 1 or 2");
        out = 2;
      } else if (node.op == "MatMul") {
        if (r0 && *r0 == 0) return rank_error(node, 0, 0, "inputs of rank >= 1");
        if (r1 && *r1 == 0) return rank_error(node, 1, 0, "inputs of rank >= 1");
        if (r0 && r1) out = ir::matmul_output_rank(*r0, *r1);
      } else if (node.op == "Add") {
        if (r0 && r1) out = std::max(*r0, *r1);
      } else if (node.op == "Flatten") {
        const int64_t axis = node.get_int("axis", 1);
        if (r0) {
          const auto r = static_cast<int64_t>(*r0);
          if (axis < -r || axis > r) {
            return make_error(StatusCode::kInvalidArgument, where(node), ": axis ", axis,
                              " is out of range for input '", node.inputs[0], "' of rank ", r,
                              "; allowed: ", -r, "..", r);
          }
        }
        out = 2;
      } else if (node.op == "Reshape") {
        if (node.has_attribute("shape")) {
          out = node.get_ints("shape").size();
        } else if (const ir::Constant* c = m_graph.find_constant(node.inputs[1])) {
          if (c->dims.size() != 1) return rank_error(node, 1, c->dims.size(), "a 1-D shape");
          out = static_cast<size_t>(c->num_elements());
        }
      } else if (node.op == "Sub" || node.op == "Mul" || node.op == "Div" || node.op == "Pow") {
        if (r0 && r1) out = std::max(*r0, *r1);
      } else if (is_rank_preserving(node.op)) {
        out = r0;
      }
      if (out) {
        for (const std::string& o : node.outputs) rank[o] = *out;
      }
    }
    return Status::ok();
  }

  // Outputs declared without a shape get one from shape inference: each dynamic input dim is
  // set to two different sizes, and output dims that follow them are marked dynamic.
  void fill_missing_output_shapes() {
    if (m_outputs_without_shape.empty()) return;
    std::array<ir::ShapeMap, 2> trials;
    for (size_t t = 0; t < trials.size(); ++t) {
      for (const ir::TensorInfo& in : m_graph.inputs) {
        Dims dims = ir::to_dims(in.shape);
        for (int64_t& d : dims) d = d < 0 ? static_cast<int64_t>(2 + t) : d;
        trials[t][in.name] = dims;
      }
    }
    auto a = ir::infer_shapes(m_graph, trials[0]);
    auto b = ir::infer_shapes(m_graph, trials[1]);
    if (!a.is_ok() || !b.is_ok()) return;  // the builder reports the problem with real shapes
    for (ir::TensorInfo& out : m_graph.outputs) {
      if (!m_outputs_without_shape.count(out.name)) continue;
      const Dims& da = a->at(out.name);
      const Dims& db = b->at(out.name);
      out.shape.clear();
      for (size_t i = 0; i < da.size(); ++i) {
        out.shape.push_back(da[i] == db[i] ? ir::Dim{da[i], {}} : ir::Dim{-1, {}});
      }
    }
  }

  std::string m_source;
  std::filesystem::path m_folder;
  ir::Graph m_graph;
  std::map<std::string, std::string> m_producers;  // tensor -> who produces it, for messages
  std::set<std::string> m_node_names;
  mutable std::set<std::string> m_outputs_without_shape;
};

}  // namespace

std::string supported_ops_list() {
  std::string out;
  for (const OpArity& entry : kSupportedOps) {
    if (!out.empty()) out += ", ";
    out += entry.op;
  }
  return out;
}

namespace {

Status parse_model(std::span<const uint8_t> bytes, const std::string& source_name,
                   onnx::ModelProto& model) {
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    return make_error(StatusCode::kUnsupported, source_name, ": the model is ", bytes.size(),
                      " bytes; protobuf reads at most 2 GiB (use external data)");
  }
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return make_error(StatusCode::kCorruptData, source_name,
                      ": not a valid ONNX model (protobuf parse failed)");
  }
  return Status::ok();
}

Result<ir::Graph> import_parsed(onnx::ModelProto& model, const std::string& source_name,
                                const std::filesystem::path& folder) {
  try {
    return Importer(source_name, folder).run(model);
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kInternal, source_name, ": out of memory while importing");
  } catch (const std::exception& e) {
    return make_error(StatusCode::kInternal, source_name, ": import failed: ", e.what());
  }
}

}  // namespace

Result<ir::Graph> import_onnx_bytes(std::span<const uint8_t> bytes,
                                    const std::string& source_name) {
  onnx::ModelProto model;
  try {
    MLPRT_RETURN_IF_ERROR(parse_model(bytes, source_name, model));
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kInternal, source_name, ": out of memory while importing");
  }
  return import_parsed(model, source_name, {});
}

Result<ir::Graph> import_onnx_file(const std::filesystem::path& path) {
  const std::string source = path.string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return make_error(StatusCode::kNotFound, source, ": no such file");
  }
  if (std::filesystem::is_directory(path, ec)) {
    return make_error(StatusCode::kInvalidArgument, source,
                      ": is a directory, not an ONNX model file");
  }
  // Parsed straight from the file (no copy of its bytes), then each initializer's bytes are
  // released as they are converted: the import holds the weights about once, not three times.
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > static_cast<std::uintmax_t>(INT_MAX)) {
    return make_error(StatusCode::kUnsupported, source, ": the model is ", size,
                      " bytes; protobuf reads at most 2 GiB (use external data)");
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(StatusCode::kIoError, source, ": cannot open the file for reading");
  onnx::ModelProto model;
  bool parsed = false;
  int read_errno = 0;
  try {
    google::protobuf::io::FileInputStream in(fd, 1 << 20);
    parsed = model.ParseFromZeroCopyStream(&in);
    read_errno = in.GetErrno();
  } catch (const std::bad_alloc&) {
    ::close(fd);
    return make_error(StatusCode::kInternal, source, ": out of memory while importing");
  }
  ::close(fd);
  if (read_errno != 0) {
    return make_error(StatusCode::kIoError, source,
                      ": cannot read the file: ", std::strerror(read_errno));
  }
  if (!parsed) {
    return make_error(StatusCode::kCorruptData, source,
                      ": not a valid ONNX model (protobuf parse failed)");
  }
  const std::filesystem::path folder = path.parent_path().empty() ? "." : path.parent_path();
  Result<ir::Graph> graph = import_parsed(model, source, folder);
  return graph;
}

}  // namespace mlprt::onnx_import
