#!/usr/bin/env bash
# Runs all of mlprt's tests on a fresh machine:
#   1. installs the dependencies,
#   2. Release build with warnings as errors, every test (unit, CLI, Python package and tooling,
#      end-to-end, install),
#   3. the Python package as a user installs it: `pip install .` into .venv/, its tests on it,
#   4. the ONNX importer fuzzer and the plan-loading fuzzer (clang, libFuzzer), 60 s each
#      (MLPRT_FUZZ_SECONDS),
#   5. AddressSanitizer + UndefinedBehaviorSanitizer build, unit and CLI tests.
# scripts/check_clean_install.sh (a clean Debian root, ~6 min) is separate; .ci/run runs both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
# Ray (ray[serve,data] from PyPI into .venv) for tests/python/test_ray_serve.py.
scripts/install_python.sh --no-package --ray

jobs=$(nproc)
cmake --preset ci
cmake --build --preset ci -j "$jobs"
ctest --preset ci -j "$jobs"

# The installed package (not the build tree): pip install . into .venv, then its tests.
scripts/install_python.sh
# PYTHONPATH=python as the demo sets it (for mlprt_tools): it must not hide the installed package.
(cd /tmp && PYTHONPATH="$OLDPWD/python" "$OLDPWD/.venv/bin/python" -m pytest -q \
  -p no:cacheprovider -rs "$OLDPWD/tests/python/test_package.py" --rootdir "$OLDPWD/tests/python")

# libFuzzer (clang, ASan + UBSan) on the ONNX importer and on plan loading, for a bounded time.
fuzz/run.sh "${MLPRT_FUZZ_SECONDS:-60}"
fuzz/run_plan.sh "${MLPRT_FUZZ_SECONDS:-60}"

cmake --preset asan
cmake --build --preset asan -j "$jobs"
ctest --preset asan -j "$jobs"
