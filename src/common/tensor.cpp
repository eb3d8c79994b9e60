#include "mlprt/tensor.h"

#include <charconv>
#include <cstring>
#include <limits>

#include "common/check.h"

namespace mlprt {

std::string_view to_string(DataType type) noexcept {
  switch (type) {
    case DataType::kFloat32: return "float32";
    case DataType::kFloat16: return "float16";
    case DataType::kBFloat16: return "bfloat16";
    case DataType::kFloat64: return "float64";
    case DataType::kInt64: return "int64";
    case DataType::kInt32: return "int32";
    case DataType::kInt8: return "int8";
    case DataType::kUInt8: return "uint8";
    case DataType::kBool: return "bool";
  }
  return "unknown";
}

size_t element_size(DataType type) noexcept {
  switch (type) {
    case DataType::kFloat64:
    case DataType::kInt64: return 8;
    case DataType::kFloat32:
    case DataType::kInt32: return 4;
    case DataType::kFloat16:
    case DataType::kBFloat16: return 2;
    case DataType::kInt8:
    case DataType::kUInt8:
    case DataType::kBool: return 1;
  }
  return 0;
}

std::string to_string(const Dims& dims) {
  if (dims.empty()) return "scalar";
  std::string out;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) out += 'x';
    out += std::to_string(dims[i]);
  }
  return out;
}

Result<Dims> parse_dims(std::string_view text) {
  if (text.empty()) {
    return make_error(StatusCode::kInvalidArgument, "empty shape: expected dims like 8x784");
  }
  Dims dims;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find_first_of("x,", pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view part = text.substr(pos, end - pos);
    int64_t value = 0;
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || ec != std::errc() || ptr != part.data() + part.size() || value < 0) {
      return make_error(StatusCode::kInvalidArgument, "bad shape '", text, "': '", part,
                        "' is not a non-negative integer (expected dims like 8x784)");
    }
    dims.push_back(value);
    pos = end + 1;
  }
  return dims;
}

Result<int64_t> volume(const Dims& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) {
      return make_error(StatusCode::kInvalidArgument, "shape ", to_string(dims),
                        " has a negative or dynamic dimension");
    }
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) {
      return make_error(StatusCode::kInvalidArgument, "shape ", to_string(dims),
                        " has more elements than fit in 64 bits");
    }
    n *= d;
  }
  return n;
}

Result<Tensor> Tensor::zeros(DataType dtype, Dims dims) {
  MLPRT_ASSIGN_OR_RETURN(int64_t n, volume(dims));
  constexpr int64_t kMaxBytes = int64_t{1} << 40;
  if (n > kMaxBytes / static_cast<int64_t>(element_size(dtype))) {
    return make_error(StatusCode::kInvalidArgument, "tensor of shape ", to_string(dims),
                      " would need more than 1 TiB");
  }
  Tensor t;
  t.m_dtype = dtype;
  t.m_dims = std::move(dims);
  t.m_num_elements = n;
  t.m_storage.assign(static_cast<size_t>(n) * element_size(dtype), std::byte{0});
  return t;
}

Result<Tensor> Tensor::from_floats(Dims dims, std::span<const float> values) {
  MLPRT_ASSIGN_OR_RETURN(Tensor t, zeros(DataType::kFloat32, std::move(dims)));
  if (static_cast<int64_t>(values.size()) != t.num_elements()) {
    return make_error(StatusCode::kInvalidArgument, "shape ", to_string(t.dims()), " holds ",
                      t.num_elements(), " values but ", values.size(), " were given");
  }
  if (!values.empty()) std::memcpy(t.data(), values.data(), values.size_bytes());
  return t;
}

}  // namespace mlprt
