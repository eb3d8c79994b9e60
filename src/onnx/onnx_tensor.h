#pragma once
// ONNX TensorProto / type helpers shared by the importer (internal).

#include <string>

#include "ir/graph.h"
#include "mlprt/status.h"
#include "onnx/onnx.pb.h"

namespace mlprt::onnx_import {

/// Our DataType for an ONNX TensorProto.DataType, or an error naming `what` and the ONNX type.
Result<DataType> convert_dtype(int32_t onnx_type, const std::string& what);
/// ONNX's name for a TensorProto.DataType ("FLOAT", "INT64", ...).
std::string onnx_dtype_name(int32_t onnx_type);

/// TensorProto -> dense row-major Constant. `what` names the tensor in messages, e.g.
/// "model.onnx: initializer 'fc1.weight'".
Result<ir::Constant> convert_tensor(const onnx::TensorProto& tensor, const std::string& what);

}  // namespace mlprt::onnx_import
