#include "backends/cuda/cuda_executable.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <map>
#include <optional>
#include <sstream>

#include "backends/cuda/cuda_precisions.h"
#include "backends/cuda/fused_tc_plan.h"
#include "common/check.h"
#include "ir/passes/passes.h"

namespace mlprt::backend::cuda {
namespace {

std::vector<float> floats_of(const ir::Constant& constant) {
  std::vector<float> values(constant.data.size() / sizeof(float));
  if (!values.empty()) std::memcpy(values.data(), constant.data.data(), values.size() * sizeof(float));
  return values;
}

// `describe_only`: the count only (a plan's metadata has no values), nothing uploaded.
Status upload_floats(const ir::Graph& graph, const ir::Node& node, size_t input, DeviceBuffer& out,
                     int64_t& count, bool describe_only) {
  count = 0;
  if (input >= node.inputs.size() || node.inputs[input].empty()) return Status::ok();
  const ir::Constant* c = graph.find_constant(node.inputs[input]);
  if (c == nullptr || c->dtype != DataType::kFloat32) {
    return make_error(StatusCode::kUnsupported, "cuda backend: ", describe(node), ": input '",
                      node.inputs[input], "' must be a float32 constant");
  }
  if (describe_only) {
    count = c->num_elements();
    return Status::ok();
  }
  const std::vector<float> values = floats_of(*c);
  count = static_cast<int64_t>(values.size());
  return upload(values, Precision::kFp32, out, "'" + node.inputs[input] + "' of " + describe(node));
}

// Kind and load-time parameters of the layers other than Dense.
Status layer_params(const ir::Graph& graph, const ir::Node& node, Layer& layer,
                    bool describe_only) {
  if (node.op == "Reshape" || node.op == "Flatten" || node.op == "Squeeze" ||
      node.op == "Unsqueeze") {
    layer.kind = LayerKind::kView;
    return Status::ok();
  }
  if (node.op == "Add" || node.op == "Binary") {
    static const std::map<std::string, BinaryOp, std::less<>> kKinds = {
        {"add", BinaryOp::kAdd}, {"sub", BinaryOp::kSub}, {"mul", BinaryOp::kMul},
        {"div", BinaryOp::kDiv}, {"pow", BinaryOp::kPow}};
    const std::string kind = node.op == "Add" ? "add" : node.get_string("kind", "");
    auto it = kKinds.find(kind);
    if (it == kKinds.end()) {
      return make_error(StatusCode::kUnsupported, "cuda backend: ", describe(node),
                        ": binary kind '", kind, "'; supported: add, sub, mul, div, pow");
    }
    layer.kind = LayerKind::kBinary;
    layer.binary = it->second;
    return Status::ok();
  }
  if (node.op == "Relu" || node.op == "Activation") {
    const std::optional<ir::ActivationSpec> spec = ir::activation_of(node);
    if (!spec) {
      return make_error(StatusCode::kUnsupported, "cuda backend: ", describe(node),
                        ": activation kind '", node.get_string("kind", ""), "'; supported: ",
                        ir::kActivationKinds);
    }
    layer.kind = LayerKind::kActivation;
    layer.act = act_params(*spec);
    return Status::ok();
  }
  if (node.op == "Softmax") {
    layer.kind = LayerKind::kSoftmax;
    layer.axis = node.get_int("axis", -1);
    layer.log = node.get_int("log", 0) != 0;
    layer.coerce_2d = node.get_int("coerce_2d", 0) != 0;
    return Status::ok();
  }
  if (node.op == "LayerNorm" || node.op == "ScaleShift") {
    const bool ln = node.op == "LayerNorm";
    layer.kind = ln ? LayerKind::kLayerNorm : LayerKind::kScaleShift;
    layer.axis = node.get_int("axis", ln ? -1 : 1);
    layer.epsilon = static_cast<float>(node.get_float("epsilon", 1e-5));
    MLPRT_RETURN_IF_ERROR(
        upload_floats(graph, node, 1, layer.scale, layer.scale_count, describe_only));
    MLPRT_RETURN_IF_ERROR(
        upload_floats(graph, node, 2, layer.shift, layer.shift_count, describe_only));
    if (!ln && (layer.scale_count == 0 || layer.scale_count != layer.shift_count)) {
      return make_error(StatusCode::kInvalidArgument, "cuda backend: ", describe(node),
                        ": scale and shift must be constants of the same size");
    }
    return Status::ok();
  }
  if (node.op == "Transpose" || node.op == "Slice" || node.op == "ReduceMean") {
    layer.kind = node.op == "ReduceMean" ? LayerKind::kReduceMean : LayerKind::kCopy;
    layer.node = node;
    return Status::ok();
  }
  if (node.op == "MatMul") {
    const std::optional<ir::ActivationKind> act =
        ir::parse_activation(node.get_string("activation", "none"));
    if (!act) {
      return make_error(StatusCode::kUnsupported, "cuda backend: ", describe(node),
                        ": activation '", node.get_string("activation", ""), "'; supported: ",
                        ir::kActivationKinds);
    }
    layer.kind = LayerKind::kMatMul;
    layer.node = node;
    layer.act = act_params(ir::ActivationSpec{*act, node.get_float("alpha", 0.0),
                                              node.get_float("beta", 0.0)});
    return upload_floats(graph, node, 2, layer.matmul_bias, layer.shift_count, describe_only);
  }
  return make_error(StatusCode::kUnsupported, "cuda backend: ", describe(node),
                    ": op not implemented; supported: ", kCudaOps);
}

constexpr const char* kNotProducedNorConstant =
    "is neither produced by an earlier node nor a float32 constant";
constexpr TensorTableRules kTensorRules = {
    .backend = "cuda backend",
    .unknown_input_code = StatusCode::kUnsupported,
    .unknown_input = kNotProducedNorConstant,
    .duplicate_output = "is already produced elsewhere",
    .bad_output_code = StatusCode::kUnsupported,
    .bad_output = "is listed twice or is a graph input",
    .output_may_be_input = false};

}  // namespace

Status upload(const std::vector<float>& values, Precision precision, DeviceBuffer& out,
              const std::string& what) {
  const size_t bytes = std::max<size_t>(values.size() * storage_size(precision), 16);
  MLPRT_RETURN_IF_ERROR(out.reserve(bytes, what));
  if (values.empty()) return Status::ok();
  if (storage_type(precision) == ElemType::kF32) {
    MLPRT_CUDA_TRY(cudaMemcpy(out.get(), values.data(), values.size() * sizeof(float),
                              cudaMemcpyHostToDevice),
                   "upload of " + what);
    return Status::ok();
  }
  std::vector<uint16_t> converted(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if (precision == Precision::kFp16) {
      const __half h = __float2half_rn(values[i]);
      std::memcpy(&converted[i], &h, 2);
    } else {
      const __nv_bfloat16 h = __float2bfloat16_rn(values[i]);
      std::memcpy(&converted[i], &h, 2);
    }
  }
  MLPRT_CUDA_TRY(cudaMemcpy(out.get(), converted.data(), converted.size() * 2,
                            cudaMemcpyHostToDevice),
                 "upload of " + what);
  return Status::ok();
}

bool fusable_chain(const ir::Graph& graph, std::vector<const ir::Node*>& dense_nodes) {
  dense_nodes.clear();
  if (graph.inputs.size() != 1 || graph.outputs.size() != 1) return false;
  std::string current = graph.inputs[0].name;
  int64_t previous_n = -1;
  for (const ir::Node& node : graph.nodes) {
    if (node.inputs.empty() || node.inputs[0] != current || node.outputs.size() != 1) return false;
    if (node.op == "Dense") {
      if (ir::has_residual(node)) return false;  // the fused MLP kernel adds no residual
      Result<DenseSpec> spec = dense_spec(graph, node);
      if (!spec.is_ok()) return false;
      const DenseSpec& s = *spec;
      if (s.transpose_x || (s.act.kind != ActKind::kNone && s.act.kind != ActKind::kRelu) || s.k > kFusedMaxWidth ||
          s.n > kFusedMaxWidth || (previous_n >= 0 && previous_n != s.k)) {
        return false;
      }
      previous_n = s.n;
      dense_nodes.push_back(&node);
    } else if (node.op != "Reshape" && node.op != "Flatten" && node.op != "Squeeze" &&
               node.op != "Unsqueeze") {
      return false;
    }
    current = node.outputs[0];
  }
  return current == graph.outputs[0].name && !dense_nodes.empty() &&
         dense_nodes.size() <= static_cast<size_t>(kFusedMaxLayers) &&
         graph.nodes.back().op == "Dense";
}

CudaExecutable::CudaExecutable() : m_tensors(kTensorRules) {}
CudaExecutable::~CudaExecutable() = default;

Result<ElemType> io_elem_type(DataType type, const std::string& what) {
  switch (type) {
    case DataType::kFloat32: return ElemType::kF32;
    case DataType::kFloat16: return ElemType::kF16;
    case DataType::kBFloat16: return ElemType::kBF16;
    default:
      return make_error(StatusCode::kUnsupported, "cuda backend: ", what, " is ", to_string(type),
                        "; allowed: float32, float16, bfloat16");
  }
}

Status CudaExecutable::load_constant(const ir::Node& user, const std::string& name,
                                     const ir::Constant& constant, size_t id) {
  if (constant.dtype != DataType::kFloat32) {
    return make_error(StatusCode::kUnsupported, "cuda backend: ", describe(user), ": input '",
                      name, "' ", kNotProducedNorConstant);
  }
  if (m_constants.size() <= id) m_constants.resize(id + 1);
  // A mixed engine keeps constants in fp32; its 16-bit layers read them through a cast.
  const Precision precision = m_blob.layer_precision.empty() ? m_blob.precision : Precision::kFp32;
  return upload(floats_of(constant), precision, m_constants[id], "constant '" + name + "'");
}

Status CudaExecutable::upload_fused_weights(const ir::Graph& graph) {
  std::vector<const ir::Node*> nodes;
  if (!fusable_chain(graph, nodes)) return Status::ok();
  m_fused_buffers.resize(nodes.size() * 2);
  m_fused.num_layers = static_cast<int>(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    Result<DenseSpec> spec_or = dense_spec(graph, *nodes[i]);
    if (!spec_or.is_ok()) return spec_or.status();
    const DenseSpec& spec = *spec_or;
    FusedMlpLayer& layer = m_fused.layers[i];
    layer.k = static_cast<int>(spec.k);
    layer.n = static_cast<int>(spec.n);
    layer.relu = spec.act.kind == ActKind::kRelu ? 1 : 0;
    MLPRT_RETURN_IF_ERROR(upload(floats_of(*graph.find_constant(nodes[i]->inputs[1])),
                                 Precision::kFp32, m_fused_buffers[2 * i],
                                 "fused weights of " + describe(*nodes[i])));
    layer.weights = static_cast<const float*>(m_fused_buffers[2 * i].get());
    if (spec.has_bias) {
      MLPRT_RETURN_IF_ERROR(upload(floats_of(*graph.find_constant(nodes[i]->inputs[2])),
                                   Precision::kFp32, m_fused_buffers[2 * i + 1],
                                   "fused bias of " + describe(*nodes[i])));
      layer.bias = static_cast<const float*>(m_fused_buffers[2 * i + 1].get());
    }
  }
  m_fusable = true;
  return Status::ok();
}

Result<std::unique_ptr<CudaExecutable>> CudaExecutable::create(const ir::Graph& graph,
                                                               const BlobInfo& blob,
                                                               bool describe_only) {
  std::unique_ptr<CudaExecutable> exe(new CudaExecutable());
  exe->m_blob = blob;
  exe->m_describe_only = describe_only;
  if (!describe_only) {
    MLPRT_CUDA_TRY(cudaGetDevice(&exe->m_device), "cudaGetDevice");
    // Makes the primary context current, which cublasLtCreate expects.
    MLPRT_CUDA_TRY(cudaSetDevice(exe->m_device), "cudaSetDevice");
    MLPRT_RETURN_IF_ERROR(exe->m_lt.create());
  }
  const TensorTable::LoadConstant load =
      describe_only ? TensorTable::LoadConstant([](const ir::Node&, const std::string&,
                                                   const ir::Constant&, size_t) {
        return Status::ok();
      })
                    : TensorTable::LoadConstant(
                          std::bind_front(&CudaExecutable::load_constant, exe.get()));
  LayerPrecisions precisions;
  precisions.base = blob.precision;
  precisions.by_node = blob.layer_precision;
  const ElemType base_type = storage_type(blob.precision);
  // A single-precision engine converts its inputs to its type on entry and keeps constants in
  // it, as before mixed engines. A mixed one keeps each input in its I/O type and constants in
  // fp32: each layer converts what it reads in another type (no double rounding).
  const auto grow_types = [&] {
    const auto& slots = exe->m_tensors.slots();
    for (size_t t = exe->m_tensor_types.size(); t < slots.size(); ++t) {
      ElemType type = base_type;
      if (precisions.mixed() && slots[t].role == TensorRole::kConstant) type = ElemType::kF32;
      if (precisions.mixed() && slots[t].role == TensorRole::kInput) {
        const auto& ids = exe->m_tensors.input_ids();
        const auto at = static_cast<size_t>(std::find(ids.begin(), ids.end(), t) - ids.begin());
        if (at < exe->m_input_types.size()) type = exe->m_input_types[at];
      }
      exe->m_tensor_types.push_back(type);
    }
  };
  for (const ir::TensorInfo& input : graph.inputs) {
    MLPRT_ASSIGN_OR_RETURN(const ElemType type,
                           io_elem_type(input.dtype, "graph input '" + input.name + "'"));
    exe->m_input_types.push_back(type);
    exe->m_tensors.add_input(input.name);
  }
  for (const ir::Node& node : graph.nodes) {
    Layer layer;
    layer.name = node.name;
    layer.op = node.op;
    layer.precision = precisions.of(node.name);
    layer.in_type = storage_type(layer.precision);
    layer.out_type = layer.in_type;
    if (node.op == "Dense") {
      layer.kind = LayerKind::kDense;
      MLPRT_ASSIGN_OR_RETURN(layer.spec, dense_spec(graph, node, !describe_only));
      layer.spec.out_f32 = dense_writes_f32(graph, node, precisions);
      if (layer.spec.out_f32) layer.out_type = ElemType::kF32;
      if (blob.gelu_tanh_layers.count(node.name)) {
        if (!gelu_tanh_tactic_allowed(layer.spec, layer.precision)) {
          return make_error(StatusCode::kCorruptData, "cuda backend: ", describe(node),
                            ": the plan runs it with the tanh-GELU epilogue, which only gelu_erf "
                            "layers in fp16/bf16 take; this one is ", layer.spec.activation,
                            " in ", to_string(layer.precision));
        }
        layer.spec.gelu_tanh_epilogue = true;
        layer.spec.lt_activation = true;
      }
      layer.spec.weights_nk = blob.weights_nk_layers.count(node.name) > 0;
      if (layer.spec.weights_nk && !weights_nk_tactic_allowed(layer.precision)) {
        return make_error(StatusCode::kCorruptData, "cuda backend: ", describe(node),
                          ": the plan stores its W as [N, K], a tactic of tf32 / fp16 / bf16 "
                          "layers only; this one is ", to_string(layer.precision));
      }
      if (const auto it = blob.fused_layers.find(node.name);
          it != blob.fused_layers.end() && it->second.chosen) {
        const std::string why = fused_layer_ineligible(graph, node, layer.precision);
        if (!why.empty()) {
          return make_error(StatusCode::kCorruptData, "cuda backend: the plan runs ",
                            describe(node), " on the fused kernel, which cannot run it: ", why);
        }
        layer.fused_tc = true;
        if (!describe_only) {
          const Status made = make_fused_tc(graph, {&node}, layer.precision, false,
                                            layer.fused_params, layer.fused_buffers, nullptr);
          if (!made.is_ok()) {
            return make_error(made.code(), "cuda backend: the fused kernel of ", describe(node),
                              ": ", made.message());
          }
        }
      }
      // A layer on the fused kernel reads only the kernel's copy of its weights.
      if (!describe_only && !layer.fused_tc) {
        const std::vector<float> w = floats_of(*graph.find_constant(node.inputs[1]));
        MLPRT_RETURN_IF_ERROR(upload(
            layer.spec.weights_nk ? transposed_weights(w, layer.spec.k, layer.spec.n) : w,
            layer.precision, layer.weights, "weights of " + describe(node)));
      }
      if (layer.spec.has_bias && !describe_only && !layer.fused_tc) {
        // cuBLASLt reads the bias in D's type.
        MLPRT_RETURN_IF_ERROR(upload(floats_of(*graph.find_constant(node.inputs[2])),
                                     layer.spec.out_f32 ? Precision::kFp32 : layer.precision,
                                     layer.bias, "bias of " + describe(node)));
      }
      auto tuned = blob.tuned.find(node.name);
      if (tuned != blob.tuned.end()) layer.tuned = tuned->second;
    } else {
      MLPRT_RETURN_IF_ERROR(layer_params(graph, node, layer, describe_only));
    }
    const size_t data_inputs =
        layer.kind == LayerKind::kBinary || layer.kind == LayerKind::kMatMul ? 2 : 1;
    if (node.inputs.size() < data_inputs || node.outputs.size() != 1 || node.outputs[0].empty()) {
      return make_error(StatusCode::kInvalidArgument, "cuda backend: ", describe(node), ": needs ",
                        data_inputs, " data input(s) and one output");
    }
    for (size_t i = 0; i < data_inputs; ++i) {
      MLPRT_ASSIGN_OR_RETURN(const size_t id,
                             exe->m_tensors.resolve(graph, node, node.inputs[i], load));
      layer.inputs.push_back(id);
      grow_types();
      int cast = -1;
      const ElemType have = exe->m_tensor_types[id];
      if (layer.kind != LayerKind::kView && have != layer.in_type) {
        auto& slots = exe->m_cast_slots;
        auto it = std::find_if(slots.begin(), slots.end(), [&](const CastSlot& slot) {
          return slot.tensor == id && slot.type == layer.in_type;
        });
        if (it == slots.end()) it = slots.insert(slots.end(), CastSlot{id, layer.in_type});
        cast = static_cast<int>(it - slots.begin());
      }
      layer.casts.push_back(cast);
    }
    if (ir::has_residual(node)) {
      // The residual is cuBLASLt's C (beta = 1), which has D's type: cast to the output type.
      MLPRT_ASSIGN_OR_RETURN(const size_t id,
                             exe->m_tensors.resolve(graph, node, node.inputs[3], load));
      layer.inputs.push_back(id);
      layer.residual = true;
      grow_types();
      int cast = -1;
      if (exe->m_tensor_types[id] != layer.out_type) {
        auto& slots = exe->m_cast_slots;
        auto it = std::find_if(slots.begin(), slots.end(), [&](const CastSlot& slot) {
          return slot.tensor == id && slot.type == layer.out_type;
        });
        if (it == slots.end()) it = slots.insert(slots.end(), CastSlot{id, layer.out_type});
        cast = static_cast<int>(it - slots.begin());
      }
      layer.casts.push_back(cast);
    }
    MLPRT_ASSIGN_OR_RETURN(layer.output, exe->m_tensors.add_output(node, node.outputs[0],
                                                                   layer.kind == LayerKind::kView));
    grow_types();
    if (layer.kind == LayerKind::kView) {
      layer.out_type = exe->m_tensor_types[layer.inputs[0]];
      // A view has its input's type; shown as the base precision where that is the type.
      if (layer.out_type == ElemType::kF16) {
        layer.precision = Precision::kFp16;
      } else if (layer.out_type == ElemType::kBF16) {
        layer.precision = Precision::kBf16;
      } else if (base_type != ElemType::kF32) {
        layer.precision = Precision::kFp32;
      }
    }
    exe->m_tensor_types[layer.output] = layer.out_type;
    exe->m_layers.push_back(std::move(layer));
  }
  for (const ir::TensorInfo& output : graph.outputs) {
    MLPRT_ASSIGN_OR_RETURN(const ElemType type,
                           io_elem_type(output.dtype, "graph output '" + output.name + "'"));
    exe->m_output_types.push_back(type);
    MLPRT_RETURN_IF_ERROR(exe->m_tensors.add_graph_output(graph, output.name, load));
    grow_types();
  }
  if (blob.fused_max_rows > 0 && describe_only) {
    std::vector<const ir::Node*> nodes;
    exe->m_fusable = fusable_chain(graph, nodes);
  } else if (blob.fused_max_rows > 0) {
    MLPRT_RETURN_IF_ERROR(exe->upload_fused_weights(graph));
  }
  if (std::any_of(blob.fused_tc.profiles.begin(), blob.fused_tc.profiles.end(),
                  [](const FusedTcProfile& p) { return p.chosen; })) {
    std::vector<const ir::Node*> chain;
    const std::string why = fused_tc_ineligible(graph, precisions, chain);
    if (!why.empty()) {
      return make_error(StatusCode::kCorruptData, "cuda backend: the plan for '", graph.name,
                        "' chose the fused tensor-core MLP, which cannot run it: ", why);
    }
    if (!describe_only) {
      const Status made = make_fused_tc(graph, chain, blob.precision, false, exe->m_fused_tc,
                                        exe->m_fused_tc_buffers, nullptr);
      if (!made.is_ok()) {
        return make_error(made.code(), "cuda backend: the plan for '", graph.name,
                          "' chose the fused tensor-core MLP, which cannot run here: ",
                          made.message());
      }
      exe->m_fused_tc_ready = true;
    }
  }
  return exe;
}

Result<std::unique_ptr<BackendContext>> CudaExecutable::create_context() const {
  if (m_describe_only) {
    return Status(StatusCode::kInternal,
                  "cuda backend: an Executable made to describe a plan cannot run it");
  }
  return make_cuda_context(*this);
}

std::vector<std::string> CudaExecutable::tactic_notes() const {
  std::vector<std::string> notes = m_blob.fused_tc.describe();
  for (const auto& [node, choice] : m_blob.fused_layers) {
    std::ostringstream os;
    os << "fused tensor-core layer '" << node << "': "
       << (choice.chosen ? "chosen, " : "not chosen, ") << choice.fused_us << " us fused vs "
       << choice.cublaslt_us << " us cuBLASLt (summed over the profiles' opt rows)";
    notes.push_back(os.str());
  }
  return notes;
}

std::vector<std::string> CudaExecutable::layer_precisions() const {
  std::vector<std::string> out;
  const std::string fused =
      m_fusable ? "; M<=" + std::to_string(m_blob.fused_max_rows) + ": fp32 fused MLP kernel" : "";
  for (const Layer& layer : m_layers) {
    std::string prec = to_string(layer.precision);
    for (size_t i = 0; i < layer.casts.size(); ++i) {
      if (layer.casts[i] < 0) continue;
      const ElemType from = m_tensor_types[layer.inputs[i]];
      prec += std::string(" [cast kernel: input ") + std::to_string(i) + " from " +
              (from == ElemType::kF32 ? "fp32" : from == ElemType::kF16 ? "fp16" : "bf16") + "]";
    }
    switch (layer.kind) {
      case LayerKind::kDense: {
        std::string text = prec + " (" +
                           (layer.fused_tc ? "fused tensor-core kernel for this layer alone; "
                                             "cuBLASLt, not run: "
                                           : "") +
                           describe_epilogue(layer.spec) +
                           (layer.residual ? " + residual as C (beta 1)" : "") +
                           (layer.spec.weights_nk ? ", W stored [N, K]" : "");
        for (const TunedAlgo& t : layer.tuned) {
          text += "; M=" + std::to_string(t.m) + ": " + describe_algo(t.algo) + ", fastest of " +
                  std::to_string(t.candidates) + " at " + std::to_string(t.us) + " us";
        }
        out.push_back(text + fused + ")");
        break;
      }
      case LayerKind::kBinary: out.push_back(prec + " (kernel:broadcast " + layer.op + ")"); break;
      case LayerKind::kActivation:
        out.push_back(prec + " (kernel:activation " +
                      std::string(ir::activation_name(
                          static_cast<ir::ActivationKind>(static_cast<int>(layer.act.kind)))) +
                      ")");
        break;
      case LayerKind::kSoftmax: out.push_back(prec + " (kernel:softmax, fp32 math)"); break;
      case LayerKind::kLayerNorm: out.push_back(prec + " (kernel:layer_norm, fp32 math)"); break;
      case LayerKind::kScaleShift: out.push_back(prec + " (kernel:scale_shift)"); break;
      case LayerKind::kView: out.push_back(prec + " (view)"); break;
      case LayerKind::kCopy:
        out.push_back(prec + " (kernel:strided_copy " + std::string(layer.op == "Slice" ? "slice" : "transpose") + ")");
        break;
      case LayerKind::kReduceMean: out.push_back(prec + " (kernel:reduce_mean, fp32 math)"); break;
      case LayerKind::kMatMul: {
        std::string reads;
        if (layer.node.get_int("transpose_a", 0)) reads += " A^T";
        if (layer.node.get_int("transpose_b", 0)) reads += " B^T";
        if (layer.node.get_int("transpose_y", 0)) reads += " Y^T";
        const std::string act(
            ir::activation_name(static_cast<ir::ActivationKind>(static_cast<int>(layer.act.kind))));
        // Bias and activation run as one epilogue kernel.
        std::string epilogue = layer.shift_count > 0 ? "bias" : "";
        if (act != "none") epilogue += (epilogue.empty() ? "" : "+") + act;
        out.push_back(prec + " (cublasLt batched" + (reads.empty() ? "" : " strided" + reads) +
                      (layer.residual ? " + C:residual" : "") +
                      (epilogue.empty() ? "" : " + kernel:" + epilogue) + ")");
        break;
      }
    }
  }
  return out;
}

}  // namespace mlprt::backend::cuda
