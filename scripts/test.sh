#!/usr/bin/env bash
# Runs all of mlprt's tests on a fresh machine:
#   1. installs the dependencies,
#   2. Release build with warnings as errors, every test (unit, CLI, Python, end-to-end, install),
#   3. the ONNX importer fuzzer (clang, libFuzzer) for 60 s (MLPRT_FUZZ_SECONDS),
#   4. AddressSanitizer + UndefinedBehaviorSanitizer build, unit and CLI tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh

jobs=$(nproc)
cmake --preset ci
cmake --build --preset ci -j "$jobs"
ctest --preset ci -j "$jobs"

# libFuzzer (clang, ASan + UBSan) on the ONNX importer for a bounded time.
fuzz/run.sh "${MLPRT_FUZZ_SECONDS:-60}"

cmake --preset asan
cmake --build --preset asan -j "$jobs"
ctest --preset asan -j "$jobs"
