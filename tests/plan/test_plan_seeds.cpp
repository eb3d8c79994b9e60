// The plan fuzzer's seeds as regression tests: the valid ones load and run, each hand-made
// hostile one (valid checksum) is refused with a message, never a crash; and every reproducer
// the fuzzer found (fuzz/plan_crashes/) loads or is refused cleanly.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "backends/registry.h"
#include "mlprt/logger.h"
#include "plan_framing.h"
#include "plan_fuzz_support.h"

namespace mlprt::fuzz {
namespace {

TEST(PlanSeeds, ValidSeedsLoadAndHostileOnesAreRefusedWithAMessage) {
  auto seeds = make_plan_seeds();
  ASSERT_TRUE(seeds.is_ok()) << seeds.status().message();
  size_t hostile = 0;
  for (const PlanSeed& seed : *seeds) {
    const Status s = load_and_run(seed.bytes);
    if (seed.valid) {
      EXPECT_TRUE(s.is_ok()) << seed.name << ": " << s.message();
    } else {
      ++hostile;
      EXPECT_FALSE(s.is_ok()) << seed.name << " was accepted";
      EXPECT_NE(s.message().find("fuzz.plan"), std::string::npos)
          << seed.name << ": " << s.message();
    }
  }
  EXPECT_GE(hostile, 25u);
}

// `bytes` with the metadata's and a JSON backend section's "hardware" set to this machine's.
std::vector<uint8_t> retarget(const std::vector<uint8_t>& bytes) {
  auto sections = split_plan(bytes);
  if (!sections) return bytes;
  auto cpu = backend::find_backend("cpu");
  if (!cpu) return bytes;
  const std::string here = (*cpu)->hardware_id();
  nlohmann::json meta = nlohmann::json::parse(sections->metadata, nullptr, false);
  if (meta.is_object() && meta.contains("hardware")) {
    meta["hardware"] = here;
    sections->metadata = meta.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  nlohmann::json blob =
      nlohmann::json::parse(sections->blob.begin(), sections->blob.end(), nullptr, false);
  if (blob.is_object() && blob.contains("hardware")) {
    blob["hardware"] = here;
    const std::string text = blob.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    sections->blob.assign(text.begin(), text.end());
  }
  return frame_plan(*sections);
}

TEST(PlanSeeds, FuzzerReproducersNeverCrash) {
  set_log_severity(Severity::kError);
  const std::filesystem::path dir =
      std::filesystem::path(MLPRT_SOURCE_DIR) / "fuzz" / "plan_crashes";
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.path().filename() == "README.md") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                     std::istreambuf_iterator<char>());
    // Made for the machine that found it: as it is (a hardware mismatch reaches the re-tune
    // path), and retargeted to this one, so that it passes the hardware check and reaches the
    // code behind it. Each loads or is refused; a crash fails the test binary.
    (void)load_and_run(bytes);
    (void)load_and_run(retarget(bytes));
    ++files;
  }
  RecordProperty("reproducers", static_cast<int>(files));
}

}  // namespace
}  // namespace mlprt::fuzz
