#include "weights/safetensors_file.h"

#include <nlohmann/json.hpp>

#include "common/check.h"

namespace mlprt::weights {
namespace {

using Json = nlohmann::json;

struct SafeType {
  const char* name;
  DataType dtype;
};
constexpr SafeType kTypes[] = {{"F32", DataType::kFloat32}, {"F16", DataType::kFloat16},
                               {"BF16", DataType::kBFloat16}, {"F64", DataType::kFloat64},
                               {"I64", DataType::kInt64},   {"I32", DataType::kInt32},
                               {"I8", DataType::kInt8},     {"U8", DataType::kUInt8},
                               {"BOOL", DataType::kBool}};

}  // namespace

Result<NamedTensors> read_safetensors(std::span<const uint8_t> bytes, const std::string& source) {
  auto bad = [&](const std::string& what) {
    return make_error(StatusCode::kCorruptData, "'", source, "' is not a valid .safetensors file: ", what);
  };
  if (bytes.size() < 8) return bad("it has " + std::to_string(bytes.size()) + " bytes, fewer than the 8-byte header length");
  uint64_t header = 0;
  for (size_t i = 8; i-- > 0;) header = header << 8 | bytes[i];
  if (header > bytes.size() - 8) {
    return bad("the header length " + std::to_string(header) + " runs past the file's " +
               std::to_string(bytes.size()) + " bytes (truncated?)");
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), header);
  // Nesting is bounded before parsing (the parser recurses): a header is two levels deep.
  int depth = 0;
  for (char ch : text) {
    depth += (ch == '{' || ch == '[') - (ch == '}' || ch == ']');
    if (depth > 8) return bad("the JSON header is nested more than 8 levels deep");
  }
  Json root;
  try {
    root = Json::parse(text);
  } catch (const Json::exception& e) {
    return bad(std::string("the header is not JSON (") + e.what() + ")");
  }
  if (!root.is_object()) return bad("the header is not a JSON object");
  const std::span<const uint8_t> data = bytes.subspan(8 + header);
  NamedTensors out;
  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") continue;
    const std::string where = "tensor '" + name + "'";
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets") ||
        !entry["dtype"].is_string() || !entry["shape"].is_array() || !entry["data_offsets"].is_array() ||
        entry["data_offsets"].size() != 2) {
      return bad(where + " needs dtype (string), shape (array) and data_offsets ([begin, end])");
    }
    ir::Constant c;
    const std::string dtype = entry["dtype"].get<std::string>();
    bool known = false;
    for (const SafeType& t : kTypes) {
      if (dtype == t.name) {
        c.dtype = t.dtype;
        known = true;
      }
    }
    if (!known) {
      return make_error(StatusCode::kUnsupported, "'", source, "': ", where, " has dtype ", dtype,
                        "; supported: F32, F16, BF16, F64, I64, I32, I8, U8, BOOL");
    }
    for (const Json& d : entry["shape"]) {
      if (!d.is_number_unsigned()) return bad(where + " has a shape entry that is not a non-negative integer");
      c.dims.push_back(static_cast<int64_t>(std::min<uint64_t>(d.get<uint64_t>(), uint64_t{1} << 48)));
    }
    const Json& offsets = entry["data_offsets"];
    if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) return bad(where + " has bad data_offsets");
    const uint64_t begin = offsets[0].get<uint64_t>();
    const uint64_t end = offsets[1].get<uint64_t>();
    auto count = volume(c.dims);
    if (!count.is_ok() || *count > (int64_t{1} << 48)) return bad(where + " has an implausible shape");
    const uint64_t size = static_cast<uint64_t>(*count) * element_size(c.dtype);
    if (begin > end || end > data.size() || end - begin != size) {
      return bad(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] for " +
                 std::to_string(size) + " bytes of " + dtype + " [" + to_string(c.dims) + "], the data section has " +
                 std::to_string(data.size()) + " bytes");
    }
    const auto* first = reinterpret_cast<const std::byte*>(data.data() + begin);
    c.data.assign(first, first + size);
    out[name] = std::move(c);
  }
  return out;
}

}  // namespace mlprt::weights
