// Python objects -> shapes, streams and addresses.
#include <Python.h>

#include "bindings.h"

namespace mlprt::python {

Dims to_dims(nb::handle sequence, const char* what) {
  if (!PySequence_Check(sequence.ptr()) || PyUnicode_Check(sequence.ptr()))
    throw_error(StatusCode::kInvalidArgument,
                std::string(what) +
                    ": expected a sequence of ints (tuple, list, torch.Size), got " +
                    nb::type_name(sequence.type()).c_str());
  Dims dims;
  for (nb::handle item : nb::iter(sequence)) {
    PyObject* index = PyNumber_Index(item.ptr());
    if (!index) {
      PyErr_Clear();
      throw_error(StatusCode::kInvalidArgument, std::string(what) +
                                                    ": dimensions must be ints, got " +
                                                    nb::type_name(item.type()).c_str());
    }
    const long long value = PyLong_AsLongLong(index);
    Py_DECREF(index);
    if (value == -1 && PyErr_Occurred()) throw nb::python_error();
    dims.push_back(value);
  }
  return dims;
}

nb::tuple to_tuple(const Dims& dims) {
  nb::list list;
  for (int64_t d : dims) list.append(d);
  return nb::tuple(list);
}

namespace {
void* int_to_pointer(nb::handle value, const char* what) {
  PyObject* number = PyNumber_Index(value.ptr());
  if (!number) {
    PyErr_Clear();
    number = PyNumber_Long(value.ptr());  // cuda-python's handles define __int__ only
  }
  if (!number) {
    PyErr_Clear();
    throw_error(StatusCode::kInvalidArgument, std::string(what) +
                                                  ": expected an int address or handle, got " +
                                                  nb::type_name(value.type()).c_str());
  }
  void* pointer = PyLong_AsVoidPtr(number);
  Py_DECREF(number);
  if (!pointer && PyErr_Occurred()) throw nb::python_error();
  return pointer;
}
}  // namespace

void* to_pointer(nb::handle pointer, const char* what) { return int_to_pointer(pointer, what); }

void* to_stream(nb::handle stream) {
  if (stream.is_none()) return nullptr;
  void* handle = nullptr;
  if (PyLong_Check(stream.ptr()))
    handle = int_to_pointer(stream, "stream");  // the common case
  else if (nb::hasattr(stream, "cuda_stream"))
    handle = int_to_pointer(stream.attr("cuda_stream"), "stream");
  else if (!PyLong_Check(stream.ptr()) && nb::hasattr(stream, "ptr"))
    handle = int_to_pointer(stream.attr("ptr"), "stream");
  else
    handle = int_to_pointer(stream, "stream");
  return from_raw_stream(handle);
}

void* from_raw_stream(void* handle) {
  // Handle 0 from Python is CUDA's legacy default stream (torch's default stream, TensorRT's
  // execute_async_v3(0)): asynchronous there. The C++ API's nullptr means the context's own
  // stream, waited for, so it is passed as cudaStreamLegacy's value.
  return handle == nullptr ? kLegacyDefaultStream : handle;
}

}  // namespace mlprt::python
