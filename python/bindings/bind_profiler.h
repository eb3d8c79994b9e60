#pragma once
// profiler.h: TensorRT's IProfiler. IExecutionContext.profiler takes any object with a
// report_layer_time(layer_name, ms) method (an IProfiler subclass, as in TensorRT).
#include <memory>

#include "bindings.h"
#include "mlprt/profiler.h"

namespace mlprt::python {

/// The base class Python profilers derive from (report_layer_time is theirs to define).
struct IProfiler {
  virtual ~IProfiler() = default;
};

/// Forwards the C++ reports to a Python object's report_layer_time, taking the GIL (enqueue
/// releases it). An exception in the callback stops the reports of that call and is raised by
/// the enqueue that caused it (rethrow).
class PyProfiler final : public Profiler {
 public:
  explicit PyProfiler(nb::object target) : m_target(std::move(target)) {}
  void report_layer_time(std::string_view layer_name, float ms) override;
  [[nodiscard]] const nb::object& target() const { return m_target; }
  /// Raises the callback's exception of the last enqueue, if any.
  void rethrow();

 private:
  nb::object m_target;
  std::unique_ptr<nb::python_error> m_error;
};

}  // namespace mlprt::python
