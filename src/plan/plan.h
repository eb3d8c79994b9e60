#pragma once
// The plan file: a serialized engine. Layout and compatibility rules: docs/plan-format.md.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/row_independence.h"
#include "mlprt/optimization_profile.h"
#include "mlprt/status.h"
#include "mlprt/version.h"

namespace mlprt::plan {

inline constexpr char kMagic[8] = {'M', 'L', 'P', 'R', 'T', 'P', 'L', 'N'};
/// Bumped on every incompatible layout change; readers refuse other versions.
inline constexpr uint32_t kFormatVersion = kPlanFormatVersion;

struct Plan {
  uint32_t format_version = kFormatVersion;
  std::string producer_version;   ///< mlprt version that wrote it
  std::string backend;            ///< "cpu"
  std::string hardware;           ///< Backend::hardware_id() at build time
  std::string precision = "fp32";
  std::string build_config_json;  ///< the BuilderConfig and build flags, for inspect
  /// One per profile, each holding every graph input (static inputs as min = opt = max).
  std::vector<OptimizationProfile> profiles;
  ir::Graph graph;                    ///< optimized graph (layer ops) with its constants
  std::vector<uint8_t> backend_blob;  ///< Backend::compile output, opaque here
  /// Optional "refit" metadata key (src/refit/refit_record.h): compact JSON of an object, or ""
  /// when the plan has none (built by an mlprt without refit). Opaque here.
  std::string refit_json;
  /// Optional metadata key "accuracy": what an accuracy-budget build chose and measured (a JSON
  /// object, see docs/plan-format.md); empty: the plan was built without a budget.
  std::string accuracy_json;
  /// Whether the builder proved the graph's rows independent (metadata key
  /// "row_independence"); absent in plans built before it was recorded.
  std::optional<ir::RowIndependence> row_independence;
};

/// Deterministic: the same Plan gives the same bytes (no timestamps, sorted maps).
Result<std::vector<uint8_t>> serialize_plan(const Plan& plan);
/// The same bytes, releasing each constant's data once it is written (the plan's constants are
/// empty afterwards): a build holds the weights once, not twice, while it writes its plan.
Result<std::vector<uint8_t>> serialize_plan(Plan&& plan);
/// Verifies magic, format version, size, checksum, then parses. Each failure has its own
/// message naming `source_name`, what was found and what was expected.
Result<Plan> deserialize_plan(std::span<const uint8_t> bytes, const std::string& source_name);
/// Hex of the checksum stored in a plan (what inspect prints as the plan hash).
std::string plan_hash_hex(std::span<const uint8_t> bytes);

/// A plan read from its file.
struct PlanFileInfo {
  Plan plan;
  uint64_t file_bytes = 0;
  std::string hash_hex;  ///< the checksum stored in the file, verified
};

/// The plan file at `path` without its weights (inspect): header, metadata and backend blob,
/// with the same checks and messages as deserialize_plan. The checksum is verified by streaming
/// the file through CRC-64: mapped 4 MiB at a time, each step released once read (read in 1 MiB
/// chunks where it cannot be mapped), so no more than that of the weights is in memory at once.
/// The graph's constants keep dtype and dims but hold no data.
Result<PlanFileInfo> read_plan_metadata(const std::filesystem::path& path,
                                        const std::string& source_name);
/// The whole plan file at `path`, as deserialize_plan, holding one copy of the weights at a
/// time: the file is mapped, checksummed and copied from in steps whose pages are released
/// once read, so its bytes and the parsed constants are never resident together.
Result<PlanFileInfo> read_plan_file(const std::filesystem::path& path,
                                    const std::string& source_name);

}  // namespace mlprt::plan
