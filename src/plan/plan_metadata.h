#pragma once
// The metadata section of a plan (JSON) and the weights it points into; plan.cpp frames them.

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "plan/plan.h"

namespace mlprt::plan::detail {

/// One constant's bytes and where they go in the weights section.
struct WeightPlacement {
  const std::vector<std::byte>* data = nullptr;
  uint64_t offset = 0;
};

struct EncodedMetadata {
  std::string json;  ///< compact, keys sorted: the same Plan always gives the same text
  std::vector<WeightPlacement> weights;
  uint64_t weights_size = 0;  ///< end of the last constant, 0 if none
};

/// Everything but format_version, producer_version (header fields) and the backend blob.
/// Expects a Plan that passed find_inconsistency.
Result<EncodedMetadata> encode_metadata(const Plan& plan);

/// Called after bytes [offset, offset + size) of the weights section were copied (a large
/// constant in several steps, then once for its whole range).
using WeightsCopied = std::function<void(uint64_t offset, uint64_t size)>;

/// Parses `json_text` and copies constants out of `weights`, checking every type, size and
/// bound before allocating. Errors are kCorruptData naming `source_name` and the JSON path.
/// `copied`, when set, is told each constant copied (the file reader releases those pages of its
/// mapping).
Status decode_metadata(std::string_view json_text, std::span<const uint8_t> weights,
                       const std::string& source_name, Plan& plan,
                       const WeightsCopied* copied = nullptr);
/// The same checks, for a weights section of `weights_size` bytes that is not read: constants
/// keep dtype and dims, no data (inspect's metadata-only read).
Status decode_metadata_without_weights(std::string_view json_text, uint64_t weights_size,
                                       const std::string& source_name, Plan& plan);

/// The invariants every plan satisfies (shared by writer and reader): the first violation found,
/// or "" if none. Tensor names unique, node inputs produced before use, constant sizes equal to
/// their dims, profiles naming graph inputs with matching rank and min <= opt <= max.
/// `with_weight_data` false: a metadata-only Plan (constants without data) is checked in all but
/// the constants' byte counts.
std::string find_inconsistency(const Plan& plan, bool with_weight_data = true);

/// The deepest bracket nesting of JSON `text`, ignoring brackets inside strings; walks the text
/// without recursion, so hostile nesting can be measured before it is parsed.
int json_depth(std::string_view text);

/// Text of the "malformed" error, so plan.cpp and the metadata decoder word it the same.
std::string malformed_message(const std::string& source_name, const std::string& detail);

}  // namespace mlprt::plan::detail
