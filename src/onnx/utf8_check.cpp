#include "onnx/utf8_check.h"

#include <cstdint>
#include <string>

#include "common/check.h"

namespace mlprt::onnx_import {

bool is_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t extra = 0;
    uint32_t code = 0;
    if ((c & 0xe0) == 0xc0) {
      extra = 1;
      code = c & 0x1fu;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      code = c & 0x0fu;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      code = c & 0x07u;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      code = (code << 6) | (next & 0x3fu);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMin[extra] || (code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff) return false;
    i += extra + 1;
  }
  return true;
}

Status check_utf8(const onnx::ModelProto& model, const std::string& source) {
  auto bad = [&](const std::string& what) {
    return make_error(StatusCode::kCorruptData, source, ": ", what,
                      " is not valid UTF-8 (ONNX strings are UTF-8)");
  };
  const onnx::GraphProto& g = model.graph();
  if (!is_utf8(g.name())) return bad("the graph name");
  if (!is_utf8(model.producer_name())) return bad("the producer name");
  for (const auto* list : {&g.input(), &g.output(), &g.value_info()}) {
    for (const onnx::ValueInfoProto& v : *list) {
      if (!is_utf8(v.name())) return bad("a graph input, output or value_info name");
    }
  }
  for (const onnx::TensorProto& t : g.initializer()) {
    if (!is_utf8(t.name())) return bad("an initializer name");
  }
  for (int n = 0; n < g.node_size(); ++n) {
    const onnx::NodeProto& node = g.node(n);
    const std::string where = "node " + std::to_string(n);
    if (!is_utf8(node.name()) || !is_utf8(node.op_type()) || !is_utf8(node.domain())) {
      return bad("the name, op type or domain of " + where);
    }
    for (const auto* list : {&node.input(), &node.output()}) {
      for (const std::string& name : *list) {
        if (!is_utf8(name)) return bad("a tensor name of " + where);
      }
    }
    for (const onnx::AttributeProto& attr : node.attribute()) {
      if (!is_utf8(attr.name())) return bad("an attribute name of " + where);
    }
  }
  return Status::ok();
}

}  // namespace mlprt::onnx_import
