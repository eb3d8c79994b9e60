#pragma once
// The subset of ZIP that torch.save writes: stored (uncompressed) entries, no zip64, no
// encryption. Everything else is refused with a message saying so. Every offset and size is
// checked against the bytes present.

#include <cstdint>
#include <map>
#include <span>
#include <string>

#include "mlprt/status.h"

namespace mlprt::weights {

struct ZipArchive {
  /// Entry name -> its bytes (views into the archive's buffer, which must outlive this).
  std::map<std::string, std::span<const uint8_t>> entries;
};

/// True if `bytes` start with a ZIP local file header ("PK\3\4").
bool looks_like_zip(std::span<const uint8_t> bytes);

Result<ZipArchive> read_zip(std::span<const uint8_t> bytes, const std::string& source);

}  // namespace mlprt::weights
