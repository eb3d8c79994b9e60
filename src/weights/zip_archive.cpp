#include "weights/zip_archive.h"

#include "common/check.h"

namespace mlprt::weights {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfDirectory = 0x06054b50;
constexpr size_t kEndSize = 22;
constexpr size_t kCentralSize = 46;
constexpr size_t kLocalSize = 30;

uint32_t u16(std::span<const uint8_t> b, size_t at) {
  return static_cast<uint32_t>(b[at]) | static_cast<uint32_t>(b[at + 1]) << 8;
}
uint32_t u32(std::span<const uint8_t> b, size_t at) { return u16(b, at) | u16(b, at + 2) << 16; }

}  // namespace

bool looks_like_zip(std::span<const uint8_t> bytes) {
  return bytes.size() >= 4 && u32(bytes, 0) == kLocalHeader;
}

Result<ZipArchive> read_zip(std::span<const uint8_t> bytes, const std::string& source) {
  auto bad = [&](const std::string& what) {
    return make_error(StatusCode::kCorruptData, "'", source, "' is not a readable zip archive: ", what);
  };
  if (bytes.size() < kEndSize) return bad("it has " + std::to_string(bytes.size()) + " bytes, fewer than a zip's end record");
  // The end record is the last thing in the file, followed only by its comment (< 64 KiB).
  size_t end = bytes.size();
  bool found = false;
  const size_t lowest = bytes.size() - kEndSize > 0xFFFF ? bytes.size() - kEndSize - 0xFFFF : 0;
  for (size_t at = bytes.size() - kEndSize + 1; at-- > lowest;) {
    if (u32(bytes, at) == kEndOfDirectory && at + kEndSize + u16(bytes, at + 20) == bytes.size()) {
      end = at;
      found = true;
      break;
    }
  }
  if (!found) return bad("no end-of-central-directory record (truncated?)");
  const uint32_t count = u16(bytes, end + 10);
  const uint64_t dir_size = u32(bytes, end + 12);
  const uint64_t dir_offset = u32(bytes, end + 16);
  // torch.save always adds a zip64 end record; it matters only when the classic one is full.
  if (count == 0xFFFF || dir_size == 0xFFFFFFFF || dir_offset == 0xFFFFFFFF) {
    return make_error(StatusCode::kUnsupported, "'", source,
                      "' needs zip64 (more than 65534 entries or over 4 GiB); mlprt reads plain zip "
                      "sizes only: save the weights as .safetensors instead");
  }
  if (u16(bytes, end + 4) != 0 || u16(bytes, end + 6) != 0 || u16(bytes, end + 8) != count) {
    return bad("multi-disk archives are not supported");
  }
  if (dir_offset + dir_size > end) {
    return bad("its central directory (" + std::to_string(dir_size) + " bytes at " + std::to_string(dir_offset) +
               ") lies past the end record at " + std::to_string(end));
  }
  ZipArchive archive;
  size_t at = dir_offset;
  for (uint32_t i = 0; i < count; ++i) {
    if (at + kCentralSize > dir_offset + dir_size || u32(bytes, at) != kCentralHeader) {
      return bad("central directory entry " + std::to_string(i) + " at offset " + std::to_string(at) + " is damaged");
    }
    const uint32_t flags = u16(bytes, at + 8);
    const uint32_t method = u16(bytes, at + 10);
    const uint64_t packed = u32(bytes, at + 20);
    const uint64_t size = u32(bytes, at + 24);
    const size_t name_len = u16(bytes, at + 28);
    const size_t extra_len = u16(bytes, at + 30);
    const size_t comment_len = u16(bytes, at + 32);
    const uint64_t local = u32(bytes, at + 42);
    if (at + kCentralSize + name_len + extra_len + comment_len > dir_offset + dir_size) {
      return bad("central directory entry " + std::to_string(i) + " runs past the directory");
    }
    const std::string name(reinterpret_cast<const char*>(bytes.data() + at + kCentralSize), name_len);
    at += kCentralSize + name_len + extra_len + comment_len;
    if (flags & 1) return make_error(StatusCode::kUnsupported, "'", source, "': entry '", name, "' is encrypted");
    if (packed == 0xFFFFFFFF || size == 0xFFFFFFFF || local == 0xFFFFFFFF) {
      return make_error(StatusCode::kUnsupported, "'", source, "': entry '", name,
                        "' uses zip64 sizes; mlprt reads plain zip only: save the weights as .safetensors instead");
    }
    if (method != 0 || packed != size) {
      return make_error(StatusCode::kUnsupported, "'", source, "': entry '", name, "' is compressed (method ",
                        method, "); mlprt reads stored entries, as torch.save writes them (re-save it with "
                        "torch.save, or as .safetensors)");
    }
    if (local + kLocalSize > dir_offset || u32(bytes, local) != kLocalHeader) {
      return bad("entry '" + name + "': its local header at offset " + std::to_string(local) + " is damaged");
    }
    const uint64_t data = local + kLocalSize + u16(bytes, local + 26) + u16(bytes, local + 28);
    if (data + size > dir_offset) {
      return bad("entry '" + name + "': its " + std::to_string(size) + " bytes at offset " + std::to_string(data) +
                 " run past the entries' area (" + std::to_string(dir_offset) + " bytes)");
    }
    if (!archive.entries.emplace(name, bytes.subspan(data, size)).second) {
      return bad("entry '" + name + "' appears twice");
    }
  }
  return archive;
}

}  // namespace mlprt::weights
