#include "mlprt/execution_context.h"

#include <algorithm>
#include <sstream>

#include "common/check.h"
#include "runtime/context_state.h"

namespace mlprt {
namespace detail {

ContextState::ContextState(std::shared_ptr<const EngineState> engine,
                           std::unique_ptr<backend::BackendContext> backend_context)
    : m_engine(std::move(engine)), m_backend(std::move(backend_context)) {
  // The binding maps keep one entry per I/O tensor for the context's life, so that enqueue only
  // updates values and never allocates.
  for (const TensorDesc& t : m_engine->io_tensors) {
    if (t.mode == TensorIOMode::kInput) {
      m_bindings.inputs[t.name] = nullptr;
    } else {
      m_bindings.outputs[t.name] = nullptr;
      m_owned_outputs[t.name];
    }
  }
  m_chunk_bindings = m_bindings;
  resolve_shapes();  // an engine without inputs has its shapes now
}

Status ContextState::set_num_threads(int threads) {
  MLPRT_RETURN_IF_ERROR(m_backend->set_num_threads(threads));
  if (m_tail_backend) MLPRT_RETURN_IF_ERROR(m_tail_backend->set_num_threads(threads));
  m_threads = threads;
  m_threads_set = true;
  return Status::ok();
}

Status ContextState::set_use_cuda_graph(bool use) {
  MLPRT_RETURN_IF_ERROR(m_backend->set_use_graph(use));
  if (m_tail_backend) MLPRT_RETURN_IF_ERROR(m_tail_backend->set_use_graph(use));
  m_use_graph = use;
  m_graph_set = true;
  return Status::ok();
}

Status ContextState::set_split_batch(bool split) {
  if (split) MLPRT_RETURN_IF_ERROR(check_split_allowed(m_engine->plan));
  if (split == m_split_batch) return Status::ok();
  m_split_batch = split;
  m_input_shapes.clear();
  m_resolved = false;
  resolve_shapes();
  return Status::ok();
}

Status ContextState::set_profiler(Profiler* profiler) {
  Profiler* forward = profiler ? &m_profiler : nullptr;
  Status status = m_backend->set_profiler(forward);
  if (status.is_ok() && m_tail_backend) status = m_tail_backend->set_profiler(forward);
  if (!status.is_ok()) {
    // Leave both contexts off rather than one timing and one not.
    (void)m_backend->set_profiler(nullptr);
    if (m_tail_backend) (void)m_tail_backend->set_profiler(nullptr);
    m_profiler.set_target(nullptr, 0);
    return status.with_context("set_profiler on a " + m_engine->plan.backend + " engine");
  }
  m_profiler.set_target(profiler, m_engine->plan.graph.nodes.size() + 1);
  return Status::ok();
}

const TensorDesc* ContextState::find(const std::string& name) const {
  for (const TensorDesc& t : m_engine->io_tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::string ContextState::profile_ranges() const {
  std::ostringstream os;
  const auto& profiles = m_engine->plan.profiles;
  for (size_t p = 0; p < profiles.size(); ++p) {
    os << (p ? "; " : "") << "profile " << p << ":";
    for (const auto& [name, range] : profiles[p].ranges())
      os << " " << name << " " << to_string(range);
  }
  return os.str();
}

Status ContextState::set_optimization_profile(int index) {
  const int count = static_cast<int>(m_engine->plan.profiles.size());
  if (index < 0 || index >= count) {
    return make_error(StatusCode::kOutOfRange, "profile ", index,
                      " does not exist: the engine has ", count, " profile(s) (", profile_ranges(),
                      ")");
  }
  if (index != m_profile) {
    m_profile = index;
    m_input_shapes.clear();
    m_resolved = false;
    resolve_shapes();
  }
  return Status::ok();
}

Status ContextState::set_tensor_location(TensorLocation location) {
  if (location == m_location) return Status::ok();
  const bool device = location == TensorLocation::kDevice;
  MLPRT_RETURN_IF_ERROR(m_backend->set_device_io(device).with_context(
      "set_tensor_location(" + std::string(device ? "kDevice" : "kHost") + ") on a " +
      m_engine->plan.backend + " engine"));
  if (m_tail_backend) MLPRT_RETURN_IF_ERROR(m_tail_backend->set_device_io(device));
  m_location = location;
  m_bindings.device_addresses = device;
  if (m_resolved) {
    m_resolved = false;
    resolve_shapes();
    return m_resolve_error;
  }
  return Status::ok();
}

Status ContextState::check_in_profile(const std::string& name, const Dims& dims) const {
  const auto& profile = m_engine->plan.profiles[static_cast<size_t>(m_profile)];
  auto range = profile.get_dimensions(name);
  if (range && range->contains(dims)) return Status::ok();
  return make_error(StatusCode::kOutOfRange, "input '", name, "' shape ", to_string(dims),
                    " is outside the selected profile ", m_profile, " (",
                    range ? to_string(*range) : std::string("no range"),
                    "); the engine's profiles: ", profile_ranges());
}

Status ContextState::set_input_shape(const std::string& name, const Dims& dims) {
  const TensorDesc* desc = find(name);
  if (!desc || desc->mode != TensorIOMode::kInput) {
    std::string inputs;
    for (const TensorDesc& t : m_engine->io_tensors) {
      if (t.mode == TensorIOMode::kInput) inputs += (inputs.empty() ? "" : ", ") + t.name;
    }
    return make_error(StatusCode::kNotFound, "'", name,
                      "' is not an input of the engine; its inputs are: ", inputs);
  }
  if (Status in_profile = check_in_profile(name, dims); !in_profile.is_ok()) {
    const bool past = past_every_profile(m_engine->plan, name, dims);
    if (!past) return in_profile;
    if (!m_split_batch) return Status(in_profile.code(), in_profile.message() + split_batch_hint());
    MLPRT_RETURN_IF_ERROR(check_split_shape(m_engine->plan, name, dims));
  }
  auto it = m_input_shapes.find(name);
  if (it != m_input_shapes.end() && it->second == dims && m_resolved) return Status::ok();
  m_input_shapes[name] = dims;
  m_resolved = false;
  resolve_shapes();
  return Status::ok();
}

void ContextState::resolve_shapes() {
  m_resolve_error = Status::ok();
  for (const TensorDesc& t : m_engine->io_tensors) {
    if (t.mode == TensorIOMode::kInput && !m_input_shapes.count(t.name)) {
      // As in TensorRT, an input without dynamic dimensions needs no set_input_shape.
      if (std::find(t.dims.begin(), t.dims.end(), kDynamicDim) == t.dims.end()) {
        m_input_shapes[t.name] = t.dims;
        continue;
      }
      m_resolve_error = make_error(StatusCode::kInvalidArgument, "the shape of input '", t.name,
                                   "' is not set (call set_input_shape first)");
      return;
    }
  }
  m_split.reset();
  if (m_split_batch && needs_split()) {
    m_resolve_error = resolve_split();
    m_resolved = m_resolve_error.is_ok();
    return;
  }
  if (m_calls_reserved) {
    m_resolve_error = m_backend->set_calls_per_enqueue(1);
    if (!m_resolve_error.is_ok()) return;
    m_calls_reserved = false;
  }
  auto shapes = ir::infer_shapes(m_engine->plan.graph, m_input_shapes);
  if (!shapes.is_ok()) {
    m_resolve_error = shapes.status();
    return;
  }
  m_shapes = std::move(shapes).value();
  for (const TensorDesc& t : m_engine->io_tensors) {
    if (t.mode != TensorIOMode::kOutput) continue;
    auto n = volume(m_shapes.at(t.name));
    if (!n.is_ok()) {
      m_resolve_error = n.status();
      return;
    }
    auto& buffer = m_owned_outputs[t.name];
    const size_t bytes = static_cast<size_t>(*n) * element_size(t.dtype);
    if (buffer.size() < bytes) buffer.resize(bytes);
  }
  m_resolve_error = m_backend->prepare(m_shapes);
  m_resolved = m_resolve_error.is_ok();
}

Status ContextState::require_resolved(const char* doing) const {
  if (m_resolved) return Status::ok();
  return m_resolve_error.with_context(doing);
}

Result<Dims> ContextState::tensor_shape(const std::string& name) const {
  const TensorDesc* desc = find(name);
  if (!desc) {
    return make_error(StatusCode::kNotFound, "'", name,
                      "' is not an input or output of the engine");
  }
  if (desc->mode == TensorIOMode::kInput) {
    auto it = m_input_shapes.find(name);
    if (it != m_input_shapes.end()) return it->second;
    return desc->dims;
  }
  MLPRT_RETURN_IF_ERROR(require_resolved("shape of output not known"));
  return m_shapes.at(name);
}

Status ContextState::set_tensor_address(const std::string& name, void* address) {
  if (!find(name)) {
    return make_error(StatusCode::kNotFound, "'", name,
                      "' is not an input or output of the engine");
  }
  if (address) {
    m_addresses[name] = address;
  } else {
    m_addresses.erase(name);
  }
  return Status::ok();
}

Status ContextState::enqueue(void* stream) {
  // A tensor with zero elements (an empty batch) needs no address: nothing is read or written.
  const auto empty = [&](const std::string& name) {
    if (!m_resolved) return false;
    auto it = m_shapes.find(name);
    return it != m_shapes.end() &&
           std::any_of(it->second.begin(), it->second.end(), [](int64_t d) { return d == 0; });
  };
  bool all_outputs_empty = true;
  for (const TensorDesc& t : m_engine->io_tensors) {
    auto address = m_addresses.find(t.name);
    if (t.mode == TensorIOMode::kInput) {
      if (!m_input_shapes.count(t.name)) {
        return make_error(StatusCode::kInvalidArgument, "enqueue: the shape of input '", t.name,
                          "' is not set (call set_input_shape first)");
      }
      if (address == m_addresses.end() && empty(t.name)) {
        m_bindings.inputs.find(t.name)->second = nullptr;
        continue;
      }
      if (address == m_addresses.end()) {
        return make_error(StatusCode::kInvalidArgument, "enqueue: input '", t.name,
                          "' has no address (call set_tensor_address first)");
      }
      m_bindings.inputs.find(t.name)->second = address->second;
    } else {
      all_outputs_empty = all_outputs_empty && empty(t.name);
      if (address == m_addresses.end() && empty(t.name)) {
        m_bindings.outputs.find(t.name)->second = nullptr;
        continue;
      }
      if (m_location == TensorLocation::kDevice && address == m_addresses.end()) {
        return make_error(StatusCode::kInvalidArgument, "enqueue: output '", t.name,
                          "' has no device address (with TensorLocation::kDevice every output "
                          "must be bound with set_tensor_address)");
      }
      m_bindings.outputs.find(t.name)->second =
          address != m_addresses.end() ? address->second
                                       : static_cast<void*>(m_owned_outputs.at(t.name).data());
    }
  }
  MLPRT_RETURN_IF_ERROR(require_resolved("enqueue"));
  // Every output empty: there is nothing to compute (the shapes are already known).
  if (all_outputs_empty) return Status::ok();
  if (m_split) return enqueue_split(stream);
  return m_backend->execute(m_bindings, stream);
}

Result<TensorView> ContextState::output(const std::string& name) const {
  const TensorDesc* desc = find(name);
  if (!desc || desc->mode != TensorIOMode::kOutput) {
    return make_error(StatusCode::kNotFound, "'", name, "' is not an output of the engine");
  }
  MLPRT_RETURN_IF_ERROR(require_resolved("output not available"));
  auto address = m_addresses.find(name);
  const void* data = address != m_addresses.end()
                         ? address->second
                         : static_cast<const void*>(m_owned_outputs.at(name).data());
  return TensorView{desc->dtype, m_shapes.at(name), data};
}

}  // namespace detail

ExecutionContext::ExecutionContext(std::unique_ptr<detail::ContextState> state)
    : m_state(std::move(state)) {}
ExecutionContext::~ExecutionContext() = default;

Status ExecutionContext::set_optimization_profile(int index) {
  return m_state->set_optimization_profile(index);
}
int ExecutionContext::optimization_profile() const { return m_state->optimization_profile(); }
Status ExecutionContext::set_tensor_location(TensorLocation location) {
  return m_state->set_tensor_location(location);
}
TensorLocation ExecutionContext::tensor_location() const { return m_state->tensor_location(); }
Status ExecutionContext::set_input_shape(const std::string& name, const Dims& dims) {
  return m_state->set_input_shape(name, dims);
}
Result<Dims> ExecutionContext::tensor_shape(const std::string& name) const {
  return m_state->tensor_shape(name);
}
Status ExecutionContext::set_tensor_address(const std::string& name, void* address) {
  return m_state->set_tensor_address(name, address);
}
Status ExecutionContext::enqueue(void* stream) { return m_state->enqueue(stream); }
Status ExecutionContext::set_num_threads(int threads) { return m_state->set_num_threads(threads); }
Status ExecutionContext::set_use_cuda_graph(bool use) { return m_state->set_use_cuda_graph(use); }
Status ExecutionContext::set_split_batch(bool split) { return m_state->set_split_batch(split); }
bool ExecutionContext::split_batch() const { return m_state->split_batch(); }
Status ExecutionContext::set_profiler(Profiler* profiler) { return m_state->set_profiler(profiler); }
Profiler* ExecutionContext::profiler() const { return m_state->profiler(); }
Result<TensorView> ExecutionContext::output(const std::string& name) const {
  return m_state->output(name);
}

}  // namespace mlprt
