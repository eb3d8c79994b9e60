// The exception hierarchy rooted at mlprt.Error, and the translation of a failed Status into it.
// Each subclass also derives from the builtin a Python caller would reach for first
// (ShapeError is a ValueError, UnsupportedError a NotImplementedError, ...). The C++ message
// is passed on unchanged; the StatusCode name is the exception's `code` attribute.
#include <Python.h>

#include "bindings.h"

namespace mlprt::python {
namespace {

struct ErrorTypes {
  PyObject* error = nullptr;
  PyObject* shape = nullptr;
  PyObject* model = nullptr;
  PyObject* plan = nullptr;
  PyObject* unsupported = nullptr;
  PyObject* invalid_argument = nullptr;
  PyObject* not_found = nullptr;
  PyObject* io = nullptr;
};
ErrorTypes g_types;  // module-lifetime references, owned by the module's attributes

PyObject* make_type(nb::module_& m, const char* name, const char* doc, PyObject* base,
                    PyObject* builtin) {
  const std::string qualified = std::string("mlprt.") + name;
  PyObject* bases = builtin ? PyTuple_Pack(2, base, builtin) : PyTuple_Pack(1, base);
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases, nullptr);
  Py_DECREF(bases);
  if (!type) throw nb::python_error();
  m.attr(name) = nb::handle(type);
  return type;
}

PyObject* type_for(const StatusError& e) {
  const StatusCode code = e.status.code();
  if (code == StatusCode::kIoError) return g_types.io;
  if (e.source == ErrorSource::kModel && code != StatusCode::kUnsupported) return g_types.model;
  if (e.source == ErrorSource::kPlan) return g_types.plan;
  switch (code) {
    case StatusCode::kOutOfRange:
      return g_types.shape;
    case StatusCode::kUnsupported:
      return g_types.unsupported;
    case StatusCode::kInvalidArgument:
      return g_types.invalid_argument;
    case StatusCode::kNotFound:
      return g_types.not_found;
    case StatusCode::kCorruptData:
    case StatusCode::kVersionMismatch:
    case StatusCode::kHardwareMismatch:
      return g_types.plan;
    default:
      return g_types.error;
  }
}

void raise(const StatusError& e) {
  PyObject* type = type_for(e);
  PyObject* value = PyObject_CallFunction(type, "s", e.status.message().c_str());
  if (!value) return;  // the call set its own error
  PyObject* code = PyUnicode_FromString(to_string(e.status.code()));
  if (code) {
    PyObject_SetAttrString(value, "code", code);
    Py_DECREF(code);
  }
  PyErr_SetObject(type, value);
  Py_DECREF(value);
}

}  // namespace

void throw_if_error(const Status& status, ErrorSource source) {
  if (!status.is_ok()) throw StatusError{status, source};
}

void throw_error(StatusCode code, const std::string& message) {
  throw StatusError{Status(code, message), ErrorSource::kGeneral};
}

void bind_errors(nb::module_& m) {
  g_types.error = make_type(m, "Error",
                            "Base of every error mlprt raises. `str(e)` is mlprt's message (what "
                            "was wrong, where, what is allowed); `e.code` the status code's name.",
                            PyExc_RuntimeError, nullptr);
  g_types.shape = make_type(m, "ShapeError",
                            "A shape outside every optimization profile of the engine, or of the "
                            "wrong rank.",
                            g_types.error, PyExc_ValueError);
  g_types.model = make_type(m, "ModelError",
                            "An ONNX model that cannot be imported: malformed or inconsistent "
                            "(an operator mlprt lacks raises UnsupportedError).",
                            g_types.error, PyExc_ValueError);
  g_types.plan = make_type(m, "PlanError",
                           "A buffer or file that is not a plan this mlprt can load: not a plan, "
                           "truncated, corrupt, another format version or other hardware.",
                           g_types.error, PyExc_ValueError);
  g_types.unsupported = make_type(m, "UnsupportedError",
                                  "A valid request mlprt does not handle (INT8, plugins, a dtype "
                                  "a backend lacks, ...).",
                                  g_types.error, PyExc_NotImplementedError);
  g_types.invalid_argument = make_type(m, "InvalidArgumentError",
                                       "A wrong argument: name, dtype, device, layout or value.",
                                       g_types.error, PyExc_ValueError);
  g_types.not_found =
      make_type(m, "NotFoundError", "A named tensor, profile or file that does not exist.",
                g_types.error, PyExc_LookupError);
  g_types.io = make_type(m, "IoError", "The file system refused a read or write.", g_types.error,
                         PyExc_OSError);
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const StatusError& e) {
      raise(e);
    }
  });
}

}  // namespace mlprt::python
