#include "onnx/onnx_tensor.h"

#include <cstring>
#include <limits>

#include "common/check.h"

namespace mlprt::onnx_import {
namespace {

// Typed-field payloads: copies `count` values of type Src into `out` as Dst.
template <typename Dst, typename Field>
void append_as(const Field& field, std::vector<std::byte>& out) {
  out.resize(static_cast<size_t>(field.size()) * sizeof(Dst));
  for (int i = 0; i < field.size(); ++i) {
    const auto v = static_cast<Dst>(field.Get(i));
    std::memcpy(out.data() + static_cast<size_t>(i) * sizeof(Dst), &v, sizeof(Dst));
  }
}

}  // namespace

std::string onnx_dtype_name(int32_t onnx_type) {
  if (onnx::TensorProto_DataType_IsValid(onnx_type)) {
    return onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(onnx_type));
  }
  return "type " + std::to_string(onnx_type);
}

Result<DataType> convert_dtype(int32_t onnx_type, const std::string& what) {
  switch (onnx_type) {
    case onnx::TensorProto_DataType_FLOAT: return DataType::kFloat32;
    case onnx::TensorProto_DataType_DOUBLE: return DataType::kFloat64;
    case onnx::TensorProto_DataType_FLOAT16: return DataType::kFloat16;
    case onnx::TensorProto_DataType_BFLOAT16: return DataType::kBFloat16;
    case onnx::TensorProto_DataType_INT64: return DataType::kInt64;
    case onnx::TensorProto_DataType_INT32: return DataType::kInt32;
    case onnx::TensorProto_DataType_INT8: return DataType::kInt8;
    case onnx::TensorProto_DataType_UINT8: return DataType::kUInt8;
    case onnx::TensorProto_DataType_BOOL: return DataType::kBool;
    default:
      return make_error(StatusCode::kUnsupported, what, ": data type ",
                        onnx_dtype_name(onnx_type),
                        " is not supported; supported: FLOAT, DOUBLE, FLOAT16, BFLOAT16, INT64, "
                        "INT32, INT8, UINT8, BOOL");
  }
}

Result<ir::Constant> convert_tensor(const onnx::TensorProto& tensor, const std::string& what) {
  if (tensor.data_location() == onnx::TensorProto_DataLocation_EXTERNAL) {
    return make_error(StatusCode::kUnsupported, what,
                      ": data is stored in an external file; external data is not supported "
                      "yet (save the model with its weights inside the .onnx file)");
  }
  ir::Constant c;
  MLPRT_ASSIGN_OR_RETURN(c.dtype, convert_dtype(tensor.data_type(), what));
  int64_t count = 1;
  for (int64_t d : tensor.dims()) {
    if (d < 0) {
      return make_error(StatusCode::kCorruptData, what, ": negative dimension ", d);
    }
    c.dims.push_back(d);
    if (d != 0 && count > std::numeric_limits<int64_t>::max() / d) {
      return make_error(StatusCode::kCorruptData, what, ": element count overflows");
    }
    count *= d;
  }
  const size_t elem = element_size(c.dtype);
  const auto expected_bytes = static_cast<uint64_t>(count) * elem;

  if (tensor.has_raw_data()) {
    const std::string& raw = tensor.raw_data();
    if (raw.size() != expected_bytes) {
      return make_error(StatusCode::kCorruptData, what, ": shape ", to_string(c.dims),
                        " needs ", expected_bytes, " bytes of ", to_string(c.dtype),
                        " but raw_data holds ", raw.size(), " bytes");
    }
    c.data.resize(raw.size());
    if (!raw.empty()) std::memcpy(c.data.data(), raw.data(), raw.size());
    return c;
  }

  int64_t found = 0;
  switch (c.dtype) {
    case DataType::kFloat32:
      found = tensor.float_data_size();
      append_as<float>(tensor.float_data(), c.data);
      break;
    case DataType::kFloat64:
      found = tensor.double_data_size();
      append_as<double>(tensor.double_data(), c.data);
      break;
    case DataType::kInt64:
      found = tensor.int64_data_size();
      append_as<int64_t>(tensor.int64_data(), c.data);
      break;
    case DataType::kInt32:
      found = tensor.int32_data_size();
      append_as<int32_t>(tensor.int32_data(), c.data);
      break;
    case DataType::kInt8:
      found = tensor.int32_data_size();
      append_as<int8_t>(tensor.int32_data(), c.data);
      break;
    case DataType::kUInt8:
    case DataType::kBool:
      found = tensor.int32_data_size();
      append_as<uint8_t>(tensor.int32_data(), c.data);
      break;
    case DataType::kFloat16:
    case DataType::kBFloat16:
      // ONNX stores the 16-bit patterns in int32_data.
      found = tensor.int32_data_size();
      append_as<uint16_t>(tensor.int32_data(), c.data);
      break;
  }
  if (found != count) {
    return make_error(StatusCode::kCorruptData, what, ": shape ", to_string(c.dims), " needs ",
                      count, " values of ", to_string(c.dtype), " but the tensor holds ", found);
  }
  return c;
}

}  // namespace mlprt::onnx_import
