#pragma once
// Tensors by name, as a weight file (.pth state_dict, .safetensors, an ONNX model's
// initializers) holds them. Row-major, dense, little-endian: ir::Constant.

#include <map>
#include <string>

#include "ir/graph.h"

namespace mlprt::weights {

using NamedTensors = std::map<std::string, ir::Constant>;

}  // namespace mlprt::weights
