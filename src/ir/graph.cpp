#include "ir/graph.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "mlprt/float16.h"

namespace mlprt::ir {

Dims to_dims(const Shape& shape) {
  Dims dims;
  dims.reserve(shape.size());
  for (const Dim& d : shape) dims.push_back(d.is_static() ? d.value : kDynamicDim);
  return dims;
}

Shape from_dims(const Dims& dims) {
  Shape shape;
  shape.reserve(dims.size());
  for (int64_t d : dims) shape.push_back(Dim{d < 0 ? -1 : d, {}});
  return shape;
}

std::string to_string(const Shape& shape) {
  if (shape.empty()) return "scalar";
  std::string out;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += 'x';
    if (shape[i].is_static()) {
      out += std::to_string(shape[i].value);
    } else {
      out += shape[i].symbol.empty() ? "?" : shape[i].symbol;
    }
  }
  return out;
}

int64_t Constant::num_elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

namespace {

template <typename T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

double element_as_double(DataType dtype, const std::byte* p) {
  switch (dtype) {
    case DataType::kFloat32: return load<float>(p);
    case DataType::kFloat64: return load<double>(p);
    case DataType::kFloat16: return half_to_float(load<uint16_t>(p));
    case DataType::kBFloat16: return bf16_to_float(load<uint16_t>(p));
    case DataType::kInt64: return static_cast<double>(load<int64_t>(p));
    case DataType::kInt32: return load<int32_t>(p);
    case DataType::kInt8: return load<int8_t>(p);
    case DataType::kUInt8: return load<uint8_t>(p);
    case DataType::kBool: return load<uint8_t>(p) ? 1.0 : 0.0;
  }
  return 0.0;
}

}  // namespace

std::vector<double> Constant::to_doubles() const {
  const size_t step = element_size(dtype);
  const size_t n = step ? data.size() / step : 0;
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = element_as_double(dtype, data.data() + i * step);
  return out;
}

double Constant::value_at(size_t i) const {
  return element_as_double(dtype, data.data() + i * element_size(dtype));
}

std::vector<int64_t> Constant::to_int64s() const {
  const size_t step = element_size(dtype);
  const size_t n = step ? data.size() / step : 0;
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    const std::byte* p = data.data() + i * step;
    switch (dtype) {
      case DataType::kInt64: out[i] = load<int64_t>(p); break;
      case DataType::kInt32: out[i] = load<int32_t>(p); break;
      default: {
        // Saturated: a float outside int64's range (or NaN) cannot be cast without UB.
        const double v = element_as_double(dtype, p);
        out[i] = std::isnan(v)       ? 0
                 : v >= 0x1p63       ? std::numeric_limits<int64_t>::max()
                 : v < -0x1p63       ? std::numeric_limits<int64_t>::min()
                                     : static_cast<int64_t>(v);
        break;
      }
    }
  }
  return out;
}

Constant Constant::from_floats(Dims dims, const std::vector<float>& values) {
  Constant c;
  c.dtype = DataType::kFloat32;
  c.dims = std::move(dims);
  c.data.resize(values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(c.data.data(), values.data(), c.data.size());
  return c;
}

Constant Constant::from_int64s(Dims dims, const std::vector<int64_t>& values) {
  Constant c;
  c.dtype = DataType::kInt64;
  c.dims = std::move(dims);
  c.data.resize(values.size() * sizeof(int64_t));
  if (!values.empty()) std::memcpy(c.data.data(), values.data(), c.data.size());
  return c;
}

bool Node::has_attribute(const std::string& key) const { return attributes.count(key) != 0; }

int64_t Node::get_int(const std::string& key, int64_t fallback) const {
  auto it = attributes.find(key);
  if (it == attributes.end()) return fallback;
  if (const auto* v = std::get_if<int64_t>(&it->second)) return *v;
  return fallback;
}

double Node::get_float(const std::string& key, double fallback) const {
  auto it = attributes.find(key);
  if (it == attributes.end()) return fallback;
  if (const auto* v = std::get_if<double>(&it->second)) return *v;
  if (const auto* i = std::get_if<int64_t>(&it->second)) return static_cast<double>(*i);
  return fallback;
}

std::string Node::get_string(const std::string& key, const std::string& fallback) const {
  auto it = attributes.find(key);
  if (it == attributes.end()) return fallback;
  if (const auto* v = std::get_if<std::string>(&it->second)) return *v;
  return fallback;
}

std::vector<int64_t> Node::get_ints(const std::string& key) const {
  auto it = attributes.find(key);
  if (it == attributes.end()) return {};
  if (const auto* v = std::get_if<std::vector<int64_t>>(&it->second)) return *v;
  return {};
}

const Constant* Graph::find_constant(const std::string& tensor) const {
  auto it = constants.find(tensor);
  return it == constants.end() ? nullptr : &it->second;
}

const TensorInfo* Graph::find_input(const std::string& tensor) const {
  for (const TensorInfo& t : inputs) {
    if (t.name == tensor) return &t;
  }
  return nullptr;
}

std::optional<size_t> Graph::producer_of(const std::string& tensor) const {
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto& outs = nodes[i].outputs;
    if (std::find(outs.begin(), outs.end(), tensor) != outs.end()) return i;
  }
  return std::nullopt;
}

size_t Graph::use_count(const std::string& tensor) const {
  size_t n = 0;
  for (const Node& node : nodes) n += std::count(node.inputs.begin(), node.inputs.end(), tensor);
  for (const TensorInfo& out : outputs) n += out.name == tensor ? 1 : 0;
  return n;
}

}  // namespace mlprt::ir
