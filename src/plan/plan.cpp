#include "plan/plan.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
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

// Magic, format version and size, from the file's first bytes (`header`: its first kHeaderSize
// bytes, or all of a shorter file) and its size in bytes.
Status check_frame(std::span<const uint8_t> header, uint64_t file_size,
                   const std::string& source_name) {
  const std::string who = prefix(source_name);
  if (header.size() < sizeof(kMagic) ||
      std::memcmp(header.data() + kOffsetMagic, kMagic, sizeof(kMagic)) != 0) {
    const std::string found =
        file_size == 0 ? "the file is empty" : "it starts with bytes " + describe_start(header);
    return make_error(StatusCode::kCorruptData, who,
                      " is not an mlprt plan (bad magic bytes): ", found,
                      ", a plan starts with \"MLPRTPLN\" (4d 4c 50 52 54 50 4c 4e). "
                      "Pass a file written by `mlprt build --saveEngine=...`");
  }
  if (header.size() < kOffsetFormatVersion + 4) {
    return make_error(StatusCode::kCorruptData, who, " is truncated: the file has ", file_size,
                      " bytes, too few to hold its format version. Copy it again or ",
                      kRebuildHint);
  }
  const uint32_t version = read_u32(header, kOffsetFormatVersion);
  if (version != kFormatVersion) {
    const std::string producer = read_producer(header);
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
  if (file_size < minimum) {
    return make_error(StatusCode::kCorruptData, who, " is truncated: the file has ", file_size,
                      " bytes, fewer than the ", minimum,
                      " of a header and checksum. Copy it again or ", kRebuildHint);
  }
  const uint64_t declared = read_u64(header, kOffsetFileSize);
  if (declared > file_size) {
    return make_error(StatusCode::kCorruptData, who, " is truncated: the header says ", declared,
                      " bytes, the file has ", file_size, ". Copy it again or ", kRebuildHint);
  }
  if (declared < file_size) {
    return make_error(StatusCode::kCorruptData, who, " has ", file_size - declared,
                      " trailing bytes: the header says ", declared, " bytes, the file has ",
                      file_size, ". Copy it again or ", kRebuildHint);
  }
  return Status::ok();
}

Status check_checksum(uint64_t stored, uint64_t computed, const std::string& source_name) {
  if (stored != computed) {
    return make_error(StatusCode::kCorruptData, prefix(source_name),
                      " is corrupted: checksum mismatch (stored ", hex64(stored), ", computed ",
                      hex64(computed),
                      "). The file was damaged after it was written: copy it "
                      "again or ",
                      kRebuildHint);
  }
  return Status::ok();
}

Status check_header(std::span<const uint8_t> bytes, const std::string& source_name) {
  MLPRT_RETURN_IF_ERROR(
      check_frame(bytes.first(std::min<size_t>(bytes.size(), kHeaderSize)), bytes.size(),
                  source_name));
  const size_t body = bytes.size() - kTrailerSize;
  return check_checksum(read_u64(bytes, body), crc64(bytes.first(body)), source_name);
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

Result<std::vector<uint8_t>> serialize_checked(const Plan& plan, bool release) {
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

  // Written front to back into reserved memory, so that only what is written is resident;
  // `release` frees each constant once copied (a plan passed by value to serialize_plan).
  std::vector<uint8_t> out;
  out.reserve(file_size);
  const auto put = [&out](uint64_t offset, const void* data, size_t size) {
    if (out.size() < offset + size) out.resize(offset + size);
    if (size != 0) std::memcpy(out.data() + offset, data, size);
  };
  out.resize(kHeaderSize);
  std::span<uint8_t> header(out);
  std::memcpy(out.data() + kOffsetMagic, kMagic, sizeof(kMagic));
  write_u32(header, kOffsetFormatVersion, kFormatVersion);
  write_u32(header, kOffsetFlags, 0);
  write_u64(header, kOffsetFileSize, file_size);
  write_u64(header, kOffsetMetadata, meta_offset);
  write_u64(header, kOffsetMetadata + 8, meta.json.size());
  write_u64(header, kOffsetWeights, weights_offset);
  write_u64(header, kOffsetWeights + 8, meta.weights_size);
  write_u64(header, kOffsetBackendBlob, blob_offset);
  write_u64(header, kOffsetBackendBlob + 8, plan.backend_blob.size());
  std::memcpy(out.data() + kOffsetProducerVersion, plan.producer_version.data(),
              plan.producer_version.size());
  put(meta_offset, meta.json.data(), meta.json.size());
  std::vector<detail::WeightPlacement> placements = meta.weights;
  std::stable_sort(placements.begin(), placements.end(),
                   [](const auto& x, const auto& y) { return x.offset < y.offset; });
  for (const detail::WeightPlacement& w : placements) {
    put(weights_offset + w.offset, w.data->data(), w.data->size());
    if (release) {
      // The caller gave up the plan (serialize_plan(Plan&&)): its constant is not read again.
      auto* data = const_cast<std::vector<std::byte>*>(w.data);
      std::vector<std::byte>().swap(*data);
    }
  }
  put(blob_offset, plan.backend_blob.data(), plan.backend_blob.size());
  out.resize(body_end);  // zero padding up to the checksum where the blob is empty
  std::span<uint8_t> bytes(out);
  const uint64_t crc = crc64(bytes.first(body_end));
  out.resize(file_size);
  write_u64(out, body_end, crc);
  return out;
}

// The header's flags and sections, for a file of `file_size` bytes whose frame and checksum
// were checked.
Result<std::array<Section, 3>> read_sections(std::span<const uint8_t> header, uint64_t file_size,
                                             const std::string& source_name) {
  const uint32_t flags = read_u32(header, kOffsetFlags);
  if (flags != 0) {
    return Status(StatusCode::kCorruptData,
                  detail::malformed_message(source_name, "header flags are 0x" + hex64(flags) +
                                                             ", format version 1 defines none"));
  }
  const Section sections[3] = {
      {"metadata", read_u64(header, kOffsetMetadata), read_u64(header, kOffsetMetadata + 8)},
      {"weights", read_u64(header, kOffsetWeights), read_u64(header, kOffsetWeights + 8)},
      {"backend blob", read_u64(header, kOffsetBackendBlob),
       read_u64(header, kOffsetBackendBlob + 8)},
  };
  MLPRT_RETURN_IF_ERROR(check_sections(sections, file_size - kTrailerSize, source_name));
  return std::array<Section, 3>{sections[0], sections[1], sections[2]};
}

// Metadata and blob into a Plan. `weights` is the weights section; null: metadata only (constants
// keep dtype and dims, no data), for a section of `weights_size` bytes.
Result<Plan> parse_plan(std::span<const uint8_t> header, std::string_view metadata,
                        const std::span<const uint8_t>* weights, uint64_t weights_size,
                        std::span<const uint8_t> blob, const std::string& source_name,
                        const detail::WeightsCopied* copied) {
  Plan plan;
  plan.format_version = kFormatVersion;
  plan.producer_version = read_producer(header);
  const bool copy_weights = weights != nullptr;
  MLPRT_RETURN_IF_ERROR(
      copy_weights
          ? detail::decode_metadata(metadata, *weights, source_name, plan, copied)
          : detail::decode_metadata_without_weights(metadata, weights_size, source_name, plan));
  if (std::string problem = detail::find_inconsistency(plan, copy_weights); !problem.empty()) {
    return Status(StatusCode::kCorruptData, detail::malformed_message(source_name, problem));
  }
  plan.backend_blob.assign(blob.begin(), blob.end());
  return plan;
}

Result<Plan> deserialize_checked(std::span<const uint8_t> bytes, const std::string& source_name,
                                 const detail::WeightsCopied* copied = nullptr) {
  MLPRT_RETURN_IF_ERROR(check_header(bytes, source_name));
  MLPRT_ASSIGN_OR_RETURN(auto sections, read_sections(bytes, bytes.size(), source_name));
  const auto* meta = reinterpret_cast<const char*>(bytes.data() + sections[0].offset);
  const auto weights = bytes.subspan(sections[1].offset, sections[1].size);
  return parse_plan(bytes, std::string_view(meta, sections[0].size), &weights, weights.size(),
                    bytes.subspan(sections[2].offset, sections[2].size), source_name, copied);
}


// A plan file open for reading (POSIX: pread and mmap; plans are regular files).
class PlanFile {
 public:
  PlanFile() = default;
  PlanFile(const PlanFile&) = delete;
  PlanFile& operator=(const PlanFile&) = delete;
  ~PlanFile() {
    if (m_fd >= 0) ::close(m_fd);
  }

  static Result<std::unique_ptr<PlanFile>> open(const std::filesystem::path& path,
                                                const std::string& source_name) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      return make_error(StatusCode::kNotFound, "plan '", source_name,
                        "' does not exist or is not a regular file");
    }
    auto file = std::make_unique<PlanFile>();
    file->m_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (file->m_fd < 0 || ::fstat(file->m_fd, &st) != 0) {
      return make_error(StatusCode::kIoError, "cannot open plan '", source_name,
                        "': ", std::strerror(errno));
    }
    file->m_size = static_cast<uint64_t>(st.st_size);
    file->m_source = source_name;
    return file;
  }

  [[nodiscard]] int fd() const { return m_fd; }
  [[nodiscard]] uint64_t size() const { return m_size; }

  Status read(uint64_t offset, std::span<uint8_t> out) const {
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = ::pread(m_fd, out.data() + done, out.size() - done,
                                static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        return make_error(StatusCode::kIoError, "cannot read plan '", m_source, "' at byte ",
                          offset + done, n < 0 ? ": " + std::string(std::strerror(errno))
                                               : std::string(": the file got shorter"));
      }
      done += static_cast<size_t>(n);
    }
    return Status::ok();
  }

  Result<std::vector<uint8_t>> read_header() const {
    std::vector<uint8_t> header(std::min<uint64_t>(m_size, kHeaderSize));
    MLPRT_RETURN_IF_ERROR(read(0, header));
    return header;
  }

 private:
  int m_fd = -1;
  uint64_t m_size = 0;
  std::string m_source;
};

// CRC-64 of the file's bytes before the trailer, read in 1 MiB chunks.
Result<uint64_t> stream_checksum(const PlanFile& file) {
  std::vector<uint8_t> chunk(size_t{1} << 20);
  const uint64_t body = file.size() - kTrailerSize;
  uint64_t crc = 0;
  for (uint64_t offset = 0; offset < body;) {
    const auto n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), body - offset));
    const std::span<uint8_t> part(chunk.data(), n);
    MLPRT_RETURN_IF_ERROR(file.read(offset, part));
    crc = crc64_extend(crc, part);
    offset += n;
  }
  return crc;
}

// A read-only private mapping of a whole file, unmapped on destruction.
class Mapping {
 public:
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  explicit Mapping(const PlanFile& file) : m_size(file.size()) {
    void* p = ::mmap(nullptr, m_size, PROT_READ, MAP_PRIVATE, file.fd(), 0);
    if (p != MAP_FAILED) m_data = static_cast<const uint8_t*>(p);
  }
  ~Mapping() {
    if (m_data != nullptr) ::munmap(const_cast<uint8_t*>(m_data), m_size);
  }
  [[nodiscard]] bool ok() const { return m_data != nullptr; }
  [[nodiscard]] std::span<const uint8_t> bytes() const { return {m_data, m_size}; }
  // Drops the pages wholly inside [offset, offset + size) from this process: they stop counting
  // in its resident memory and are read from the file again if touched.
  void release(uint64_t offset, uint64_t size) const {
    static const uint64_t kPage = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    const uint64_t begin = (offset + kPage - 1) / kPage * kPage;
    const uint64_t end = (offset + size) / kPage * kPage;
    if (end > begin) {
      ::madvise(const_cast<uint8_t*>(m_data) + begin, end - begin, MADV_DONTNEED);
    }
  }

 private:
  const uint8_t* m_data = nullptr;
  uint64_t m_size = 0;
};

// CRC-64 of a mapped plan's bytes before the trailer, `step` bytes at a time, each step's pages
// released once read.
uint64_t mapped_body_crc(const Mapping& mapping, uint64_t step) {
  const std::span<const uint8_t> bytes = mapping.bytes();
  const uint64_t body = bytes.size() - kTrailerSize;
  uint64_t crc = 0;
  for (uint64_t offset = 0; offset < body; offset += step) {
    const uint64_t n = std::min(step, body - offset);
    crc = crc64_extend(crc, bytes.subspan(offset, n));
    mapping.release(offset, n);
  }
  return crc;
}

// CRC-64 of the file's bytes before the trailer: through a mapping, 4 MiB at a time, each step
// released once read (no copy, no more than a step resident); by pread if it cannot be mapped.
Result<uint64_t> checksum_of(const PlanFile& file) {
  const Mapping mapping(file);
  if (!mapping.ok()) return stream_checksum(file);
  return mapped_body_crc(mapping, uint64_t{4} << 20);
}

// serialize_checked with its failures as Status; `release`: free each weight once written.
Result<std::vector<uint8_t>> serialize_reporting(const Plan& plan, bool release) {
  try {
    return serialize_checked(plan, release);
  } catch (const nlohmann::json::exception& e) {
    return make_error(StatusCode::kInvalidArgument, "cannot write plan of model '", plan.graph.name,
                      "': ", e.what(), " (tensor, node and attribute names must be valid UTF-8)");
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kInternal, "out of memory writing plan of model '",
                      plan.graph.name, "'");
  }
}

}  // namespace

Result<std::vector<uint8_t>> serialize_plan(const Plan& plan) {
  return serialize_reporting(plan, false);
}

Result<std::vector<uint8_t>> serialize_plan(Plan&& plan) { return serialize_reporting(plan, true); }

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

namespace {

// Runs a plan file reader, turning the metadata's JSON errors and allocation failures into
// Statuses that name the file.
template <class Read>
Result<PlanFileInfo> reading_file(const std::string& source_name, Read&& read) {
  try {
    return read();
  } catch (const nlohmann::json::exception& e) {
    return Status(StatusCode::kCorruptData,
                  detail::malformed_message(source_name, std::string("metadata: ") + e.what()));
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kInternal, "out of memory reading ", prefix(source_name));
  }
}

}  // namespace

Result<PlanFileInfo> read_plan_metadata(const std::filesystem::path& path,
                                        const std::string& source_name) {
  return reading_file(source_name, [&]() -> Result<PlanFileInfo> {
    MLPRT_ASSIGN_OR_RETURN(auto file, PlanFile::open(path, source_name));
    MLPRT_ASSIGN_OR_RETURN(std::vector<uint8_t> header, file->read_header());
    MLPRT_RETURN_IF_ERROR(check_frame(header, file->size(), source_name));
    std::vector<uint8_t> trailer(kTrailerSize);
    MLPRT_RETURN_IF_ERROR(file->read(file->size() - kTrailerSize, trailer));
    const uint64_t stored = read_u64(trailer, 0);
    MLPRT_ASSIGN_OR_RETURN(const uint64_t computed, checksum_of(*file));
    MLPRT_RETURN_IF_ERROR(check_checksum(stored, computed, source_name));
    MLPRT_ASSIGN_OR_RETURN(auto sections, read_sections(header, file->size(), source_name));
    std::vector<uint8_t> metadata(sections[0].size);
    MLPRT_RETURN_IF_ERROR(file->read(sections[0].offset, metadata));
    std::vector<uint8_t> blob(sections[2].size);
    MLPRT_RETURN_IF_ERROR(file->read(sections[2].offset, blob));
    PlanFileInfo out;
    MLPRT_ASSIGN_OR_RETURN(
        out.plan,
        parse_plan(header,
                   std::string_view(reinterpret_cast<const char*>(metadata.data()), metadata.size()),
                   nullptr, sections[1].size, blob, source_name, nullptr));
    out.file_bytes = file->size();
    out.hash_hex = hex64(stored);
    return out;
  });
}

Result<PlanFileInfo> read_plan_file(const std::filesystem::path& path,
                                    const std::string& source_name) {
  return reading_file(source_name, [&]() -> Result<PlanFileInfo> {
    MLPRT_ASSIGN_OR_RETURN(auto file, PlanFile::open(path, source_name));
    const Mapping mapping(*file);
    PlanFileInfo out;
    out.file_bytes = file->size();
    if (!mapping.ok()) {  // e.g. an empty file: read it whole
      std::vector<uint8_t> bytes(file->size());
      MLPRT_RETURN_IF_ERROR(file->read(0, bytes));
      MLPRT_ASSIGN_OR_RETURN(out.plan, deserialize_checked(bytes, source_name));
      out.hash_hex = plan_hash_hex(bytes);
      return out;
    }
    const std::span<const uint8_t> bytes = mapping.bytes();
    MLPRT_RETURN_IF_ERROR(check_frame(bytes.first(std::min<size_t>(bytes.size(), kHeaderSize)),
                                      bytes.size(), source_name));
    // The checksum in 16 MiB steps, each released after it is read, so that the file's pages
    // and the constants' copies are not resident together.
    const uint64_t body = bytes.size() - kTrailerSize;
    const uint64_t crc = mapped_body_crc(mapping, uint64_t{16} << 20);
    MLPRT_RETURN_IF_ERROR(check_checksum(read_u64(bytes, body), crc, source_name));
    MLPRT_ASSIGN_OR_RETURN(auto sections, read_sections(bytes, bytes.size(), source_name));
    const uint64_t weights_offset = sections[1].offset;
    const detail::WeightsCopied release = [&](uint64_t offset, uint64_t size) {
      mapping.release(weights_offset + offset, size);
    };
    const auto* meta = reinterpret_cast<const char*>(bytes.data() + sections[0].offset);
    const auto weights = bytes.subspan(sections[1].offset, sections[1].size);
    MLPRT_ASSIGN_OR_RETURN(
        out.plan, parse_plan(bytes, std::string_view(meta, sections[0].size), &weights,
                             weights.size(), bytes.subspan(sections[2].offset, sections[2].size),
                             source_name, &release));
    out.hash_hex = hex64(read_u64(bytes, body));
    return out;
  });
}

}  // namespace mlprt::plan
