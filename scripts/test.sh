#!/usr/bin/env bash
# Runs all of mlprt's tests on a fresh machine:
#   1. installs the dependencies,
#   2. Release build with warnings as errors, every test (unit, CLI, Python package and tooling,
#      end-to-end, install),
#   3. the Python package as a user installs it: `pip install .` into .venv/, its tests on it,
#   4. the ONNX importer fuzzer and the plan-loading fuzzer (clang, libFuzzer), 60 s each
#      (MLPRT_FUZZ_SECONDS),
#   5. AddressSanitizer + UndefinedBehaviorSanitizer build, unit and CLI tests.
# The builds share one ccache (scripts/ccache_env.sh), so the package's build reuses the Release
# build's objects. scripts/check_clean_install.sh (a clean Debian root) is separate; .ci/run runs
# both.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step's start, and the seconds since this script began, for CI's log.
step() { printf '\n== [%s, %d s] %s\n' "$(date +%T)" "$SECONDS" "$*"; }
step "dependencies"
scripts/install_deps.sh
# Ray (ray[serve,data] from PyPI into .venv) for tests/python/test_ray_serve.py.
scripts/install_python.sh --no-package --ray
source scripts/ccache_env.sh

jobs=$(nproc)
step "Release build (ci preset) and its tests"
cmake --preset ci
cmake --build --preset ci -j "$jobs"
ctest --preset ci -j "$jobs"

step "Python package: pip install . and its tests"
# The installed package (not the build tree): pip install . into .venv, then its tests. With the
# ci preset's warnings as errors, which also keeps its compiler flags those of the Release build.
SKBUILD_CMAKE_DEFINE="MLPRT_WARNINGS_AS_ERRORS=ON" scripts/install_python.sh
# PYTHONPATH=python as the demo sets it (for mlprt_tools): it must not hide the installed package.
(cd /tmp && PYTHONPATH="$OLDPWD/python" "$OLDPWD/.venv/bin/python" -m pytest -q \
  -p no:cacheprovider -rs "$OLDPWD/tests/python/test_package.py" --rootdir "$OLDPWD/tests/python")

step "fuzzers"
# libFuzzer (clang, ASan + UBSan) on the ONNX importer and on plan loading, for a bounded time.
fuzz/run.sh "${MLPRT_FUZZ_SECONDS:-60}"
fuzz/run_plan.sh "${MLPRT_FUZZ_SECONDS:-60}"

step "ASan + UBSan build and its unit and CLI tests"
cmake --preset asan
cmake --build --preset asan -j "$jobs"
ctest --preset asan -j "$jobs"
step "done"
ccache --show-stats 2>/dev/null | grep -E "^ *(Hits|Misses)" || true
