// Reading plans from files: the whole plan (mapped, released as parsed) and the metadata only
// (inspect), each against deserialize_plan of the same bytes; the consuming serializer.

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "plan_test_util.h"

namespace mlprt::plan {
namespace {

using test_util::expect_plans_equal;
using test_util::make_rich_plan;

std::filesystem::path write_temp(const std::vector<uint8_t>& bytes, const std::string& name) {
  const auto path = std::filesystem::temp_directory_path() /
                    (name + "." + std::to_string(::getpid()) + ".plan");
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path;
}

TEST(PlanFile, WholeFileEqualsDeserialize) {
  const Plan plan = make_rich_plan();
  auto bytes = serialize_plan(plan);
  ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
  const auto path = write_temp(*bytes, "whole");
  auto read = read_plan_file(path, "whole.plan");
  std::filesystem::remove(path);
  ASSERT_TRUE(read.is_ok()) << read.status().message();
  expect_plans_equal(plan, read->plan);
  EXPECT_EQ(read->file_bytes, bytes->size());
  EXPECT_EQ(read->hash_hex, plan_hash_hex(*bytes));
}

TEST(PlanFile, MetadataOnlyHasEverythingButTheWeightBytes) {
  const Plan plan = make_rich_plan();
  auto bytes = serialize_plan(plan);
  ASSERT_TRUE(bytes.is_ok());
  const auto path = write_temp(*bytes, "meta");
  auto read = read_plan_metadata(path, "meta.plan");
  std::filesystem::remove(path);
  ASSERT_TRUE(read.is_ok()) << read.status().message();
  const Plan& meta = read->plan;
  EXPECT_EQ(read->hash_hex, plan_hash_hex(*bytes));
  EXPECT_EQ(read->file_bytes, bytes->size());
  EXPECT_EQ(meta.backend, plan.backend);
  EXPECT_EQ(meta.hardware, plan.hardware);
  EXPECT_EQ(meta.build_config_json, plan.build_config_json);
  EXPECT_EQ(meta.backend_blob, plan.backend_blob);
  ASSERT_EQ(meta.profiles.size(), plan.profiles.size());
  ASSERT_EQ(meta.graph.nodes.size(), plan.graph.nodes.size());
  ASSERT_EQ(meta.graph.constants.size(), plan.graph.constants.size());
  for (const auto& [name, c] : plan.graph.constants) {
    const ir::Constant& m = meta.graph.constants.at(name);
    EXPECT_EQ(m.dims, c.dims) << name;
    EXPECT_EQ(m.dtype, c.dtype) << name;
    EXPECT_TRUE(m.data.empty()) << name;
  }
}

TEST(PlanFile, MetadataOnlyStillVerifiesTheWeightsChecksum) {
  auto bytes = serialize_plan(make_rich_plan());
  ASSERT_TRUE(bytes.is_ok());
  auto damaged = *bytes;
  // A byte inside the weights section (offset at header byte 40).
  const uint64_t weights_offset = test_util::get_le(damaged, 40, 8);
  damaged[weights_offset + 1] ^= 0x10;
  const auto path = write_temp(damaged, "damaged");
  auto meta = read_plan_metadata(path, "damaged.plan");
  auto whole = read_plan_file(path, "damaged.plan");
  std::filesystem::remove(path);
  ASSERT_FALSE(meta.is_ok());
  EXPECT_NE(meta.status().message().find("checksum mismatch"), std::string::npos)
      << meta.status().message();
  ASSERT_FALSE(whole.is_ok());
  EXPECT_EQ(whole.status().message(), meta.status().message());
}

TEST(PlanFile, MissingAndEmptyFilesAreRefusedByName) {
  auto missing = read_plan_metadata("/nonexistent/x.plan", "x.plan");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find("does not exist"), std::string::npos);
  const auto path = write_temp({}, "empty");
  auto meta = read_plan_metadata(path, "empty.plan");
  auto whole = read_plan_file(path, "empty.plan");
  std::filesystem::remove(path);
  ASSERT_FALSE(meta.is_ok());
  ASSERT_FALSE(whole.is_ok());
  EXPECT_NE(meta.status().message().find("the file is empty"), std::string::npos)
      << meta.status().message();
  EXPECT_EQ(meta.status().message(), whole.status().message());
}

TEST(PlanSerialize, ConsumingSerializerWritesTheSameBytesAndReleasesWeights) {
  const Plan plan = make_rich_plan();
  auto copy_bytes = serialize_plan(plan);
  ASSERT_TRUE(copy_bytes.is_ok());
  Plan consumed = make_rich_plan();
  auto moved_bytes = serialize_plan(std::move(consumed));
  ASSERT_TRUE(moved_bytes.is_ok());
  EXPECT_EQ(*copy_bytes, *moved_bytes);
  for (const auto& [name, c] : consumed.graph.constants) EXPECT_TRUE(c.data.empty()) << name;  // NOLINT(bugprone-use-after-move)
}

}  // namespace
}  // namespace mlprt::plan
