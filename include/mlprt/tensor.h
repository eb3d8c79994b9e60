#pragma once
/// @file tensor.h
/// Data types, shapes and an owning host tensor.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mlprt/status.h"

namespace mlprt {

enum class DataType : uint8_t {
  kFloat32 = 0,
  kFloat16,
  kBFloat16,
  kFloat64,
  kInt64,
  kInt32,
  kInt8,
  kUInt8,
  kBool,
};

/// "float32", "float16", ...
[[nodiscard]] std::string_view to_string(DataType type) noexcept;
/// Bytes per element.
[[nodiscard]] size_t element_size(DataType type) noexcept;

/// A shape. In descriptions (TensorDesc) a dimension of -1 is dynamic; concrete shapes are >= 0.
using Dims = std::vector<int64_t>;
inline constexpr int64_t kDynamicDim = -1;

/// "8x784" (a scalar is "scalar", a dynamic dim is "-1").
[[nodiscard]] std::string to_string(const Dims& dims);
/// Parses "8x784" (also "8,784"); the error says what is wrong with `text`.
[[nodiscard]] Result<Dims> parse_dims(std::string_view text);
/// Product of dims; error if any dim is negative or the product overflows int64.
[[nodiscard]] Result<int64_t> volume(const Dims& dims);

enum class TensorIOMode : uint8_t { kInput, kOutput };

/// Describes one engine input or output.
struct TensorDesc {
  std::string name;
  TensorIOMode mode = TensorIOMode::kInput;
  DataType dtype = DataType::kFloat32;
  Dims dims;  ///< -1 for dynamic dims
};

/// An owning, contiguous, row-major host tensor.
class Tensor {
 public:
  Tensor() = default;
  /// Zero-initialized tensor; error if dims are negative or too large.
  static Result<Tensor> zeros(DataType dtype, Dims dims);
  /// Copies `values` (size must equal volume(dims)).
  static Result<Tensor> from_floats(Dims dims, std::span<const float> values);

  [[nodiscard]] DataType dtype() const noexcept { return m_dtype; }
  [[nodiscard]] const Dims& dims() const noexcept { return m_dims; }
  [[nodiscard]] int64_t num_elements() const noexcept { return m_num_elements; }
  [[nodiscard]] size_t size_bytes() const noexcept { return m_storage.size(); }
  [[nodiscard]] void* data() noexcept { return m_storage.data(); }
  [[nodiscard]] const void* data() const noexcept { return m_storage.data(); }
  /// Typed views; valid only when dtype() matches T.
  template <typename T>
  [[nodiscard]] std::span<T> as() noexcept {
    return {reinterpret_cast<T*>(m_storage.data()), m_storage.size() / sizeof(T)};
  }
  template <typename T>
  [[nodiscard]] std::span<const T> as() const noexcept {
    return {reinterpret_cast<const T*>(m_storage.data()), m_storage.size() / sizeof(T)};
  }

 private:
  DataType m_dtype = DataType::kFloat32;
  Dims m_dims;
  int64_t m_num_elements = 0;
  std::vector<std::byte> m_storage;
};

}  // namespace mlprt
