#include "backends/tensor_table.h"

#include "common/check.h"

namespace mlprt::backend {

size_t TensorTable::add_slot(const std::string& name, TensorRole role, bool is_view) {
  TensorSlot slot;
  slot.name = name;
  slot.role = role;
  slot.is_view = is_view;
  m_slots.push_back(std::move(slot));
  m_ids[name] = m_slots.size() - 1;
  return m_slots.size() - 1;
}

size_t TensorTable::add_input(const std::string& name) {
  m_input_ids.push_back(add_slot(name, TensorRole::kInput, false));
  return m_input_ids.back();
}

Result<size_t> TensorTable::resolve(const ir::Graph& graph, const ir::Node& node,
                                    const std::string& name, const LoadConstant& load) {
  auto it = m_ids.find(name);
  if (it != m_ids.end()) return it->second;
  const ir::Constant* constant = graph.find_constant(name);
  if (constant == nullptr) {
    return make_error(m_rules.unknown_input_code, m_rules.backend, ": node '", node.name, "' (",
                      node.op, "): input '", name, "' ", m_rules.unknown_input);
  }
  MLPRT_RETURN_IF_ERROR(load(node, name, *constant, m_slots.size()));
  return add_slot(name, TensorRole::kConstant, false);
}

Result<size_t> TensorTable::add_output(const ir::Node& node, const std::string& name,
                                       bool is_view) {
  if (m_ids.count(name)) {
    return make_error(StatusCode::kInvalidArgument, m_rules.backend, ": node '", node.name, "' (",
                      node.op, "): output '", name, "' ", m_rules.duplicate_output);
  }
  return add_slot(name, TensorRole::kComputed, is_view);
}

Status TensorTable::add_graph_output(const ir::Graph& graph, const std::string& name,
                                     const LoadConstant& load) {
  ir::Node pseudo;
  pseudo.name = name;
  pseudo.op = "graph output";
  MLPRT_ASSIGN_OR_RETURN(const size_t id, resolve(graph, pseudo, name, load));
  TensorSlot& slot = m_slots[id];
  if (slot.output_index >= 0 || (slot.role == TensorRole::kInput && !m_rules.output_may_be_input)) {
    return make_error(m_rules.bad_output_code, m_rules.backend, ": graph output '", name, "' ",
                      m_rules.bad_output);
  }
  slot.output_index = static_cast<int>(m_output_ids.size());
  m_output_ids.push_back(id);
  return Status::ok();
}

}  // namespace mlprt::backend
