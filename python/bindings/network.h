#pragma once
// The network a Builder creates empty and an OnnxParser fills, as in TensorRT.

#include <memory>
#include <string>
#include <vector>

#include "bindings.h"
#include "mlprt/network.h"

namespace mlprt::python {

struct NetworkDefinition {
  std::unique_ptr<Network> network;  ///< empty until parsed
  uint32_t flags = 0;

  /// The parsed network, or an InvalidArgumentError saying it is still empty.
  const Network& get(const char* caller) const;
};

}  // namespace mlprt::python
