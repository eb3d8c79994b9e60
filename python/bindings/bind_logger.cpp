// logger.h: TensorRT's Logger / ILogger. mlprt logs process-wide, so the last Logger given to a
// Builder, Runtime or OnnxParser decides the severity and, for ILogger subclasses that define
// log(severity, message), where messages go.
#include "bind_logger.h"

#include <algorithm>
#include <string>
#include <vector>

#include "mlprt/logger.h"

namespace mlprt::python {
namespace {

std::vector<PyObject*> g_loggers;  // every ILogger subclass installed; guarded by the GIL

Severity to_mlprt(LoggerSeverity severity) {
  switch (severity) {
    case LoggerSeverity::kInternalError:
    case LoggerSeverity::kError:
      return Severity::kError;
    case LoggerSeverity::kWarning:
      return Severity::kWarning;
    case LoggerSeverity::kInfo:
      return Severity::kInfo;
    case LoggerSeverity::kVerbose:
      return Severity::kVerbose;
  }
  return Severity::kWarning;
}

LoggerSeverity from_mlprt(Severity severity) {
  switch (severity) {
    case Severity::kError:
      return LoggerSeverity::kError;
    case Severity::kWarning:
      return LoggerSeverity::kWarning;
    case Severity::kInfo:
      return LoggerSeverity::kInfo;
    case Severity::kVerbose:
      return LoggerSeverity::kVerbose;
  }
  return LoggerSeverity::kWarning;
}

}  // namespace

void install_logger(nb::handle logger) {
  if (logger.is_none()) return;
  if (!nb::isinstance<ILogger>(logger))
    throw_error(StatusCode::kInvalidArgument,
                std::string("expected an mlprt.Logger or ILogger subclass, got ") +
                    nb::type_name(logger.type()).c_str());
  ILogger& base = nb::cast<ILogger&>(logger);
  set_log_severity(to_mlprt(base.min_severity));
  if (logger.type().is(nb::type<Logger>()) || !nb::hasattr(logger, "log")) {
    set_log_callback({});
    return;
  }
  // The callback may run on any thread and outlive this call: the logger stays referenced
  // until interpreter exit, when the callback is removed first (see bind_logger).
  PyObject* target = logger.ptr();
  if (std::find(g_loggers.begin(), g_loggers.end(), target) == g_loggers.end()) {
    Py_INCREF(target);
    g_loggers.push_back(target);
  }
  set_log_callback([target](Severity severity, std::string_view message) {
    if (!Py_IsInitialized()) return;
    nb::gil_scoped_acquire gil;
    try {
      nb::handle(target).attr("log")(from_mlprt(severity), nb::str(message.data(), message.size()));
    } catch (nb::python_error& e) {
      e.discard_as_unraisable("mlprt logger callback");
    }
  });
}

void bind_logger(nb::module_& m) {
  nb::class_<ILogger> ilogger(m, "ILogger",
                              "Base of loggers. Subclass it and define log(severity, message) "
                              "to receive mlprt's messages (from any thread).");
  nb::enum_<LoggerSeverity>(ilogger, "Severity", nb::is_arithmetic(),
                            "Message severity, most severe first.")
      .value("INTERNAL_ERROR", LoggerSeverity::kInternalError)
      .value("ERROR", LoggerSeverity::kError)
      .value("WARNING", LoggerSeverity::kWarning)
      .value("INFO", LoggerSeverity::kInfo)
      .value("VERBOSE", LoggerSeverity::kVerbose)
      .export_values();
  ilogger.def(nb::init<>())
      .def_rw("min_severity", &ILogger::min_severity,
              "Messages less severe than this are dropped (default WARNING).");
  nb::class_<Logger, ILogger>(m, "Logger",
                              "Prints mlprt's messages to stderr ('mlprt: warning: ...'). "
                              "Logger(Logger.INFO) also shows the build's progress.")
      .def(nb::init<LoggerSeverity>(), nb::arg("min_severity") = LoggerSeverity::kWarning);
  nb::module_::import_("atexit").attr("register")(nb::cpp_function([] {
    set_log_callback({});
    for (PyObject* logger : g_loggers) Py_DECREF(logger);
    g_loggers.clear();
  }));
}

}  // namespace mlprt::python
