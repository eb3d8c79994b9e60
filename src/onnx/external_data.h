#pragma once
// ONNX external data (TensorProto.data_location = EXTERNAL): weights stored in a file beside
// the model, named by the keys "location", "offset" and "length".

#include <filesystem>
#include <string>

#include "mlprt/status.h"
#include "onnx/onnx.pb.h"

namespace mlprt::onnx_import {

/// A copy of `tensor` with its external bytes read into raw_data. Only files inside `folder`
/// (the model's folder) are read: absolute locations, '..' components and symlinks that lead
/// out of the folder are refused, as are offset/length past the file's end. `folder` empty
/// (a model read from memory) is an error. `what` names the tensor in messages.
Result<onnx::TensorProto> load_external(const onnx::TensorProto& tensor, const std::string& what,
                                        const std::filesystem::path& folder);

}  // namespace mlprt::onnx_import
