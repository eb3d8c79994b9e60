#pragma once
// ONNX (protobuf) -> mlprt IR. Checks everything it can before any build work starts.

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "ir/graph.h"
#include "mlprt/status.h"

namespace mlprt::onnx_import {

/// ONNX ops the importer accepts (default domain). Anything else is refused with a message that
/// names the op, its node, the model's opset and this list.
std::string supported_ops_list();

Result<ir::Graph> import_onnx_file(const std::filesystem::path& path);
Result<ir::Graph> import_onnx_bytes(std::span<const uint8_t> bytes, const std::string& source_name);

}  // namespace mlprt::onnx_import
