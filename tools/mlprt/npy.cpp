#include "npy.h"

#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>

#include "mlprt/float16.h"
#include <fstream>
#include <limits>
#include <map>
#include <optional>

#include "cli_common.h"

namespace mlprt::cli {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the .npy reader copies little-endian data as is");

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
// Header (magic + version + length + dict) is padded to a multiple of this, as numpy does.
constexpr size_t kHeaderAlignment = 64;

struct Header {
  std::string descr;
  bool fortran_order = false;
  Dims dims;
};

std::string dtype_name(const std::string& descr) {
  static const std::map<std::string, std::string> kNames = {
      {"f2", "float16"}, {"f4", "float32"},   {"f8", "float64"},     {"f16", "float128"},
      {"i1", "int8"},    {"i2", "int16"},     {"i4", "int32"},       {"i8", "int64"},
      {"u1", "uint8"},   {"u2", "uint16"},    {"u4", "uint32"},      {"u8", "uint64"},
      {"b1", "bool"},    {"c8", "complex64"}, {"c16", "complex128"}, {"O", "object"}};
  std::string key = descr;
  if (!key.empty() && (key[0] == '<' || key[0] == '>' || key[0] == '|' || key[0] == '=')) {
    key = key.substr(1);
  }
  auto it = kNames.find(key);
  if (it != kNames.end()) return it->second;
  if (!key.empty() && key[0] == 'U') return "unicode string";
  if (!key.empty() && key[0] == 'S') return "byte string";
  if (!key.empty() && key[0] == 'V') return "void/structured";
  return "unknown dtype";
}

// A parser for the Python dict literal numpy writes:
// {'descr': '<f4', 'fortran_order': False, 'shape': (8, 784), }
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& source) : m_text(text), m_source(source) {}

  Result<Header> parse() {
    Header header;
    bool has_descr = false;
    bool has_order = false;
    bool has_shape = false;
    skip_space();
    if (!consume('{')) return error("the header does not start with '{'");
    while (true) {
      skip_space();
      if (consume('}')) break;
      Result<std::string> key = parse_string();
      if (!key) return key.status();
      skip_space();
      if (!consume(':')) return error(cat("expected ':' after key '", *key, "'"));
      skip_space();
      if (*key == "descr") {
        if (has_descr) return error("key 'descr' appears twice");
        Result<std::string> descr = parse_string();
        if (!descr) return descr.status();
        header.descr = *descr;
        has_descr = true;
      } else if (*key == "fortran_order") {
        if (has_order) return error("key 'fortran_order' appears twice");
        if (consume_word("True")) {
          header.fortran_order = true;
        } else if (consume_word("False")) {
          header.fortran_order = false;
        } else {
          return error("'fortran_order' must be True or False");
        }
        has_order = true;
      } else if (*key == "shape") {
        if (has_shape) return error("key 'shape' appears twice");
        Result<Dims> dims = parse_tuple();
        if (!dims) return dims.status();
        header.dims = std::move(*dims);
        has_shape = true;
      } else {
        return error(cat("unexpected key '", *key, "' (allowed: descr, fortran_order, shape)"));
      }
      skip_space();
      if (consume(',')) continue;
      skip_space();
      if (consume('}')) break;
      return error("expected ',' or '}' in the header dict");
    }
    skip_space();
    if (m_pos != m_text.size()) return error("unexpected text after the header dict");
    if (!has_descr || !has_order || !has_shape) {
      return error("the header must have the keys 'descr', 'fortran_order' and 'shape'");
    }
    return header;
  }

 private:
  Status error(const std::string& what) const {
    return {StatusCode::kCorruptData, cat("'", m_source, "': bad .npy header: ", what)};
  }
  void skip_space() {
    while (m_pos < m_text.size() && (m_text[m_pos] == ' ' || m_text[m_pos] == '\n' ||
                                     m_text[m_pos] == '\t' || m_text[m_pos] == '\r')) {
      ++m_pos;
    }
  }
  bool consume(char c) {
    if (m_pos < m_text.size() && m_text[m_pos] == c) {
      ++m_pos;
      return true;
    }
    return false;
  }
  bool consume_word(std::string_view word) {
    if (m_text.substr(m_pos, word.size()) == word) {
      m_pos += word.size();
      return true;
    }
    return false;
  }
  Result<std::string> parse_string() {
    if (m_pos >= m_text.size() || (m_text[m_pos] != '\'' && m_text[m_pos] != '"')) {
      return error("expected a quoted string");
    }
    char quote = m_text[m_pos++];
    size_t end = m_text.find(quote, m_pos);
    if (end == std::string_view::npos) return error("unterminated string");
    std::string value(m_text.substr(m_pos, end - m_pos));
    m_pos = end + 1;
    return value;
  }
  Result<Dims> parse_tuple() {
    if (!consume('(')) return error("'shape' must be a tuple like (8, 784)");
    Dims dims;
    while (true) {
      skip_space();
      if (consume(')')) return dims;
      size_t start = m_pos;
      while (m_pos < m_text.size() && m_text[m_pos] >= '0' && m_text[m_pos] <= '9') ++m_pos;
      int64_t value = 0;
      auto [ptr, ec] = std::from_chars(m_text.data() + start, m_text.data() + m_pos, value);
      if (start == m_pos || ec != std::errc() || ptr != m_text.data() + m_pos) {
        return error("'shape' must hold non-negative integers");
      }
      dims.push_back(value);
      skip_space();
      if (consume(',')) continue;
      skip_space();
      if (consume(')')) return dims;
      return error("expected ',' or ')' in 'shape'");
    }
  }

  std::string_view m_text;
  const std::string& m_source;
  size_t m_pos = 0;
};

uint32_t read_le(std::span<const uint8_t> bytes, size_t offset, size_t size) {
  uint32_t value = 0;
  for (size_t i = 0; i < size; ++i) value |= static_cast<uint32_t>(bytes[offset + i]) << (8 * i);
  return value;
}

std::string shape_text(const Dims& dims) {
  std::string out = "(";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(dims[i]);
  }
  if (dims.size() == 1) out += ",";
  return out + ")";
}

}  // namespace

Result<NpyArray> parse_npy(std::span<const uint8_t> bytes, const std::string& source_name) {
  const std::string& src = source_name;
  if (bytes.size() < kMagicSize + 2 || std::memcmp(bytes.data(), kMagic, kMagicSize) != 0) {
    return Status(StatusCode::kCorruptData,
                  cat("'", src, "' is not a .npy file (it does not start with \\x93NUMPY)"));
  }
  const uint8_t major = bytes[6];
  size_t length_size = 0;
  if (major == 1) {
    length_size = 2;
  } else if (major == 2 || major == 3) {
    length_size = 4;
  } else {
    return Status(StatusCode::kUnsupported,
                  cat("'", src, "': .npy format version ", int{major}, ".", int{bytes[7]},
                      " is not supported (versions 1, 2 and 3 are)"));
  }
  const size_t header_start = kMagicSize + 2 + length_size;
  if (bytes.size() < header_start) {
    return Status(StatusCode::kCorruptData, cat("'", src, "' is truncated inside its header"));
  }
  const size_t header_size = read_le(bytes, kMagicSize + 2, length_size);
  if (bytes.size() - header_start < header_size) {
    return Status(StatusCode::kCorruptData,
                  cat("'", src, "' is truncated: its header says ", header_size,
                      " bytes but the file ends after ", bytes.size() - header_start));
  }
  std::string_view text(reinterpret_cast<const char*>(bytes.data() + header_start), header_size);
  Result<Header> parsed = HeaderParser(text, src).parse();
  if (!parsed) return parsed.status();
  Header& header = *parsed;

  if (header.fortran_order) {
    return Status(StatusCode::kUnsupported,
                  cat("'", src,
                      "' is in Fortran order (fortran_order: True); save it in C "
                      "order, e.g. np.save(path, np.ascontiguousarray(a))"));
  }
  size_t item_size = 0;
  const std::string& descr = header.descr;
  const bool little = !descr.empty() && (descr[0] == '<' || descr[0] == '=');
  const std::string kind = descr.empty() ? descr : descr.substr(1);
  if (little && (kind == "f4" || kind == "f8" || kind == "f2")) {
    item_size = kind == "f4" ? 4 : kind == "f8" ? 8 : 2;
  } else if (!descr.empty() && descr[0] == '>' && (kind == "f4" || kind == "f8" || kind == "f2")) {
    return Status(StatusCode::kUnsupported, cat("'", src, "' holds big-endian data ('", descr,
                                                "'); save it little-endian, "
                                                "e.g. a.astype('<f4')"));
  } else {
    return Status(StatusCode::kUnsupported,
                  cat("'", src, "' has dtype '", descr, "' (", dtype_name(descr),
                      "); only float32 is accepted (float64 and float16 are converted)"));
  }

  Result<int64_t> count = volume(header.dims);
  if (!count)
    return Status(StatusCode::kCorruptData, cat("'", src, "': ", count.status().message()));
  const size_t data_start = header_start + header_size;
  const size_t available = bytes.size() - data_start;
  const auto n = static_cast<uint64_t>(*count);
  if (n > std::numeric_limits<uint64_t>::max() / item_size || n * item_size > available) {
    return Status(
        StatusCode::kCorruptData,
        cat("'", src, "' is truncated: shape ", shape_text(header.dims), " of '", descr, "' needs ",
            n, " x ", item_size, " bytes of data, the file holds ", available));
  }
  if (n * item_size != available) {
    return Status(StatusCode::kCorruptData,
                  cat("'", src, "' has ", available - n * item_size,
                      " unexpected bytes after the data of shape ", shape_text(header.dims)));
  }

  NpyArray array;
  array.dims = header.dims;
  array.source_dtype = descr;
  try {
    array.values.resize(static_cast<size_t>(n));
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kIoError, cat("'", src, "': out of memory for ", n, " values"));
  }
  const uint8_t* data = bytes.data() + data_start;
  if (item_size == 4) {
    if (n) std::memcpy(array.values.data(), data, static_cast<size_t>(n) * 4);
  } else if (item_size == 8) {
    for (size_t i = 0; i < n; ++i) {
      double value = 0;
      std::memcpy(&value, data + i * 8, 8);
      array.values[i] = static_cast<float>(value);
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      uint16_t value = 0;
      std::memcpy(&value, data + i * 2, 2);
      array.values[i] = half_to_float(value);
    }
  }
  return array;
}

Result<NpyArray> read_npy(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status(StatusCode::kNotFound,
                  cat("cannot read '", path.string(), "': ",
                      std::filesystem::exists(path, ec) ? "not a regular file" : "no such file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status(StatusCode::kIoError,
                  cat("cannot open '", path.string(), "': ", std::strerror(errno)));
  }
  std::vector<uint8_t> bytes;
  try {
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } catch (const std::exception& e) {
    return Status(StatusCode::kIoError, cat("cannot read '", path.string(), "': ", e.what()));
  }
  if (in.bad()) return Status(StatusCode::kIoError, cat("cannot read '", path.string(), "'"));
  return parse_npy(bytes, path.string());
}

Result<std::vector<uint8_t>> encode_npy(const Dims& dims, std::span<const float> values) {
  Result<int64_t> count = volume(dims);
  if (!count) return count.status();
  if (static_cast<uint64_t>(*count) != values.size()) {
    return Status(StatusCode::kInternal, cat("encode_npy: shape ", to_string(dims), " holds ",
                                             *count, " values, got ", values.size()));
  }
  std::string header =
      cat("{'descr': '<f4', 'fortran_order': False, 'shape': ", shape_text(dims), ", }");
  size_t prefix = kMagicSize + 2 + 2;
  uint8_t major = 1;
  // +1 for the closing newline; version 2 only when a 16-bit length cannot hold the header.
  if (prefix + header.size() + 1 + kHeaderAlignment > std::numeric_limits<uint16_t>::max()) {
    major = 2;
    prefix = kMagicSize + 2 + 4;
  }
  const size_t unpadded = prefix + header.size() + 1;
  header.append((kHeaderAlignment - unpadded % kHeaderAlignment) % kHeaderAlignment, ' ');
  header += '\n';

  std::vector<uint8_t> bytes;
  bytes.reserve(prefix + header.size() + values.size_bytes());
  bytes.insert(bytes.end(), kMagic, kMagic + kMagicSize);
  bytes.push_back(major);
  bytes.push_back(0);
  const auto length = static_cast<uint32_t>(header.size());
  for (size_t i = 0; i < (major == 1 ? 2u : 4u); ++i) {
    bytes.push_back(static_cast<uint8_t>((length >> (8 * i)) & 0xffu));
  }
  bytes.insert(bytes.end(), header.begin(), header.end());
  const auto* raw = reinterpret_cast<const uint8_t*>(values.data());
  bytes.insert(bytes.end(), raw, raw + values.size_bytes());
  return bytes;
}

}  // namespace mlprt::cli
