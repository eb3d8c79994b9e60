// Round trip, determinism and the writer's own checks.

#include <chrono>
#include <nlohmann/json.hpp>

#include "plan_test_util.h"

namespace mlprt::plan {
namespace {

using test_util::expect_plans_equal;
using test_util::get_le;
using test_util::make_rich_plan;

// Rows of 100 KiB in the big-weights test (100 MB); sanitized and debug builds run ~40x slower
// and get a tenth of it.
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__)
constexpr int kBigRows = 1000;
#else
constexpr int kBigRows = 100;
#endif

TEST(PlanRoundTrip, RichPlanComesBackFieldByField) {
  const Plan plan = make_rich_plan();
  auto bytes = serialize_plan(plan);
  ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
  auto back = deserialize_plan(*bytes, "rich.plan");
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  expect_plans_equal(plan, *back);
}

TEST(PlanRoundTrip, EmptyBlobNoConstantsNoProfiles) {
  Plan plan;
  plan.producer_version = "0.1.0";
  plan.backend = "cpu";
  plan.graph.name = "identity";
  plan.graph.inputs = {{"x", DataType::kFloat32, {ir::Dim{2, {}}}}};
  plan.graph.outputs = {{"x", DataType::kFloat32, {ir::Dim{2, {}}}}};
  auto bytes = serialize_plan(plan);
  ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
  auto back = deserialize_plan(*bytes, "small.plan");
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  expect_plans_equal(plan, *back);
  EXPECT_TRUE(back->backend_blob.empty());
}

TEST(PlanRoundTrip, RoundTripOfRoundTripIsIdentical) {
  auto first = serialize_plan(make_rich_plan());
  ASSERT_TRUE(first.is_ok());
  auto back = deserialize_plan(*first, "rich.plan");
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  auto second = serialize_plan(*back);
  ASSERT_TRUE(second.is_ok());
  EXPECT_TRUE(*first == *second);
}

TEST(PlanDeterminism, SameBytesForEqualPlansBuiltSeparately) {
  auto a = serialize_plan(make_rich_plan());
  auto b = serialize_plan(make_rich_plan());
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_TRUE(*a == *b);
  // A different value must give different bytes (the comparison above can fail).
  Plan changed = make_rich_plan();
  changed.graph.constants["fc0.bias"].data[0] ^= std::byte{1};
  auto c = serialize_plan(changed);
  ASSERT_TRUE(c.is_ok());
  EXPECT_FALSE(*a == *c);
}

TEST(PlanLayout, HeaderAndSectionsAreWhereTheDocsSay) {
  auto bytes = serialize_plan(make_rich_plan());
  ASSERT_TRUE(bytes.is_ok());
  const std::vector<uint8_t>& b = *bytes;
  EXPECT_EQ(std::string(b.begin(), b.begin() + 8), "MLPRTPLN");
  EXPECT_EQ(get_le(b, 8, 4), kFormatVersion);
  EXPECT_EQ(get_le(b, 12, 4), 0u);
  EXPECT_EQ(get_le(b, 16, 8), b.size());
  EXPECT_EQ(get_le(b, 24, 8), 128u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.data() + 72)), "0.1.0");
  for (size_t i = 104; i < 128; ++i) EXPECT_EQ(b[i], 0) << "reserved byte " << i;
  const uint64_t weights_offset = get_le(b, 40, 8);
  const uint64_t blob_offset = get_le(b, 56, 8);
  EXPECT_EQ(weights_offset % 64, 0u);
  EXPECT_EQ(blob_offset % 64, 0u);
  EXPECT_EQ(get_le(b, 64, 8), 300u);
  EXPECT_EQ(blob_offset + 300 + 8, b.size());
  EXPECT_EQ(get_le(b, b.size() - 8, 8), crc64(std::span(b).first(b.size() - 8)));

  // Every constant sits 64-byte aligned in the weights section with the bytes we gave it.
  const auto meta = nlohmann::json::parse(
      std::string(b.begin() + 128, b.begin() + 128 + static_cast<ptrdiff_t>(get_le(b, 32, 8))));
  const Plan plan = make_rich_plan();
  ASSERT_EQ(meta["graph"]["constants"].size(), plan.graph.constants.size());
  for (const auto& entry : meta["graph"]["constants"]) {
    const uint64_t offset = entry["offset"];
    EXPECT_EQ(offset % 64, 0u) << entry.dump();
    const auto& data = plan.graph.constants.at(entry["name"].get<std::string>()).data;
    ASSERT_EQ(entry["size"].get<uint64_t>(), data.size());
    if (!data.empty()) {
      EXPECT_EQ(std::memcmp(b.data() + weights_offset + offset, data.data(), data.size()), 0);
    }
  }
  // Symbolic, anonymous and named-static dims are spelled as the docs say.
  EXPECT_EQ(meta["graph"]["inputs"][0]["shape"], nlohmann::json::parse(R"(["batch", 4])"));
  EXPECT_EQ(meta["graph"]["inputs"][1]["shape"],
            nlohmann::json::parse(R"([null, {"symbol": "classes", "value": 3}])"));
}

TEST(PlanHash, IsTheStoredChecksumInHex) {
  auto bytes = serialize_plan(make_rich_plan());
  ASSERT_TRUE(bytes.is_ok());
  const std::vector<uint8_t>& b = *bytes;
  char expected[17];
  std::snprintf(expected, sizeof expected, "%016llx",
                static_cast<unsigned long long>(crc64(std::span(b).first(b.size() - 8))));
  EXPECT_EQ(plan_hash_hex(b), expected);
  EXPECT_EQ(plan_hash_hex(std::span(b).first(20)), "");
  EXPECT_EQ(plan_hash_hex({}), "");
}

TEST(PlanWriter, RefusesPlansItCouldNotReadBack) {
  {
    Plan p = make_rich_plan();
    p.format_version = 2;
    auto r = serialize_plan(p);
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("format version 2"), std::string::npos);
  }
  {
    Plan p = make_rich_plan();
    p.producer_version = std::string(40, 'v');
    EXPECT_EQ(serialize_plan(p).status().code(), StatusCode::kInvalidArgument);
  }
  {
    Plan p = make_rich_plan();
    p.graph.nodes[1].inputs[0] = "nowhere";
    auto r = serialize_plan(p);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("'nowhere'"), std::string::npos) << r.status().message();
  }
  {
    Plan p = make_rich_plan();
    p.graph.constants["fc0.bias"].data.pop_back();
    auto r = serialize_plan(p);
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("fc0.bias"), std::string::npos) << r.status().message();
  }
  {
    Plan p = make_rich_plan();
    OptimizationProfile wrong_rank;
    ASSERT_TRUE(wrong_rank.set_dimensions("input", {{1}, {2}, {3}}).is_ok());
    p.profiles.push_back(wrong_rank);
    auto r = serialize_plan(p);
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("profile 2 input 'input'"), std::string::npos)
        << r.status().message();
  }
  {
    Plan p = make_rich_plan();
    p.graph.nodes[0].name = "bad \xff utf8";
    auto r = serialize_plan(p);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(PlanRoundTrip, HundredMegabytesOfWeights) {
  Plan plan = make_rich_plan();
  std::vector<float> values(size_t{25 * 1024} * kBigRows);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 1000) * 0.5f;
  plan.graph.constants["big"] =
      test_util::make_constant<float>(DataType::kFloat32, {kBigRows, 25 * 1024}, values);
  const auto t0 = std::chrono::steady_clock::now();
  auto bytes = serialize_plan(plan);
  const auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
  auto back = deserialize_plan(*bytes, "big.plan");
  const auto t2 = std::chrono::steady_clock::now();
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_TRUE(back->graph.constants.at("big").data == plan.graph.constants.at("big").data);
  std::printf("%.0f MB plan: serialize %.1f ms, deserialize %.1f ms\n",
              static_cast<double>(bytes->size()) / 1e6,
              std::chrono::duration<double, std::milli>(t1 - t0).count(),
              std::chrono::duration<double, std::milli>(t2 - t1).count());
}

}  // namespace
}  // namespace mlprt::plan
