// mlprt._mlprt: the C++ API for Python. python/package/mlprt/__init__.py re-exports it.
#include "bindings.h"
#include "mlprt/version.h"

NB_MODULE(_mlprt, m) {
  using namespace mlprt::python;
  m.doc() = "mlprt's C++ API (engines, builder, ONNX import) for Python; import mlprt instead.";
  m.attr("__version__") = mlprt::kVersionString;
  m.attr("PLAN_FORMAT_VERSION") = mlprt::kPlanFormatVersion;
  bind_errors(m);
  bind_tensor(m);
  bind_logger(m);
  bind_network(m);
  bind_builder(m);
  bind_engine(m);
  bind_profiler(m);
  bind_execution_context(m);
  bind_refitter(m);
}
