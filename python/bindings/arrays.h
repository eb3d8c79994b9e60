#pragma once
// Arrays from other libraries, seen through DLPack, the buffer protocol or
// __cuda_array_interface__, and new arrays of the same library for outputs.

#include <cstdint>
#include <string>

#include "bindings.h"

namespace mlprt::python {

enum class ArrayKind : uint8_t { kNumpy, kTorch, kCupy, kOther };

struct ArrayRef {
  nb::object object;  ///< the array whose memory is bound (kept alive for the call)
  ArrayKind kind = ArrayKind::kOther;
  void* data = nullptr;
  Dims dims;
  bool dtype_known = false;
  DataType dtype = DataType::kFloat32;
  std::string dtype_name;  ///< when !dtype_known: as the library says it, for messages
  bool on_device = false;  ///< CUDA device memory (pinned host memory counts as host)
  int device_id = 0;
  bool contiguous = true;
};

/// Views `object`'s memory; an InvalidArgumentError naming `what` if it is not an array.
ArrayRef import_array(nb::handle object, const std::string& what);
/// A C-contiguous copy made by the array's own library (numpy / torch / cupy); others refuse.
ArrayRef contiguous_copy(const ArrayRef& array, const std::string& what);
/// A new uninitialized array of `like`'s library and device (see IExecutionContext.infer).
ArrayRef allocate_like(const ArrayRef& like, nb::handle shape, DataType dtype,
                       const std::string& what);
/// The stream a library's GPU arrays are ordered on now (torch's / cupy's current stream),
/// nullptr for host arrays and other libraries.
void* current_stream_of(const ArrayRef& array);

}  // namespace mlprt::python
