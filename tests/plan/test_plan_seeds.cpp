// The plan fuzzer's seeds as regression tests: the valid ones load and run, each hand-made
// hostile one (valid checksum) is refused with a message, never a crash; and every reproducer
// the fuzzer found (fuzz/plan_crashes/) loads or is refused cleanly.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "mlprt/logger.h"
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
      EXPECT_NE(s.message().find("fuzz.plan"), std::string::npos) << seed.name << ": " << s.message();
    }
  }
  EXPECT_GE(hostile, 25u);
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
    (void)load_and_run(bytes);  // loads or is refused; a crash fails the test binary
    ++files;
  }
  RecordProperty("reproducers", static_cast<int>(files));
}

}  // namespace
}  // namespace mlprt::fuzz
