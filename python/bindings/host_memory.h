#pragma once
// IHostMemory: read-only bytes with the buffer protocol (plans, timing caches).

#include <cstdint>
#include <memory>
#include <vector>

#include "bindings.h"

namespace mlprt::python {

struct HostMemory {
  std::vector<uint8_t> bytes;
  Py_ssize_t shape = 0;  ///< the buffer view's shape and stride live here
  Py_ssize_t strides = 1;
};

std::unique_ptr<HostMemory> make_host_memory(std::vector<uint8_t> bytes);

}  // namespace mlprt::python
