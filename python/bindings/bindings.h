#pragma once
// Shared by the binding files: one bind_* function per public header, the conversions between
// Python objects and mlprt's types, and the error translation.

#include <nanobind/nanobind.h>

#include <cstdint>
#include <string>

#include "mlprt/status.h"
#include "mlprt/tensor.h"

namespace mlprt::python {

namespace nb = nanobind;

void bind_errors(nb::module_& m);
void bind_tensor(nb::module_& m);
void bind_logger(nb::module_& m);
void bind_network(nb::module_& m);
void bind_builder(nb::module_& m);
void bind_engine(nb::module_& m);
void bind_profiler(nb::module_& m);
void bind_execution_context(nb::module_& m);
void bind_refitter(nb::module_& m);

/// Which call a Status came from: decides between mlprt.ModelError and mlprt.PlanError for
/// corrupt data, which both report as kCorruptData.
enum class ErrorSource { kGeneral, kModel, kPlan };

/// A failed Status on its way to Python; translated to the mlprt.Error hierarchy.
struct StatusError {
  Status status;
  ErrorSource source = ErrorSource::kGeneral;
};

/// Throws StatusError (-> mlprt.Error subclass) unless `status` is OK.
void throw_if_error(const Status& status, ErrorSource source = ErrorSource::kGeneral);
template <typename T>
T value_or_throw(Result<T> result, ErrorSource source = ErrorSource::kGeneral) {
  if (!result) throw_if_error(result.status(), source);
  return std::move(result).value();
}
[[noreturn]] void throw_error(StatusCode code, const std::string& message);

/// A shape from any sequence of ints (tuple, list, torch.Size, trt Dims).
Dims to_dims(nb::handle sequence, const char* what);
nb::tuple to_tuple(const Dims& dims);
/// A CUDA stream from None (nullptr: the context's own, waited for), an int, or an object with
/// `cuda_stream` (torch), `ptr` (cupy) or `__int__` (cuda-python's cudaStream_t).
void* to_stream(nb::handle stream);
/// cudaStreamLegacy's value (the bindings do not include CUDA's headers).
inline void* const kLegacyDefaultStream = reinterpret_cast<void*>(0x1);
/// A raw stream handle from Python: 0 becomes kLegacyDefaultStream.
void* from_raw_stream(void* handle);
/// An address from an int or anything with `__int__` / `__index__`.
void* to_pointer(nb::handle pointer, const char* what);

}  // namespace mlprt::python
