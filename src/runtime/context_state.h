#pragma once
// The state behind an ExecutionContext: selected profile, input shapes, every tensor's shape,
// the caller's addresses and the output buffers the context owns.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "ir/shape_inference.h"
#include "mlprt/execution_context.h"
#include "runtime/engine_state.h"
#include "runtime/profile_sums.h"
#include "runtime/split_batch.h"

namespace mlprt::detail {

class ContextState {
 public:
  ContextState(std::shared_ptr<const EngineState> engine,
               std::unique_ptr<backend::BackendContext> backend_context);

  Status set_optimization_profile(int index);
  [[nodiscard]] int optimization_profile() const { return m_profile; }
  Status set_tensor_location(TensorLocation location);
  [[nodiscard]] TensorLocation tensor_location() const { return m_location; }
  Status set_input_shape(const std::string& name, const Dims& dims);
  [[nodiscard]] Result<Dims> tensor_shape(const std::string& name) const;
  Status set_tensor_address(const std::string& name, void* address);
  Status enqueue(void* stream);
  Status set_num_threads(int threads);
  Status set_use_cuda_graph(bool use);
  Status set_split_batch(bool split);
  [[nodiscard]] bool split_batch() const { return m_split_batch; }
  [[nodiscard]] Result<TensorView> output(const std::string& name) const;
  Status set_profiler(Profiler* profiler);
  [[nodiscard]] Profiler* profiler() const { return m_profiler.target(); }

 private:
  const TensorDesc* find(const std::string& name) const;
  std::string profile_ranges() const;
  Status check_in_profile(const std::string& name, const Dims& dims) const;
  /// Infers every shape and prepares the backend once all inputs have shapes. A failure is kept
  /// in m_resolve_error: inputs set one by one may disagree until the last one is set.
  void resolve_shapes();
  Status require_resolved(const char* doing) const;
  // Split batch (split_batch.cpp).
  [[nodiscard]] bool needs_split() const;
  Status resolve_split();
  void bind_rows(int64_t first);
  Status enqueue_split(void* stream);
  Status enqueue_chunks(void* stream);

  std::shared_ptr<const EngineState> m_engine;
  std::unique_ptr<backend::BackendContext> m_backend;
  int m_profile = 0;
  std::map<std::string, Dims> m_input_shapes;
  ir::ShapeMap m_shapes;        ///< every tensor; valid when m_resolved
  bool m_resolved = false;
  Status m_resolve_error;
  std::map<std::string, void*> m_addresses;
  /// Outputs without a caller address go here; sized when shapes resolve, grown only.
  std::map<std::string, std::vector<std::byte>> m_owned_outputs;
  backend::IoBindings m_bindings;
  TensorLocation m_location = TensorLocation::kHost;
  // Split batch: the chunks of the current shapes (empty when they fit a profile), a second
  // backend context for a shorter last chunk, and each chunk's addresses (keys made once).
  bool m_split_batch = false;
  std::optional<SplitPlan> m_split;
  std::unique_ptr<backend::BackendContext> m_tail_backend;
  backend::IoBindings m_chunk_bindings;
  bool m_calls_reserved = false;  // m_backend was told of several calls per enqueue
  // Settings the tail context gets when made.
  int m_threads = 0;
  bool m_threads_set = false;
  bool m_use_graph = true;
  bool m_graph_set = false;
  /// Per-layer timing: what the backend contexts report to while a profiler is set.
  ProfileSums m_profiler;
};

}  // namespace mlprt::detail
