#pragma once
// The Python-side owners of an Engine and its ExecutionContexts. A context holds a reference to
// its Python engine, so deleting the engine in Python never invalidates a context (the C++
// context also keeps the engine's state alive).

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bind_profiler.h"
#include "bindings.h"
#include "mlprt/engine.h"

namespace mlprt::python {

struct PyContext;

struct PyEngine {
  std::unique_ptr<Engine> engine;
  std::vector<uint8_t> plan;  ///< the plan's bytes, for serialize()
  /// engine.infer's own context, made on first use; the mutex serializes its callers.
  std::unique_ptr<PyContext> default_context;
  std::mutex default_context_mutex;
  /// Per I/O tensor, in engine order: its name as a Python str (dict lookups without making one)
  /// and "input 'x'" / "output 'y'" for messages.
  std::vector<nb::object> names;
  std::vector<std::string> labels;

  const TensorDesc& io(const std::string& name) const;
  /// Position of I/O tensor `name` (inputs first), -1 if none.
  [[nodiscard]] int index_of(const std::string& name) const;
  [[nodiscard]] int num_inputs() const;
  /// TensorRT 8's bindings: every I/O tensor once per profile, profile k's at k * I/O count + i.
  [[nodiscard]] int num_bindings() const;
  /// The I/O tensor of a binding index; NotFoundError out of range.
  const TensorDesc& binding(int index) const;
};

/// Loads a plan (PlanError on anything that is not a loadable plan) into a Python Engine.
/// `options`: what a plan built for other hardware does (re-tuned by default); a re-tuned engine's
/// serialize() gives the re-tuned plan.
std::unique_ptr<PyEngine> load_engine(std::vector<uint8_t> plan, const std::string& source,
                                      const EngineLoadOptions& options = {});
/// The bytes of any object with the buffer protocol (bytes, IHostMemory, memoryview, numpy).
std::vector<uint8_t> buffer_bytes(nb::handle buffer, const char* what);

struct PyContext {
  nb::object engine_ref;  ///< keeps the Python engine alive
  PyEngine* engine = nullptr;
  std::unique_ptr<ExecutionContext> context;
  TensorLocation location = TensorLocation::kHost;
  /// Per I/O tensor (engine order) the address last bound, and per output the shape of the
  /// current input shapes as a Python tuple (made once per shape change).
  std::vector<void*> bound;
  std::vector<nb::object> output_shapes;
  std::vector<Dims> output_dims;
  std::vector<nb::object> copies;  ///< infer's contiguous copies of the last call's inputs
  /// Set while a call that changes or runs the context is under way (see ContextInUse).
  std::atomic<bool> in_use{false};
  /// Input shapes last set, in engine input order (infer skips set_input_shape when unchanged).
  std::vector<Dims> shapes;
  bool shapes_valid = false;
  /// IExecutionContext.profiler's adapter (null: none); set on `context` while non-null.
  std::unique_ptr<PyProfiler> profiler;

  /// Switches where addresses live; the shapes must be set again afterwards.
  void use_location(TensorLocation where);
  /// The location TensorRT's calls imply: device memory on a GPU engine, else host.
  void use_trt_location();
  void set_input_shape(const std::string& name, const Dims& dims);
  void set_address(const std::string& name, void* address);
  /// set_address for I/O tensor `index` (engine order), skipped when already bound there.
  void bind(size_t index, void* address);
  void enqueue(void* stream);
};

std::unique_ptr<PyContext> create_context(nb::handle engine_object);

/// Held by every call that changes or runs a context. A context is one thread's; a second thread
/// using it at the same time gets an InvalidArgumentError instead of corrupting it.
class ContextInUse {
 public:
  explicit ContextInUse(PyContext& context);
  ~ContextInUse() { m_context.in_use.store(false, std::memory_order_release); }
  ContextInUse(const ContextInUse&) = delete;
  ContextInUse& operator=(const ContextInUse&) = delete;

 private:
  PyContext& m_context;
};

/// context.infer / engine.infer (infer.cpp).
nb::dict infer(PyContext& context, nb::handle feed, nb::handle stream, nb::handle outputs);

}  // namespace mlprt::python
