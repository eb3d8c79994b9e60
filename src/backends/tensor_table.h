#pragma once
// Shared by the backends' executables: the name -> tensor slot table built at load. Slot ids
// index the layers' inputs/outputs and every per-tensor array of a context; what a backend
// keeps per constant (host copy, device buffer) lives beside the table, indexed by slot id.

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"
#include "mlprt/status.h"

namespace mlprt::backend {

enum class TensorRole { kInput, kConstant, kComputed };

struct TensorSlot {
  std::string name;
  TensorRole role = TensorRole::kComputed;
  bool is_view = false;   ///< output of Reshape/Flatten/...: aliases its input's memory
  int output_index = -1;  ///< index among the graph outputs, or -1
};

/// A backend's wording of the table's errors and what it allows (each backend keeps its own
/// messages). The views must outlive the table (string literals).
struct TensorTableRules {
  std::string_view backend;           ///< message prefix, e.g. "cpu backend"
  StatusCode unknown_input_code;      ///< a node input that has no slot and is no constant
  std::string_view unknown_input;     ///< "<backend>: <node>: input '<name>' " + this
  std::string_view duplicate_output;  ///< "<backend>: <node>: output '<name>' " + this
  StatusCode bad_output_code;         ///< a graph output listed twice (or a refused input)
  std::string_view bad_output;        ///< "<backend>: graph output '<name>' " + this
  bool output_may_be_input = true;    ///< false: a graph output that is a graph input is refused
};

class TensorTable {
 public:
  /// Called once per constant the graph's nodes or outputs read, before its slot `id` exists:
  /// checks the constant's type and keeps the backend's copy of it. `user` is the node that
  /// reads it (op "graph output" for a graph output). An error stops the load.
  using LoadConstant = std::function<Status(const ir::Node& user, const std::string& name,
                                            const ir::Constant& constant, size_t id)>;

  explicit TensorTable(const TensorTableRules& rules) : m_rules(rules) {}

  /// Appends the slot of a graph input (recorded in input_ids()).
  size_t add_input(const std::string& name);
  /// The slot `node` reads as its input `name`: an existing slot, or a new constant slot for
  /// one of `graph`'s constants that `load` accepted.
  Result<size_t> resolve(const ir::Graph& graph, const ir::Node& node, const std::string& name,
                         const LoadConstant& load);
  /// Appends the computed slot of `node`'s output `name`; a name that has a slot is refused.
  Result<size_t> add_output(const ir::Node& node, const std::string& name, bool is_view);
  /// Resolves the next graph output `name` (as resolve, for a pseudo-node "graph output") and
  /// records it in output_ids() and its slot's output_index.
  Status add_graph_output(const ir::Graph& graph, const std::string& name,
                          const LoadConstant& load);

  [[nodiscard]] const std::vector<TensorSlot>& slots() const noexcept { return m_slots; }
  [[nodiscard]] const std::vector<size_t>& input_ids() const noexcept { return m_input_ids; }
  [[nodiscard]] const std::vector<size_t>& output_ids() const noexcept { return m_output_ids; }

 private:
  size_t add_slot(const std::string& name, TensorRole role, bool is_view);

  TensorTableRules m_rules;
  std::vector<TensorSlot> m_slots;
  std::map<std::string, size_t> m_ids;
  std::vector<size_t> m_input_ids;
  std::vector<size_t> m_output_ids;
};

}  // namespace mlprt::backend
