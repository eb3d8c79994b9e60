#pragma once
// ONNX strings are UTF-8. The names of a model end up in JSON (the plan, inspect) and in
// messages, so the importer refuses a model whose names are not.

#include <string>
#include <string_view>

#include "mlprt/status.h"
#include "onnx/onnx.pb.h"

namespace mlprt::onnx_import {

/// Well-formed UTF-8: no overlong forms, surrogates, truncated sequences or code points past
/// U+10FFFF.
[[nodiscard]] bool is_utf8(std::string_view text);

/// kCorruptData naming the kind of name (graph, node N, initializer, ...) that is not UTF-8.
[[nodiscard]] Status check_utf8(const onnx::ModelProto& model, const std::string& source);

}  // namespace mlprt::onnx_import
