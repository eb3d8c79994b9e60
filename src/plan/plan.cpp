#include "plan/plan.h"

#include <cstring>
#include <new>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/check.h"
#include "mlprt/version.h"
#include "plan/checksum.h"
#include "plan/plan_layout.h"
#include "plan/plan_metadata.h"

namespace mlprt::plan {
namespace {

using namespace layout;

constexpr const char* kRebuildHint = "rebuild it with this mlprt's `mlprt build`";

uint64_t align_up(uint64_t value) {
  return (value + kSectionAlignment - 1) / kSectionAlignment * kSectionAlignment;
}

std::string hex64(uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (size_t i = 0; i < 16; ++i) out[15 - i] = kDigits[(v >> (4 * i)) & 0xf];
  return out;
}

std::string prefix(const std::string& source_name) { return "plan '" + source_name + "'"; }

// The first bytes of a file that is not a plan, to help recognise what it is.
std::string describe_start(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < 8; ++i) {
    if (i) out += ' ';
    out += kDigits[bytes[i] >> 4];
    out += kDigits[bytes[i] & 0xf];
  }
  return out;
}

// The producer field, printable part only: it is shown in messages about a plan we cannot read.
std::string read_producer(std::span<const uint8_t> bytes) {
  std::string out;
  if (bytes.size() < kOffsetProducerVersion + kProducerVersionBytes) return out;
  for (size_t i = 0; i < kProducerVersionBytes; ++i) {
    const uint8_t c = bytes[kOffsetProducerVersion + i];
    if (c == 0) break;
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  return out;
}

struct Section {
  const char* name;
  uint64_t offset;
  uint64_t size;
};

Status check_header(std::span<const uint8_t> bytes, const std::string& source_name) {
  const std::string who = prefix(source_name);
  if (bytes.size() < sizeof(kMagic) ||
      std::memcmp(bytes.data() + kOffsetMagic, kMagic, sizeof(kMagic)) != 0) {
    const std::string found =
        bytes.empty() ? "the file is empty" : "it starts with bytes " + describe_start(bytes);
    return make_error(StatusCode::kCorruptData, who,
                      " is not an mlprt plan (bad magic bytes): ", found,
                      ", a plan starts with \"MLPRTPLN\" (4d 4c 50 52 54 50 4c 4e). "
                      "Pass a file written by `mlprt build --saveEngine=...`");
  }
  if (bytes.size() < kOffsetFormatVersion + 4) {
    return make_error(StatusCode::kCorruptData, who, " is truncated: the file has ", bytes.size(),
                      " bytes, too few to hold its format version. Copy it again or ",
                      kRebuildHint);
  }
  const uint32_t version = read_u32(bytes, kOffsetFormatVersion);
  if (version != kFormatVersion) {
    const std::string producer = read_producer(bytes);
    const std::string by = producer.empty() ? "" : " (written by mlprt " + producer + ")";
    const std::string advice =
        version > kFormatVersion
            ? std::string(kRebuildHint) + ", or load it with the mlprt that wrote it"
            : std::string(kRebuildHint) + " (older plan formats are not read)";
    return make_error(StatusCode::kVersionMismatch, who, " has plan format version ", version, by,
                      ", this mlprt (", kVersionString, ") reads format version ", kFormatVersion,
                      ": ", advice);
  }
  const size_t minimum = kHeaderSize + kTrailerSize;
  if (bytes.size() < minimum) {
    return make_error(StatusCode::kCorruptData, who, " is truncated: the file has ", bytes.size(),
                      " bytes, fewer than the ", minimum,
                      " of a header and checksum. Copy it again or ", kRebuildHint);
  }
  const uint64_t declared = read_u64(bytes, kOffsetFileSize);
  if (declared > bytes.size()) {
    return make_error(StatusCode::kCorruptData, who, " is truncated: the header says ", declared,
                      " bytes, the file has ", bytes.size(), ". Copy it again or ", kRebuildHint);
  }
  if (declared < bytes.size()) {
    return make_error(StatusCode::kCorruptData, who, " has ", bytes.size() - declared,
                      " trailing bytes: the header says ", declared, " bytes, the file has ",
                      bytes.size(), ". Copy it again or ", kRebuildHint);
  }
  const size_t body = bytes.size() - kTrailerSize;
  const uint64_t stored = read_u64(bytes, body);
  const uint64_t computed = crc64(bytes.first(body));
  if (stored != computed) {
    return make_error(StatusCode::kCorruptData, who, " is corrupted: checksum mismatch (stored ",
                      hex64(stored), ", computed ", hex64(computed),
                      "). The file was damaged after it was written: copy it "
                      "again or ",
                      kRebuildHint);
  }
  return Status::ok();
}

// The layout is canonical: each section starts at the first 64-byte boundary after the one
// before it (metadata right after the header) and the blob ends where the checksum starts.
// Checking exact places rules out overlaps and out-of-file offsets at once.
Status check_sections(const Section (&sections)[3], uint64_t body_end,
                      const std::string& source_name) {
  uint64_t expected = kHeaderSize;
  std::string after = "the header";
  for (const Section& s : sections) {
    if (s.offset != expected || s.offset > body_end || s.size > body_end - s.offset) {
      return Status(StatusCode::kCorruptData,
                    detail::malformed_message(
                        source_name,
                        std::string("the ") + s.name + " section is at offset " +
                            std::to_string(s.offset) + " with " + std::to_string(s.size) +
                            " bytes; it should start at " + std::to_string(expected) + " (after " +
                            after + ") and end by the checksum at " + std::to_string(body_end)));
    }
    expected = align_up(s.offset + s.size);
    after = std::string("the ") + s.name + " section";
  }
  const Section& last = sections[2];
  if (last.offset + last.size != body_end) {
    return Status(StatusCode::kCorruptData,
                  detail::malformed_message(
                      source_name, "the backend blob section ends at " +
                                       std::to_string(last.offset + last.size) +
                                       ", but the checksum starts at " + std::to_string(body_end)));
  }
  return Status::ok();
}

Result<std::vector<uint8_t>> serialize_checked(const Plan& plan) {
  if (plan.format_version != kFormatVersion) {
    return make_error(StatusCode::kInvalidArgument, "cannot write plan of model '", plan.graph.name,
                      "' as format version ", plan.format_version,
                      ": this mlprt writes format version ", kFormatVersion, " only");
  }
  if (plan.producer_version.size() >= kProducerVersionBytes ||
      plan.producer_version.find('\0') != std::string::npos) {
    return make_error(StatusCode::kInvalidArgument, "cannot write plan of model '", plan.graph.name,
                      "': producer version '", plan.producer_version, "' must be shorter than ",
                      kProducerVersionBytes, " bytes, without NUL");
  }
  if (std::string problem = detail::find_inconsistency(plan); !problem.empty()) {
    return make_error(StatusCode::kInvalidArgument, "cannot write plan of model '", plan.graph.name,
                      "': ", problem);
  }
  MLPRT_ASSIGN_OR_RETURN(detail::EncodedMetadata meta, detail::encode_metadata(plan));

  const uint64_t meta_offset = kHeaderSize;
  const uint64_t weights_offset = align_up(meta_offset + meta.json.size());
  const uint64_t blob_offset = align_up(weights_offset + meta.weights_size);
  const uint64_t body_end = blob_offset + plan.backend_blob.size();
  const uint64_t file_size = body_end + kTrailerSize;

  std::vector<uint8_t> out(file_size, 0);
  std::span<uint8_t> bytes(out);
  std::memcpy(out.data() + kOffsetMagic, kMagic, sizeof(kMagic));
  write_u32(bytes, kOffsetFormatVersion, kFormatVersion);
  write_u32(bytes, kOffsetFlags, 0);
  write_u64(bytes, kOffsetFileSize, file_size);
  write_u64(bytes, kOffsetMetadata, meta_offset);
  write_u64(bytes, kOffsetMetadata + 8, meta.json.size());
  write_u64(bytes, kOffsetWeights, weights_offset);
  write_u64(bytes, kOffsetWeights + 8, meta.weights_size);
  write_u64(bytes, kOffsetBackendBlob, blob_offset);
  write_u64(bytes, kOffsetBackendBlob + 8, plan.backend_blob.size());
  std::memcpy(out.data() + kOffsetProducerVersion, plan.producer_version.data(),
              plan.producer_version.size());
  std::memcpy(out.data() + meta_offset, meta.json.data(), meta.json.size());
  for (const detail::WeightPlacement& w : meta.weights) {
    if (!w.data->empty()) {
      std::memcpy(out.data() + weights_offset + w.offset, w.data->data(), w.data->size());
    }
  }
  if (!plan.backend_blob.empty()) {
    std::memcpy(out.data() + blob_offset, plan.backend_blob.data(), plan.backend_blob.size());
  }
  write_u64(bytes, body_end, crc64(bytes.first(body_end)));
  return out;
}

Result<Plan> deserialize_checked(std::span<const uint8_t> bytes, const std::string& source_name) {
  MLPRT_RETURN_IF_ERROR(check_header(bytes, source_name));
  const uint32_t flags = read_u32(bytes, kOffsetFlags);
  if (flags != 0) {
    return Status(StatusCode::kCorruptData,
                  detail::malformed_message(source_name, "header flags are 0x" + hex64(flags) +
                                                             ", format version 1 defines none"));
  }
  const Section sections[3] = {
      {"metadata", read_u64(bytes, kOffsetMetadata), read_u64(bytes, kOffsetMetadata + 8)},
      {"weights", read_u64(bytes, kOffsetWeights), read_u64(bytes, kOffsetWeights + 8)},
      {"backend blob", read_u64(bytes, kOffsetBackendBlob),
       read_u64(bytes, kOffsetBackendBlob + 8)},
  };
  MLPRT_RETURN_IF_ERROR(check_sections(sections, bytes.size() - kTrailerSize, source_name));

  Plan plan;
  plan.format_version = kFormatVersion;
  plan.producer_version = read_producer(bytes);
  const auto* meta = reinterpret_cast<const char*>(bytes.data() + sections[0].offset);
  MLPRT_RETURN_IF_ERROR(detail::decode_metadata(std::string_view(meta, sections[0].size),
                                                bytes.subspan(sections[1].offset, sections[1].size),
                                                source_name, plan));
  if (std::string problem = detail::find_inconsistency(plan); !problem.empty()) {
    return Status(StatusCode::kCorruptData, detail::malformed_message(source_name, problem));
  }
  const auto blob = bytes.subspan(sections[2].offset, sections[2].size);
  plan.backend_blob.assign(blob.begin(), blob.end());
  return plan;
}

}  // namespace

Result<std::vector<uint8_t>> serialize_plan(const Plan& plan) {
  try {
    return serialize_checked(plan);
  } catch (const nlohmann::json::exception& e) {
    return make_error(StatusCode::kInvalidArgument, "cannot write plan of model '", plan.graph.name,
                      "': ", e.what(), " (tensor, node and attribute names must be valid UTF-8)");
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kInternal, "out of memory writing plan of model '",
                      plan.graph.name, "'");
  }
}

Result<Plan> deserialize_plan(std::span<const uint8_t> bytes, const std::string& source_name) {
  try {
    return deserialize_checked(bytes, source_name);
  } catch (const nlohmann::json::exception& e) {
    return Status(StatusCode::kCorruptData,
                  detail::malformed_message(source_name, std::string("metadata: ") + e.what()));
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kInternal, "out of memory reading ", prefix(source_name), " (",
                      bytes.size(), " bytes)");
  }
}

std::string plan_hash_hex(std::span<const uint8_t> bytes) {
  if (bytes.size() < kHeaderSize + kTrailerSize) return "";
  return hex64(read_u64(bytes, bytes.size() - kTrailerSize));
}

}  // namespace mlprt::plan
