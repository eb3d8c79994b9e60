#pragma once
// NumPy .npy files (format versions 1, 2 and 3): reading float32/float64/float16 arrays as
// float32, writing float32 arrays. Only little-endian, C-order arrays are accepted; every other
// file is refused with a message naming the file and what is wrong with it.

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "mlprt/status.h"
#include "mlprt/tensor.h"

namespace mlprt::cli {

struct NpyArray {
  Dims dims;                  ///< () is a scalar
  std::vector<float> values;  ///< C order
  std::string source_dtype;   ///< the file's descr, e.g. "<f8"
};

/// Parses an in-memory .npy; `source_name` is used in messages.
[[nodiscard]] Result<NpyArray> parse_npy(std::span<const uint8_t> bytes,
                                         const std::string& source_name);
[[nodiscard]] Result<NpyArray> read_npy(const std::filesystem::path& path);

/// A complete '<f4' .npy file (version 1, or 2 when the header needs it).
[[nodiscard]] Result<std::vector<uint8_t>> encode_npy(const Dims& dims,
                                                      std::span<const float> values);

}  // namespace mlprt::cli
