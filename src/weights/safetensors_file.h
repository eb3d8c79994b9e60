#pragma once
// .safetensors: an 8-byte little-endian header length, a JSON header
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data. Every size and offset is checked against the bytes present.

#include <cstdint>
#include <span>
#include <string>

#include "mlprt/status.h"
#include "weights/named_tensors.h"

namespace mlprt::weights {

Result<NamedTensors> read_safetensors(std::span<const uint8_t> bytes, const std::string& source);

}  // namespace mlprt::weights
