// STUB: replaced by the ONNX importer implementation.
#include "onnx/onnx_importer.h"
#include "common/check.h"
namespace mlprt::onnx_import {
std::string supported_ops_list() { return ""; }
Result<ir::Graph> import_onnx_file(const std::filesystem::path&) { return Status(StatusCode::kUnsupported, "not implemented"); }
Result<ir::Graph> import_onnx_bytes(std::span<const uint8_t>, const std::string&) { return Status(StatusCode::kUnsupported, "not implemented"); }
}
