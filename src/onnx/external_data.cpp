#include "onnx/external_data.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <optional>

#include "common/check.h"

namespace mlprt::onnx_import {
namespace {

Result<uint64_t> parse_size(const std::string& text, const std::string& key,
                            const std::string& what) {
  uint64_t value = 0;
  bool ok = !text.empty() && text.size() <= 19;
  for (char c : text) {
    ok = ok && c >= '0' && c <= '9';
    if (ok) value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (!ok) {
    return make_error(StatusCode::kCorruptData, what, ": external data ", key, " '", text,
                      "' is not a non-negative integer");
  }
  return value;
}

}  // namespace

Result<onnx::TensorProto> load_external(const onnx::TensorProto& tensor, const std::string& what,
                                        const std::filesystem::path& folder) {
  namespace fs = std::filesystem;
  std::string location;
  uint64_t offset = 0;
  std::optional<uint64_t> length;
  for (const onnx::StringStringEntryProto& entry : tensor.external_data()) {
    if (entry.key() == "location") {
      location = entry.value();
    } else if (entry.key() == "offset") {
      MLPRT_ASSIGN_OR_RETURN(offset, parse_size(entry.value(), "offset", what));
    } else if (entry.key() == "length") {
      MLPRT_ASSIGN_OR_RETURN(length, parse_size(entry.value(), "length", what));
    }
  }
  if (folder.empty()) {
    return make_error(StatusCode::kUnsupported, what, ": data is in the external file '", location,
                      "' but the model was read from memory; load it from its file");
  }
  if (location.empty()) {
    return make_error(StatusCode::kCorruptData, what, ": external data without a 'location' entry");
  }
  const fs::path rel(location);
  if (rel.is_absolute() || rel.has_root_name() || rel.has_root_directory()) {
    return make_error(StatusCode::kInvalidArgument, what, ": external data location '", location,
                      "' is an absolute path; only files inside the model's folder are read");
  }
  for (const fs::path& part : rel) {
    if (part == "..") {
      return make_error(StatusCode::kInvalidArgument, what, ": external data location '", location,
                        "' contains '..'; only files inside the model's folder are read");
    }
  }
  std::error_code ec;
  const fs::path base = fs::canonical(folder, ec);
  if (ec) {
    return make_error(StatusCode::kIoError, what, ": cannot resolve the model's folder '",
                      folder.string(), "': ", ec.message());
  }
  const fs::path file = fs::canonical(base / rel, ec);
  if (ec) {
    return make_error(StatusCode::kNotFound, what, ": external data file '", location,
                      "' not found in '", base.string(), "'");
  }
  // canonical() resolved every symlink: the real file must still lie under the folder.
  auto [b, f] = std::mismatch(base.begin(), base.end(), file.begin(), file.end());
  if (b != base.end()) {
    return make_error(StatusCode::kInvalidArgument, what, ": external data location '", location,
                      "' resolves to '", file.string(),
                      "', outside the model's folder; only files inside it are read");
  }
  if (!fs::is_regular_file(file, ec)) {
    return make_error(StatusCode::kInvalidArgument, what, ": external data location '", location,
                      "' is not a regular file");
  }
  const uint64_t size = fs::file_size(file, ec);
  if (ec) {
    return make_error(StatusCode::kIoError, what, ": cannot stat '", file.string(),
                      "': ", ec.message());
  }
  if (offset > size || (length && *length > size - offset)) {
    return make_error(StatusCode::kCorruptData, what, ": external data offset ", offset,
                      length ? " + length " + std::to_string(*length) : std::string(),
                      " is past the end of '", location, "' (", size, " bytes)");
  }
  const uint64_t count = length ? *length : size - offset;
  if (count > static_cast<uint64_t>(std::numeric_limits<std::streamsize>::max())) {
    return make_error(StatusCode::kUnsupported, what, ": external data of ", count,
                      " bytes is too large");
  }
  std::ifstream in(file, std::ios::binary);
  std::string bytes(static_cast<size_t>(count), '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(bytes.data(), static_cast<std::streamsize>(count));
  if (!in) {
    return make_error(StatusCode::kIoError, what, ": cannot read ", count, " bytes at offset ",
                      offset, " of '", file.string(), "'");
  }
  onnx::TensorProto loaded = tensor;
  loaded.clear_external_data();
  loaded.set_data_location(onnx::TensorProto_DataLocation_DEFAULT);
  loaded.set_raw_data(std::move(bytes));
  return loaded;
}

}  // namespace mlprt::onnx_import
