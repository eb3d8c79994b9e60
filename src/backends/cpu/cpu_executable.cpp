#include "backends/cpu/cpu_executable.h"

#include <algorithm>
#include <cstring>
#include <new>

#include <omp.h>
#include <set>

#include "common/check.h"

namespace mlprt::backend::cpu {

Result<size_t> CpuExecutable::tensor_id(const ir::Graph& graph, const ir::Node& node,
                                        const std::string& name) {
  auto it = m_ids.find(name);
  if (it != m_ids.end()) return it->second;
  const ir::Constant* constant = graph.find_constant(name);
  if (constant == nullptr) {
    return make_error(StatusCode::kInvalidArgument, "cpu backend: ", describe(node), ": input '",
                      name, "' is produced by no earlier node, graph input or constant");
  }
  if (constant->dtype != DataType::kFloat32) {
    return make_error(StatusCode::kUnsupported, "cpu backend: ", describe(node), ": constant '",
                      name, "' is ", to_string(constant->dtype), "; only float32 is supported");
  }
  std::vector<float>& copy = m_constants[name];
  copy.resize(constant->data.size() / sizeof(float));
  if (!copy.empty()) std::memcpy(copy.data(), constant->data.data(), copy.size() * sizeof(float));
  TensorSlot slot;
  slot.name = name;
  slot.role = TensorRole::kConstant;
  slot.constant = copy.data();
  m_tensors.push_back(slot);
  m_ids[name] = m_tensors.size() - 1;
  return m_tensors.size() - 1;
}

Result<std::unique_ptr<CpuExecutable>> CpuExecutable::create(
    const ir::Graph& graph, const std::map<std::string, std::vector<DenseTactic>>& tactics,
    int threads) {
  // oneDNN sizes a fixed-shape primitive's parallel work for the creating thread's OpenMP
  // count: create them for the plan's.
  const int caller_threads = omp_get_max_threads();
  if (threads > 0) omp_set_num_threads(threads);
  Result<std::unique_ptr<CpuExecutable>> exe = create_impl(graph, tactics);
  if (threads > 0) omp_set_num_threads(caller_threads);
  if (exe.is_ok()) (*exe)->m_threads = threads;
  return exe;
}

Result<std::unique_ptr<CpuExecutable>> CpuExecutable::create_impl(
    const ir::Graph& graph, const std::map<std::string, std::vector<DenseTactic>>& tactics) {
  std::unique_ptr<CpuExecutable> exe(new CpuExecutable());
  try {
    exe->m_engine = dnnl::engine(dnnl::engine::kind::cpu, 0);
  } catch (const dnnl::error& e) {
    return make_error(StatusCode::kInternal, "cpu backend: cannot create the oneDNN cpu engine: ",
                      e.what());
  }
  for (const ir::TensorInfo& input : graph.inputs) {
    TensorSlot slot;
    slot.name = input.name;
    slot.role = TensorRole::kInput;
    exe->m_tensors.push_back(slot);
    exe->m_ids[input.name] = exe->m_tensors.size() - 1;
    exe->m_input_ids.push_back(exe->m_tensors.size() - 1);
  }
  for (const ir::Node& node : graph.nodes) {
    Layer layer;
    layer.name = node.name;
    layer.op = node.op;
    if (node.op == "Dense") {
      layer.kind = LayerKind::kDense;
      auto it = tactics.find(node.name);
      MLPRT_ASSIGN_OR_RETURN(
          layer.dense, make_dense_layer(exe->m_engine, graph, node,
                                        it == tactics.end() ? std::vector<DenseTactic>{DenseTactic{}}
                                                            : it->second));
      for (const DenseVariant& v : layer.dense.variants) {
        exe->m_scratchpad_bytes = std::max(exe->m_scratchpad_bytes, v.scratchpad_desc.get_size());
      }
    } else if (node.op == "Add") {
      layer.kind = LayerKind::kAdd;
    } else if (node.op == "Relu") {
      layer.kind = LayerKind::kRelu;
    } else if (node.op == "Reshape" || node.op == "Flatten") {
      layer.kind = LayerKind::kView;
    } else {
      return make_error(StatusCode::kUnsupported, "cpu backend: ", describe(node),
                        ": op not implemented; supported: Dense, Add, Relu, Reshape, Flatten");
    }
    const size_t data_inputs = layer.kind == LayerKind::kAdd ? 2 : 1;
    if (node.inputs.size() < data_inputs || node.outputs.size() != 1 || node.outputs[0].empty()) {
      return make_error(StatusCode::kInvalidArgument, "cpu backend: ", describe(node), ": needs ",
                        data_inputs, " data input(s) and one output, has ", node.inputs.size(),
                        " inputs and ", node.outputs.size(), " outputs");
    }
    for (size_t i = 0; i < data_inputs; ++i) {
      MLPRT_ASSIGN_OR_RETURN(size_t id, exe->tensor_id(graph, node, node.inputs[i]));
      layer.inputs.push_back(id);
    }
    const std::string& out = node.outputs[0];
    if (exe->m_ids.count(out)) {
      return make_error(StatusCode::kInvalidArgument, "cpu backend: ", describe(node),
                        ": output '", out, "' is already produced by another node or input");
    }
    TensorSlot slot;
    slot.name = out;
    slot.role = TensorRole::kComputed;
    slot.is_view = layer.kind == LayerKind::kView;
    exe->m_tensors.push_back(slot);
    layer.output = exe->m_tensors.size() - 1;
    exe->m_ids[out] = layer.output;
    exe->m_layers.push_back(std::move(layer));
  }
  for (size_t i = 0; i < graph.outputs.size(); ++i) {
    const std::string& name = graph.outputs[i].name;
    if (graph.outputs[i].dtype != DataType::kFloat32) {
      return make_error(StatusCode::kUnsupported, "cpu backend: graph output '", name, "' is ",
                        to_string(graph.outputs[i].dtype), "; only float32 is supported");
    }
    size_t id = 0;
    auto it = exe->m_ids.find(name);
    if (it != exe->m_ids.end()) {
      id = it->second;
    } else {
      ir::Node pseudo;
      pseudo.name = name;
      pseudo.op = "graph output";
      MLPRT_ASSIGN_OR_RETURN(id, exe->tensor_id(graph, pseudo, name));
    }
    if (exe->m_tensors[id].output_index >= 0) {
      return make_error(StatusCode::kInvalidArgument, "cpu backend: graph output '", name,
                        "' is listed twice");
    }
    exe->m_tensors[id].output_index = static_cast<int>(i);
    exe->m_output_ids.push_back(id);
  }
  return exe;
}

Result<std::unique_ptr<BackendContext>> CpuExecutable::create_context() const {
  return make_cpu_context(*this);
}

std::vector<std::string> CpuExecutable::layer_precisions() const {
  std::vector<std::string> out;
  out.reserve(m_layers.size());
  for (const Layer& layer : m_layers) {
    switch (layer.kind) {
      case LayerKind::kDense: {
        // "bf16 (any M: bf16 runtime-M gemm:jit; M=64: bf16 fixed-M packed brg:avx512_core_bf16)"
        // with "fp32+bf16" in front when the variants differ.
        std::set<std::string> precisions;
        std::string text;
        for (const DenseVariant& v : layer.dense.variants) {
          precisions.insert(precision_name(v.tactic.precision));
          text += text.empty() ? "any M: " : "; M=" + std::to_string(v.fixed_m) + ": ";
          text += describe(v.tactic) + " " + v.impl;
        }
        std::string joined;
        for (const std::string& p : precisions) joined += (joined.empty() ? "" : "+") + p;
        out.push_back(joined + " (" + text + ")");
        break;
      }
      case LayerKind::kAdd: out.emplace_back("fp32 (loop:broadcast)"); break;
      case LayerKind::kRelu: out.emplace_back("fp32 (loop)"); break;
      case LayerKind::kView: out.emplace_back("fp32 (view)"); break;
    }
  }
  return out;
}

}  // namespace mlprt::backend::cpu
