#pragma once
// The plan file's framing for the plan fuzzer and its seeds (docs/plan-format.md): split a plan
// into its sections, and frame sections again with canonical offsets, file size and a correct
// CRC-64, so that edited contents reach the loader's checks behind the checksum.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "plan/checksum.h"
#include "plan/plan_layout.h"

namespace mlprt::fuzz {

struct PlanSections {
  std::vector<uint8_t> header;  ///< the 128 header bytes (offsets and sizes are rewritten)
  std::string metadata;         ///< JSON text
  std::vector<uint8_t> weights;
  std::vector<uint8_t> blob;
};

/// The sections the header points at, or nullopt where it points outside the bytes. The
/// offsets need not be canonical.
inline std::optional<PlanSections> split_plan(std::span<const uint8_t> bytes) {
  using namespace plan::layout;
  if (bytes.size() < kHeaderSize + kTrailerSize) return std::nullopt;
  const uint64_t body = bytes.size() - kTrailerSize;
  const auto section = [&](size_t field) -> std::optional<std::span<const uint8_t>> {
    const uint64_t offset = read_u64(bytes, field);
    const uint64_t size = read_u64(bytes, field + 8);
    if (offset > body || size > body - offset) return std::nullopt;
    return bytes.subspan(offset, size);
  };
  auto metadata = section(kOffsetMetadata);
  auto weights = section(kOffsetWeights);
  auto blob = section(kOffsetBackendBlob);
  if (!metadata || !weights || !blob) return std::nullopt;
  PlanSections out;
  out.header.assign(bytes.begin(), bytes.begin() + kHeaderSize);
  out.metadata.assign(metadata->begin(), metadata->end());
  out.weights.assign(weights->begin(), weights->end());
  out.blob.assign(blob->begin(), blob->end());
  return out;
}

inline uint64_t align64(uint64_t x) { return (x + 63) / 64 * 64; }

/// Rewrites the trailer with the CRC-64 of the bytes before it (after a header edit).
inline void reseal(std::vector<uint8_t>& bytes) {
  using namespace plan::layout;
  if (bytes.size() < kTrailerSize) return;
  const size_t body = bytes.size() - kTrailerSize;
  write_u64(bytes, body, plan::crc64(std::span<const uint8_t>(bytes.data(), body)));
}

/// Frames the sections canonically and appends the CRC-64 of everything before it.
inline std::vector<uint8_t> frame_plan(const PlanSections& s) {
  using namespace plan::layout;
  const uint64_t meta_offset = kHeaderSize;
  const uint64_t weights_offset = align64(meta_offset + s.metadata.size());
  const uint64_t blob_offset = align64(weights_offset + s.weights.size());
  const uint64_t size = blob_offset + s.blob.size() + kTrailerSize;
  std::vector<uint8_t> out(size, 0);
  std::copy(s.header.begin(), s.header.begin() + std::min(s.header.size(), kHeaderSize),
            out.begin());
  write_u64(out, kOffsetFileSize, size);
  write_u64(out, kOffsetMetadata, meta_offset);
  write_u64(out, kOffsetMetadata + 8, s.metadata.size());
  write_u64(out, kOffsetWeights, weights_offset);
  write_u64(out, kOffsetWeights + 8, s.weights.size());
  write_u64(out, kOffsetBackendBlob, blob_offset);
  write_u64(out, kOffsetBackendBlob + 8, s.blob.size());
  std::copy(s.metadata.begin(), s.metadata.end(), out.begin() + meta_offset);
  std::copy(s.weights.begin(), s.weights.end(),
            out.begin() + static_cast<ptrdiff_t>(weights_offset));
  std::copy(s.blob.begin(), s.blob.end(), out.begin() + static_cast<ptrdiff_t>(blob_offset));
  reseal(out);
  return out;
}

}  // namespace mlprt::fuzz
