#!/usr/bin/env bash
# Builds the plan-loading fuzzer (preset `fuzz`: clang, ASan + UBSan, libFuzzer) and runs it
# for a bounded time, seeded with small valid plans built on this machine and hand-made hostile
# ones (fuzz/plan_fuzz_support.cpp).
#   fuzz/run_plan.sh [seconds=60] [extra libFuzzer flags, e.g. -runs=1000000]
# Exits non-zero on any crash, leak, sanitizer report or timeout; the reproducer is written to
# fuzz/plan_crashes/ (fix the loader, keep the file: tests/plan/test_plan_seeds.cpp replays it).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)" --target mlprt_plan_load_fuzzer mlprt_make_plan_seeds
corpus=build/fuzz/plan_corpus
mkdir -p "$corpus" fuzz/plan_crashes
build/fuzz/fuzz/mlprt_make_plan_seeds "$corpus"
# libomp's thread state at exit is not a leak of ours (fuzz/lsan_plan.supp).
# A plan may declare shapes whose buffers this machine cannot hold: the runtime's allocation
# fails and the load is refused (not an ASan abort).
ASAN_OPTIONS="allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan_plan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
  build/fuzz/fuzz/mlprt_plan_load_fuzzer "$corpus" -max_total_time="$seconds" -timeout=10 \
  -rss_limit_mb=2048 -max_len=1048576 -artifact_prefix=fuzz/plan_crashes/ -print_final_stats=1 "$@"
