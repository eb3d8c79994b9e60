// profiler.h: TensorRT's IProfiler, and the adapter IExecutionContext.profiler installs.
#include "bind_profiler.h"

#include <string>

namespace mlprt::python {

void PyProfiler::report_layer_time(std::string_view layer_name, float ms) {
  nb::gil_scoped_acquire gil;
  if (m_error) return;  // the first failure of this call is raised after it
  try {
    m_target.attr("report_layer_time")(nb::str(layer_name.data(), layer_name.size()), ms);
  } catch (nb::python_error& e) {
    m_error = std::make_unique<nb::python_error>(std::move(e));
  }
}

void PyProfiler::rethrow() {
  if (!m_error) return;
  nb::python_error error = std::move(*m_error);
  m_error.reset();
  throw error;
}

void bind_profiler(nb::module_& m) {
  nb::class_<IProfiler>(m, "IProfiler",
                        "Base of per-layer profilers (TensorRT's IProfiler). Subclass it, define "
                        "report_layer_time(layer_name, ms), and set an instance as "
                        "IExecutionContext.profiler: every execution then reports each layer's "
                        "time in milliseconds, in the order the layers run, before it returns.")
      .def(nb::init<>());
}

}  // namespace mlprt::python
