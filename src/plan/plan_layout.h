#pragma once
// Byte offsets of the plan file's fixed header (docs/plan-format.md). All integers are
// little-endian. kOffsetMagic, kOffsetFormatVersion and kOffsetProducerVersion keep their place
// in every format version, so any reader can say what a plan is and who wrote it.

#include <cstddef>
#include <cstdint>
#include <span>

namespace mlprt::plan::layout {

inline constexpr size_t kOffsetMagic = 0;             // 8 bytes "MLPRTPLN"
inline constexpr size_t kOffsetFormatVersion = 8;     // u32
inline constexpr size_t kOffsetFlags = 12;            // u32, 0 in format version 1
inline constexpr size_t kOffsetFileSize = 16;         // u64, the whole file, trailer included
inline constexpr size_t kOffsetMetadata = 24;         // u64 offset, u64 size
inline constexpr size_t kOffsetWeights = 40;          // u64 offset, u64 size
inline constexpr size_t kOffsetBackendBlob = 56;      // u64 offset, u64 size
inline constexpr size_t kOffsetProducerVersion = 72;  // 32 bytes UTF-8, zero padded
inline constexpr size_t kProducerVersionBytes = 32;
inline constexpr size_t kHeaderSize = 128;       // bytes 104..127 are reserved, zero
inline constexpr size_t kTrailerSize = 8;        // u64 CRC-64/XZ of all bytes before it
inline constexpr size_t kSectionAlignment = 64;  // weights, each constant, backend blob

inline uint64_t read_u64(std::span<const uint8_t> bytes, size_t offset) {
  uint64_t v = 0;
  for (size_t i = 8; i-- > 0;) v = (v << 8) | bytes[offset + i];
  return v;
}
inline uint32_t read_u32(std::span<const uint8_t> bytes, size_t offset) {
  uint32_t v = 0;
  for (size_t i = 4; i-- > 0;) v = (v << 8) | bytes[offset + i];
  return v;
}
inline void write_u64(std::span<uint8_t> bytes, size_t offset, uint64_t v) {
  for (size_t i = 0; i < 8; ++i) bytes[offset + i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void write_u32(std::span<uint8_t> bytes, size_t offset, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) bytes[offset + i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace mlprt::plan::layout
