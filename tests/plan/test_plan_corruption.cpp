// Every damaged or hostile plan is refused with the right kind of error and never crashes.

#include <nlohmann/json.hpp>

#include "mlprt/version.h"
#include "plan_test_util.h"

namespace mlprt::plan {
namespace {

using nlohmann::json;
using test_util::get_le;
using test_util::make_rich_plan;
using test_util::put_le;
using test_util::RawPlan;
using test_util::reseal;

const std::string kName = "model.plan";

std::vector<uint8_t> rich_bytes() {
  auto bytes = serialize_plan(make_rich_plan());
  EXPECT_TRUE(bytes.is_ok()) << bytes.status().message();
  return *bytes;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The refusal every damaged plan gets: an error naming the plan, never a success.
Status refusal(const std::vector<uint8_t>& b) {
  auto r = deserialize_plan(b, kName);
  if (r.is_ok()) return Status::ok();
  EXPECT_EQ(r.status().message().rfind("plan '" + kName + "'", 0), 0u) << r.status().message();
  return r.status();
}

TEST(PlanCorruption, EverySingleFlippedByteIsCaughtWithTheRightKind) {
  const std::vector<uint8_t> good = rich_bytes();
  ASSERT_TRUE(deserialize_plan(good, kName).is_ok());
  for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
    for (size_t i = 0; i < good.size(); ++i) {
      std::vector<uint8_t> b = good;
      b[i] ^= mask;
      const Status s = refusal(b);
      ASSERT_FALSE(s.is_ok()) << "flip of byte " << i << " with mask " << int{mask} << " accepted";
      const std::string& m = s.message();
      if (i < 8) {
        EXPECT_EQ(s.code(), StatusCode::kCorruptData) << i;
        EXPECT_TRUE(contains(m, "is not an mlprt plan (bad magic bytes)")) << i << ": " << m;
      } else if (i < 12) {
        EXPECT_EQ(s.code(), StatusCode::kVersionMismatch) << i << ": " << m;
      } else if (i >= 16 && i < 24) {
        EXPECT_EQ(s.code(), StatusCode::kCorruptData) << i;
        EXPECT_TRUE(contains(m, "is truncated: the header says") || contains(m, "trailing bytes"))
            << i << ": " << m;
      } else {
        EXPECT_EQ(s.code(), StatusCode::kCorruptData) << i;
        EXPECT_TRUE(contains(m, "is corrupted: checksum mismatch (stored ")) << i << ": " << m;
      }
    }
  }
}

TEST(PlanCorruption, EveryTruncationIsRefused) {
  const std::vector<uint8_t> good = rich_bytes();
  for (size_t n = 0; n < good.size(); ++n) {
    std::vector<uint8_t> b(good.begin(), good.begin() + static_cast<ptrdiff_t>(n));
    const Status s = refusal(b);
    ASSERT_FALSE(s.is_ok()) << "truncated to " << n << " bytes accepted";
    EXPECT_EQ(s.code(), StatusCode::kCorruptData) << n;
    if (n < 8) {
      EXPECT_TRUE(contains(s.message(), "bad magic bytes")) << n << ": " << s.message();
    } else {
      EXPECT_TRUE(contains(s.message(), "is truncated")) << n << ": " << s.message();
    }
  }
  const Status s = refusal(std::vector<uint8_t>(good.begin(), good.end() - 100));
  EXPECT_TRUE(contains(s.message(), "the header says " + std::to_string(good.size()) +
                                        " bytes, the file has " +
                                        std::to_string(good.size() - 100)))
      << s.message();
}

TEST(PlanCorruption, TrailingBytesAreRefused) {
  std::vector<uint8_t> b = rich_bytes();
  b.insert(b.end(), 5, 0);
  const Status s = refusal(b);
  EXPECT_EQ(s.code(), StatusCode::kCorruptData);
  EXPECT_TRUE(contains(s.message(), "has 5 trailing bytes")) << s.message();
}

TEST(PlanCorruption, NotAPlanAtAll) {
  const std::string text = "PK\x03\x04 this is a zip file, not a plan, but long enough";
  const Status s = refusal(std::vector<uint8_t>(text.begin(), text.end()));
  EXPECT_EQ(s.code(), StatusCode::kCorruptData);
  EXPECT_TRUE(contains(s.message(), "is not an mlprt plan (bad magic bytes)")) << s.message();
  EXPECT_TRUE(contains(s.message(), "50 4b 03 04")) << s.message();
  EXPECT_EQ(refusal({}).code(), StatusCode::kCorruptData);
}

TEST(PlanVersion, NewerAndOlderFormatsAreVersionMismatches) {
  for (uint32_t version : {kFormatVersion + 1, kFormatVersion + 6, 0u}) {
    std::vector<uint8_t> b = rich_bytes();
    put_le(b, 8, 4, version);
    reseal(b);
    const Status s = refusal(b);
    ASSERT_EQ(s.code(), StatusCode::kVersionMismatch) << s.message();
    const std::string& m = s.message();
    EXPECT_TRUE(contains(m, "has plan format version " + std::to_string(version))) << m;
    EXPECT_TRUE(contains(m, "reads format version " + std::to_string(kFormatVersion))) << m;
    EXPECT_TRUE(contains(m, std::string("this mlprt (") + kVersionString + ")")) << m;
    EXPECT_TRUE(contains(m, "`mlprt build`")) << m;
    EXPECT_TRUE(contains(m, "written by mlprt 0.1.0")) << m;
  }
}

TEST(PlanVersion, NewerPlanWithADifferentLayoutIsStillRecognised) {
  // A future format may change everything after the version field; we still name it.
  std::vector<uint8_t> b = {'M', 'L', 'P', 'R', 'T', 'P', 'L', 'N', 9, 0, 0, 0, 1, 2};
  const Status s = refusal(b);
  EXPECT_EQ(s.code(), StatusCode::kVersionMismatch) << s.message();
  EXPECT_TRUE(contains(s.message(), "format version 9")) << s.message();
}

// ------------------------------------------------- hostile files: valid checksum, bad content

Status refusal_of_metadata(const std::function<void(json&)>& edit) {
  RawPlan raw = RawPlan::split(rich_bytes());
  json meta = json::parse(raw.metadata);
  edit(meta);
  raw.metadata = meta.dump();
  return refusal(raw.assemble());
}

void expect_malformed(const Status& s, const std::string& part) {
  EXPECT_EQ(s.code(), StatusCode::kCorruptData) << s.message();
  EXPECT_TRUE(contains(s.message(), "is malformed")) << s.message();
  EXPECT_TRUE(contains(s.message(), part)) << "expected '" << part << "' in: " << s.message();
}

json& constant_named(json& meta, const std::string& name) {
  for (json& c : meta["graph"]["constants"]) {
    if (c["name"] == name) return c;
  }
  ADD_FAILURE() << "no constant " << name;
  return meta;
}

TEST(PlanHostile, ReassembledUneditedPlanIsAccepted) {
  // Guards the tests below: their refusals come from the edit, not from the re-assembly.
  RawPlan raw = RawPlan::split(rich_bytes());
  auto back = deserialize_plan(raw.assemble(), kName);
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  test_util::expect_plans_equal(make_rich_plan(), *back);
}

TEST(PlanHostile, ConstantOffsetPastTheEnd) {
  expect_malformed(refusal_of_metadata([](json& m) {
                     constant_named(m, "fc0.weight")["offset"] = uint64_t{1} << 40;
                   }),
                   "past the end of the");
  expect_malformed(refusal_of_metadata([](json& m) {
                     constant_named(m, "fc0.weight")["offset"] =
                         std::numeric_limits<uint64_t>::max() - 63;
                   }),
                   "past the end");
}

TEST(PlanHostile, ConstantSizesAndDims) {
  expect_malformed(refusal_of_metadata([](json& m) { constant_named(m, "fc0.bias")["size"] = 16; }),
                   "graph.constants[");
  expect_malformed(refusal_of_metadata([](json& m) {
                     constant_named(m, "fc0.bias")["dims"] = {int64_t{1} << 62, int64_t{1} << 62};
                   }),
                   "more than the weights section");
  expect_malformed(
      refusal_of_metadata([](json& m) { constant_named(m, "fc0.bias")["dims"] = {-3}; }),
      "negative dimension");
  expect_malformed(refusal_of_metadata([](json& m) {
                     json& c = constant_named(m, "fc0.bias");
                     c["offset"] = c["offset"].get<uint64_t>() + 4;
                   }),
                   "not a multiple of 64");
  expect_malformed(
      refusal_of_metadata([](json& m) { constant_named(m, "fc0.bias")["dtype"] = "float8"; }),
      "'float8', not a known data type");
  expect_malformed(refusal_of_metadata([](json& m) { constant_named(m, "fc0.bias")["size"] = -4; }),
                   "should be a non-negative integer, found number");
}

TEST(PlanHostile, GraphStructure) {
  expect_malformed(
      refusal_of_metadata([](json& m) { m["graph"]["nodes"][1]["inputs"][0] = "ghost"; }),
      "reads tensor 'ghost'");
  expect_malformed(
      refusal_of_metadata([](json& m) { m["graph"]["nodes"][1]["outputs"][0] = "input"; }),
      "writes tensor 'input', defined before");
  expect_malformed(
      refusal_of_metadata([](json& m) { m["graph"]["outputs"][0]["name"] = "nothing"; }),
      "graph output 'nothing' is never produced");
  expect_malformed(refusal_of_metadata([](json& m) { m["graph"]["inputs"][0]["shape"][1] = -7; }),
                   "graph.inputs[0].shape[1]");
  expect_malformed(refusal_of_metadata([](json& m) { m["graph"].erase("nodes"); }),
                   "'graph.nodes' is missing");
  expect_malformed(refusal_of_metadata([](json& m) { m["graph"]["opset"] = "17"; }),
                   "'graph.opset' should be an integer, found string");
  expect_malformed(refusal_of_metadata(
                       [](json& m) { m["graph"]["opset"] = std::numeric_limits<uint64_t>::max(); }),
                   "larger than a 64-bit signed integer");
  expect_malformed(refusal_of_metadata([](json& m) { m["graph"] = json::array(); }),
                   "should be an object, found array");
  expect_malformed(refusal_of_metadata([](json& m) {
                     m["graph"]["nodes"][0]["attributes"]["alpha"]["type"] = "complex";
                   }),
                   "not an attribute type");
  expect_malformed(refusal_of_metadata([](json& m) {
                     m["graph"]["nodes"][0]["attributes"]["value"]["offset"] = 1u << 30;
                   }),
                   "graph.nodes[0].attributes.value.offset");
  expect_malformed(refusal_of_metadata([](json& m) {
                     m["graph"]["constants"].push_back(m["graph"]["constants"][0]);
                   }),
                   "repeats constant");
}

TEST(PlanHostile, Profiles) {
  expect_malformed(
      refusal_of_metadata([](json& m) { m["profiles"][0]["ghost"] = m["profiles"][0]["input"]; }),
      "profile 0 input 'ghost' is not a graph input");
  expect_malformed(refusal_of_metadata([](json& m) {
                     m["profiles"][1]["input"]["min"] = {300, 4};
                   }),
                   "profiles[1].input");
  expect_malformed(refusal_of_metadata([](json& m) {
                     m["profiles"][0]["input"]["max"] = {64, 5};
                   }),
                   "fixed at 4");
}

TEST(PlanHostile, MetadataThatIsNotJson) {
  RawPlan raw = RawPlan::split(rich_bytes());
  raw.metadata = raw.metadata.substr(0, raw.metadata.size() / 2);
  expect_malformed(refusal(raw.assemble()), "not valid JSON");
  raw.metadata = std::string(100000, '[');
  expect_malformed(refusal(raw.assemble()), "nested 100000 levels deep");
  raw.metadata = "";
  expect_malformed(refusal(raw.assemble()), "not valid JSON");
}

TEST(PlanHostile, SectionsOutsideTheFileOrOverlapping) {
  const std::vector<uint8_t> good = rich_bytes();
  struct Edit {
    size_t field;
    uint64_t value;
  };
  const uint64_t huge = std::numeric_limits<uint64_t>::max();
  for (Edit e : {Edit{24, huge}, Edit{32, huge}, Edit{32, good.size()}, Edit{40, 64},
                 Edit{48, huge - 100}, Edit{56, good.size()}, Edit{64, 9}, Edit{24, 0}}) {
    std::vector<uint8_t> b = good;
    put_le(b, e.field, 8, e.value);
    reseal(b);
    expect_malformed(refusal(b), "section");
  }
  std::vector<uint8_t> b = good;
  put_le(b, 12, 4, 1);
  reseal(b);
  expect_malformed(refusal(b), "header flags");
}

}  // namespace
}  // namespace mlprt::plan
