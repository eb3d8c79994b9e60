#include "backends/cpu/cpu_executable.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <mutex>
#include <new>
#include <set>

#include "common/check.h"
#include "ir/passes/passes.h"
#include "mlprt/float16.h"

namespace mlprt::backend::cpu {
namespace {

bool is_view(const std::string& op) {
  return op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze";
}

// The bf16 handoffs (cpu_dense.h DenseHandoff), by Dense node name: a Dense output that is no
// graph output and is read only as the X of other Dense layers, where the producer (without a
// residual) and every reader run in bf16 only, travels in bf16.
std::map<std::string, DenseHandoff> plan_bf16_handoffs(
    const ir::Graph& graph, const std::map<std::string, std::vector<DenseTactic>>& tactics) {
  auto bf16_only = [&](const ir::Node& node) {
    if (node.op != "Dense") return false;
    auto it = tactics.find(node.name);
    Result<DenseSpec> spec = dense_spec(graph, node, false);
    return it != tactics.end() && spec.is_ok() && tactics_allow_handoff(*spec, it->second);
  };
  std::set<std::string> outputs;
  for (const ir::TensorInfo& output : graph.outputs) outputs.insert(output.name);
  std::map<std::string, DenseHandoff> out;
  for (const ir::Node& producer : graph.nodes) {
    if (!bf16_only(producer) || ir::has_residual(producer) || producer.outputs.size() != 1 ||
        outputs.count(producer.outputs[0])) {
      continue;
    }
    const std::string& tensor = producer.outputs[0];
    std::vector<const ir::Node*> readers;
    bool all_dense_x = true;
    for (const ir::Node& node : graph.nodes) {
      const auto uses = std::count(node.inputs.begin(), node.inputs.end(), tensor);
      if (uses == 0) continue;
      if (uses != 1 || node.inputs[0] != tensor || !bf16_only(node) ||
          node.get_int("transpose_x", 0) != 0) {
        all_dense_x = false;
        break;
      }
      readers.push_back(&node);
    }
    if (!all_dense_x || readers.empty()) continue;
    out[producer.name].dst_bf16 = true;
    for (const ir::Node* reader : readers) out[reader->name].src_bf16 = true;
  }
  return out;
}

std::vector<float> floats_of(const ir::Graph& graph, const ir::Node& node, size_t i) {
  if (i >= node.inputs.size() || node.inputs[i].empty()) return {};
  const ir::Constant* c = graph.find_constant(node.inputs[i]);
  if (c == nullptr) return {};
  // A plan's metadata only (inspect): the constant's size, values unknown.
  if (c->data.empty()) return std::vector<float>(static_cast<size_t>(c->num_elements()));
  const std::vector<double> v = c->to_doubles();
  return std::vector<float>(v.begin(), v.end());
}

// Kind and load-time parameters of the non-Dense, non-view layers.
Result<LayerKind> layer_params(const ir::Graph& graph, const ir::Node& node, LayerParams& p) {
  if (node.op == "Add" || node.op == "Binary") {
    const std::string kind = node.op == "Add" ? "add" : node.get_string("kind", "");
    static const std::map<std::string, BinaryKind> kKinds = {{"add", BinaryKind::kAdd},
                                                             {"sub", BinaryKind::kSub},
                                                             {"mul", BinaryKind::kMul},
                                                             {"div", BinaryKind::kDiv},
                                                             {"pow", BinaryKind::kPow}};
    auto it = kKinds.find(kind);
    if (it == kKinds.end()) {
      return make_error(StatusCode::kUnsupported, "cpu backend: ", describe(node),
                        ": binary kind '", kind, "'; supported: add, sub, mul, div, pow");
    }
    p.binary = it->second;
    return LayerKind::kAdd;
  }
  if (node.op == "Activation") {
    const auto spec = ir::activation_of(node);
    if (!spec) {
      return make_error(StatusCode::kUnsupported, "cpu backend: ", describe(node),
                        ": activation kind '", node.get_string("kind", ""),
                        "'; supported: ", ir::kActivationKinds);
    }
    p.activation = *spec;
    return LayerKind::kActivation;
  }
  if (node.op == "Softmax") {
    p.axis = node.get_int("axis", -1);
    p.log = node.get_int("log", 0) != 0;
    p.coerce_2d = node.get_int("coerce_2d", 0) != 0;
    return LayerKind::kSoftmax;
  }
  if (node.op == "LayerNorm" || node.op == "ScaleShift") {
    const bool ln = node.op == "LayerNorm";
    p.axis = node.get_int("axis", ln ? -1 : 1);
    p.epsilon = node.get_float("epsilon", 1e-5);
    p.scale = floats_of(graph, node, 1);
    p.shift = floats_of(graph, node, 2);
    if (!ln && (p.scale.empty() || p.scale.size() != p.shift.size())) {
      return make_error(StatusCode::kInvalidArgument, "cpu backend: ", describe(node),
                        ": scale and shift must be constants of the same size");
    }
    return ln ? LayerKind::kLayerNorm : LayerKind::kScaleShift;
  }
  if (node.op == "Transpose" || node.op == "Slice") return LayerKind::kCopy;
  if (node.op == "ReduceMean") return LayerKind::kReduceMean;
  if (node.op == "MatMul") {
    const auto act = ir::parse_activation(node.get_string("activation", "none"));
    if (!act) {
      return make_error(StatusCode::kUnsupported, "cpu backend: ", describe(node),
                        ": activation '", node.get_string("activation", ""),
                        "'; supported: ", ir::kActivationKinds);
    }
    p.activation = ir::ActivationSpec{*act, node.get_float("alpha", 0.0),
                                      node.get_float("beta", 0.0)};
    p.shift = floats_of(graph, node, 2);
    return LayerKind::kMatMul;
  }
  return make_error(StatusCode::kUnsupported, "cpu backend: ", describe(node),
                    ": op not implemented; supported: Dense, Add, Binary, Relu, Activation, "
                    "Softmax, LayerNorm, ScaleShift, Reshape, Flatten, Squeeze, Unsqueeze, "
                    "Transpose, Slice, ReduceMean, MatMul");
}

constexpr TensorTableRules kTensorRules = {
    .backend = "cpu backend",
    .unknown_input_code = StatusCode::kInvalidArgument,
    .unknown_input = "is produced by no earlier node, graph input or constant",
    .duplicate_output = "is already produced by another node or input",
    .bad_output_code = StatusCode::kInvalidArgument,
    .bad_output = "is listed twice",
    .output_may_be_input = true};

}  // namespace

CpuExecutable::CpuExecutable() : m_tensors(kTensorRules) {}

Status CpuExecutable::load_constant(const ir::Node& user, const std::string& name,
                                    const ir::Constant& constant, size_t id) {
  if (constant.dtype != DataType::kFloat32) {
    return make_error(StatusCode::kUnsupported, "cpu backend: ", describe(user), ": constant '",
                      name, "' is ", to_string(constant.dtype), "; only float32 is supported");
  }
  if (m_constants.size() <= id) m_constants.resize(id + 1);
  std::vector<float>& copy = m_constants[id];
  copy.resize(constant.data.size() / sizeof(float));
  if (!copy.empty()) std::memcpy(copy.data(), constant.data.data(), copy.size() * sizeof(float));
  return Status::ok();
}

Result<std::unique_ptr<CpuExecutable>> CpuExecutable::create(
    const ir::Graph& graph, const std::map<std::string, std::vector<DenseTactic>>& tactics,
    int threads, std::vector<int64_t> chain_rows, bool describe_only,
    std::vector<int64_t> amx_rows) {
  // oneDNN sizes a fixed-shape primitive's parallel work for the creating thread's OpenMP
  // count: create them for the plan's.
  const int caller_threads = omp_get_max_threads();
  if (threads > 0) omp_set_num_threads(threads);
  Result<std::unique_ptr<CpuExecutable>> exe = create_impl(graph, tactics, describe_only);
  if (threads > 0) omp_set_num_threads(caller_threads);
  if (exe.is_ok()) {
    (*exe)->m_threads = threads;
    (*exe)->m_chain_rows = std::move(chain_rows);
    (*exe)->m_describe_only = describe_only;
    if (!amx_rows.empty()) {
      Status status = (*exe)->make_amx(graph, describe_only);
      if (!status) return status;
      (*exe)->m_amx_rows = std::move(amx_rows);
    }
    if (!describe_only) warm_up_gemm_kernels();
  }
  return exe;
}

// oneDNN's runtime-M matmul (gemm:jit) generates its f32 gemm kernels on the first call in the
// process, about 25 ms: a first inference then took 1000x a warm one. One tiny sgemm at load
// generates them; it runs once per process.
void CpuExecutable::warm_up_gemm_kernels() {
  static std::once_flag once;
  std::call_once(once, [] {
    const float a[4] = {1, 1, 1, 1};
    const float b[4] = {1, 1, 1, 1};
    float c[4] = {};
    (void)dnnl_sgemm('N', 'N', 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2);
  });
}

Result<std::unique_ptr<CpuExecutable>> CpuExecutable::create_impl(
    const ir::Graph& graph, const std::map<std::string, std::vector<DenseTactic>>& tactics,
    bool describe_only) {
  std::unique_ptr<CpuExecutable> exe(new CpuExecutable());
  try {
    exe->m_engine = dnnl::engine(dnnl::engine::kind::cpu, 0);
  } catch (const dnnl::error& e) {
    return make_error(StatusCode::kInternal,
                      "cpu backend: cannot create the oneDNN cpu engine: ", e.what());
  }
  const TensorTable::LoadConstant load = std::bind_front(&CpuExecutable::load_constant, exe.get());
  for (const ir::TensorInfo& input : graph.inputs) {
    exe->m_tensors.add_input(input.name);
    if (!is_io_float_type(input.dtype)) {
      return make_error(StatusCode::kUnsupported, "cpu backend: graph input '", input.name, "' is ",
                        to_string(input.dtype), "; allowed: float32, float16, bfloat16");
    }
    exe->m_input_dtypes.push_back(input.dtype);
  }
  const std::map<std::string, DenseHandoff> handoffs = plan_bf16_handoffs(graph, tactics);
  for (const ir::Node& node : graph.nodes) {
    Layer layer;
    layer.name = node.name;
    layer.op = node.op;
    if (node.op == "Dense") {
      layer.kind = LayerKind::kDense;
      auto it = tactics.find(node.name);
      auto handoff = handoffs.find(node.name);
      MLPRT_ASSIGN_OR_RETURN(
          layer.dense,
          make_dense_layer(
              exe->m_engine, graph, node,
              it == tactics.end() ? std::vector<DenseTactic>{DenseTactic{}} : it->second,
              true, describe_only, nullptr,
              handoff == handoffs.end() ? DenseHandoff{} : handoff->second));
      for (const DenseVariant& v : layer.dense.variants) {
        exe->m_scratchpad_bytes = std::max(exe->m_scratchpad_bytes, v.scratchpad_desc.get_size());
      }
    } else if (node.op == "Relu") {
      layer.kind = LayerKind::kRelu;
    } else if (is_view(node.op)) {
      layer.kind = LayerKind::kView;
    } else {
      MLPRT_ASSIGN_OR_RETURN(layer.kind, layer_params(graph, node, layer.params));
    }
    if (layer.kind == LayerKind::kCopy || layer.kind == LayerKind::kReduceMean ||
        layer.kind == LayerKind::kMatMul) {
      layer.node = node;
    }
    const size_t data_inputs =
        layer.kind == LayerKind::kAdd || layer.kind == LayerKind::kMatMul ? 2 : 1;
    if (node.inputs.size() < data_inputs || node.outputs.size() != 1 || node.outputs[0].empty()) {
      return make_error(StatusCode::kInvalidArgument, "cpu backend: ", describe(node), ": needs ",
                        data_inputs, " data input(s) and one output, has ", node.inputs.size(),
                        " inputs and ", node.outputs.size(), " outputs");
    }
    for (size_t i = 0; i < data_inputs; ++i) {
      MLPRT_ASSIGN_OR_RETURN(const size_t id,
                             exe->m_tensors.resolve(graph, node, node.inputs[i], load));
      layer.inputs.push_back(id);
    }
    if (ir::has_residual(node)) {  // Dense / MatMul: the residual is the last data input
      MLPRT_ASSIGN_OR_RETURN(const size_t id,
                             exe->m_tensors.resolve(graph, node, node.inputs[3], load));
      layer.inputs.push_back(id);
      layer.residual = true;
    }
    MLPRT_ASSIGN_OR_RETURN(layer.output, exe->m_tensors.add_output(node, node.outputs[0],
                                                                   layer.kind == LayerKind::kView));
    exe->m_layers.push_back(std::move(layer));
  }
  for (const ir::TensorInfo& output : graph.outputs) {
    if (!is_io_float_type(output.dtype)) {
      return make_error(StatusCode::kUnsupported, "cpu backend: graph output '", output.name,
                        "' is ", to_string(output.dtype), "; allowed: float32, float16, bfloat16");
    }
    exe->m_output_dtypes.push_back(output.dtype);
    MLPRT_RETURN_IF_ERROR(exe->m_tensors.add_graph_output(graph, output.name, load));
  }
  return exe;
}

Result<std::unique_ptr<BackendContext>> CpuExecutable::create_context() const {
  if (m_describe_only) {
    return Status(StatusCode::kInternal,
                  "cpu backend: an Executable made to describe a plan cannot run it");
  }
  return make_cpu_context(*this);
}

namespace {

std::string joined_rows(const std::vector<int64_t>& rows) {
  std::string out;
  for (int64_t r : rows) {
    if (!out.empty()) out += ",";
    out += std::to_string(r);
  }
  return out;
}

// The chain's Dense nodes in order, or why the graph is no chain the AMX kernel runs.
std::string amx_chain_nodes(const ir::Graph& graph, std::vector<const ir::Node*>& dense) {
  if (graph.inputs.size() != 1 || graph.outputs.size() != 1) {
    return "the graph has " + std::to_string(graph.inputs.size()) + " inputs and " +
           std::to_string(graph.outputs.size()) + " outputs; the chain takes one of each";
  }
  std::string current = graph.inputs.front().name;
  for (const ir::Node& node : graph.nodes) {
    if (node.inputs.empty() || node.inputs[0] != current || node.outputs.size() != 1) {
      return "node '" + node.name + "' does not read the previous layer's output";
    }
    if (node.op == "Dense") {
      Result<DenseSpec> spec = dense_spec(graph, node, false);
      if (!spec) return spec.status().message();
      const ir::ActivationKind act = spec->activation.kind;
      if (ir::has_residual(node)) return "layer '" + node.name + "' adds a residual";
      if (spec->transpose_x) return "layer '" + node.name + "' reads its input transposed";
      if (act != ir::ActivationKind::kNone && act != ir::ActivationKind::kRelu) {
        return "layer '" + node.name + "' ends in " + node.get_string("activation", "?") +
               "; the AMX chain applies ReLU or nothing";
      }
      if (spec->k > kAmxMlpMaxK || spec->n > kAmxMlpMaxN) {
        return "layer '" + node.name + "' is " + std::to_string(spec->k) + "x" +
               std::to_string(spec->n) + "; the AMX chain takes inputs up to " +
               std::to_string(kAmxMlpMaxK) + " and outputs up to " + std::to_string(kAmxMlpMaxN);
      }
      dense.push_back(&node);
    } else if (!is_view(node.op)) {
      return "node '" + node.name + "' is " + node.op + "; the AMX chain runs Dense layers only";
    }
    current = node.outputs[0];
  }
  if (dense.empty()) return "the graph has no Dense layer";
  if (current != graph.outputs.front().name) return "the graph's output is not the chain's end";
  return {};
}

}  // namespace

std::string CpuExecutable::amx_chain_ineligible(const ir::Graph& graph) {
  std::vector<const ir::Node*> dense;
  return amx_chain_nodes(graph, dense);
}

Status CpuExecutable::make_amx(const ir::Graph& graph, bool describe_only) {
  std::vector<const ir::Node*> dense;
  if (const std::string why = amx_chain_nodes(graph, dense); !why.empty()) {
    return make_error(StatusCode::kCorruptData, "cpu backend: the plan runs the AMX chain kernel, "
                      "but ", why);
  }
  if (describe_only) return Status::ok();
  if (const std::string why = amx_mlp_unavailable(); !why.empty()) {
    return make_error(StatusCode::kHardwareMismatch, "cpu backend: the plan runs the AMX chain "
                      "kernel, which this machine cannot: ", why, "; rebuild the plan here");
  }
  std::vector<AmxMlpLayerDesc> layers;
  for (const ir::Node* node : dense) {
    MLPRT_ASSIGN_OR_RETURN(DenseSpec spec, dense_spec(graph, *node));
    const ir::Constant* w = graph.find_constant(node->inputs[1]);
    const ir::Constant* b = spec.has_bias ? graph.find_constant(node->inputs[2]) : nullptr;
    layers.push_back({spec.k, spec.n, reinterpret_cast<const float*>(w->data.data()),
                      b != nullptr ? reinterpret_cast<const float*>(b->data.data()) : nullptr,
                      spec.activation.kind == ir::ActivationKind::kRelu});
  }
  MLPRT_ASSIGN_OR_RETURN(AmxMlp amx, AmxMlp::create(layers));
  m_amx = std::move(amx);
  return Status::ok();
}

std::string CpuExecutable::chain_note() const {
  std::string out;
  if (!m_chain_rows.empty()) {
    out += "; batch " + joined_rows(m_chain_rows) + ": whole chain row-split in one OpenMP region";
  }
  if (!m_amx_rows.empty()) {
    out += "; batch " + joined_rows(m_amx_rows) + ": bf16 AMX chain kernel, every layer in one pass";
  }
  return out;
}

std::vector<std::string> CpuExecutable::layer_precisions() const {
  std::vector<std::string> out;
  out.reserve(m_layers.size());
  for (const Layer& layer : m_layers) {
    switch (layer.kind) {
      case LayerKind::kDense: {
        // "bf16 (any M: bf16 runtime-M gemm:jit; M=64: bf16 fixed-M packed brg:avx512_core_bf16)"
        // with "fp32+bf16" in front when the variants differ; a row split lists its blocks:
        // "M=64: fp32 fixed-M packed row-split x2 [32 rows: brg:avx512_core]".
        std::set<std::string> precisions;
        std::string text;
        for (const DenseVariant& v : layer.dense.variants) {
          if (v.block) continue;
          precisions.insert(precision_name(v.tactic.precision));
          text += text.empty() ? "any M: " : "; M=" + std::to_string(v.fixed_m) + ": ";
          text += describe(v.tactic) + " " + v.impl;
        }
        for (const DenseTactic& split : layer.dense.splits) {
          precisions.insert(precision_name(split.precision));
          text += "; M=" + std::to_string(split.m) + ": " + describe(split) + " [";
          std::set<int64_t> sizes;
          for (const RowRange& r : split_rows(split.m, split.threads))
            sizes.insert(r.end - r.begin);
          std::string blocks;
          for (int64_t size : sizes) {
            if (!blocks.empty()) blocks += ", ";
            blocks += std::to_string(size);
            blocks += " rows: ";
            blocks += layer.dense.variants[layer.dense.block_variant_for(size)].impl;
          }
          text += blocks + "]";
        }
        if (!m_amx_rows.empty()) precisions.insert("bf16");
        std::string joined;
        for (const std::string& p : precisions) joined += (joined.empty() ? "" : "+") + p;
        const DenseHandoff& handoff = layer.dense.handoff;
        if (handoff.src_bf16) text += "; reads bf16";
        if (handoff.dst_bf16) text += "; writes bf16";
        out.push_back(joined + " (" + text + chain_note() + ")");
        break;
      }
      case LayerKind::kAdd:
        out.emplace_back("fp32 (loop:broadcast)");
        break;
      case LayerKind::kRelu:
        out.emplace_back("fp32 (loop)");
        break;
      case LayerKind::kView:
        out.emplace_back("fp32 (view)");
        break;
      case LayerKind::kActivation:
        out.push_back(
            "fp32 (loop:" + std::string(ir::activation_name(layer.params.activation.kind)) + ")");
        break;
      case LayerKind::kSoftmax:
        out.emplace_back("fp32 (loop:softmax)");
        break;
      case LayerKind::kLayerNorm:
        out.emplace_back("fp32 (loop:layer_norm)");
        break;
      case LayerKind::kScaleShift:
        out.emplace_back("fp32 (loop:scale_shift)");
        break;
      case LayerKind::kCopy:
        out.emplace_back(layer.op == "Slice" ? "fp32 (loop:strided_copy slice)"
                                             : "fp32 (loop:strided_copy transpose)");
        break;
      case LayerKind::kReduceMean:
        out.emplace_back("fp32 (loop:reduce_mean)");
        break;
      case LayerKind::kMatMul: {
        std::string reads;
        if (layer.node.get_int("transpose_a", 0)) reads += " A^T";
        if (layer.node.get_int("transpose_b", 0)) reads += " B^T";
        if (layer.node.get_int("transpose_y", 0)) reads += " Y^T";
        const std::string act(ir::activation_name(layer.params.activation.kind));
        out.push_back("fp32 (sgemm:batched" + (reads.empty() ? "" : " strided" + reads) +
                      (layer.params.shift.empty() ? "" : " +bias") +
                      (act == "none" ? "" : " +" + act) + (layer.residual ? " +residual" : "") +
                      ")");
        break;
      }
    }
  }
  return out;
}

}  // namespace mlprt::backend::cpu
