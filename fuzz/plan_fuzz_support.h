#pragma once
// Shared by the plan-loading fuzzer, its seed writer and tests/plan/test_plan_seeds.cpp: the
// seed plans (small valid ones built here, and hand-made hostile ones with valid checksums) and
// what the fuzzer does with each input (load, then run at the first profile's min shape).

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mlprt/status.h"

namespace mlprt::fuzz {

struct PlanSeed {
  std::string name;  ///< file name in the corpus, says what is wrong with it
  std::vector<uint8_t> bytes;
  bool valid = false;  ///< loads and runs; else Engine::load must refuse it
};

/// Three small valid cpu plans (an MLP with one and with two profiles; two inputs with Add,
/// LayerNorm, Softmax, Reshape and Flatten), built for this machine, and at least 25 hostile
/// variants: bad sizes, offsets, dims, dtypes, cycles, unknown ops, garbage backend sections,
/// 200,000-deep JSON.
Result<std::vector<PlanSeed>> make_plan_seeds();

/// Engine::load; on success runs one enqueue at the first profile's min shape (zeros), and
/// with split batch, where the plan allows it, a batch past the largest max. Returns the
/// load's status (OK when it loaded); never crashes on any input, which is what the fuzzer
/// checks. Inputs are capped to keep each run small.
Status load_and_run(std::span<const uint8_t> bytes);

}  // namespace mlprt::fuzz
