#!/usr/bin/env bash
# Installs everything mlprt needs on Debian 12 (idempotent; skips apt when all is there), and
# the Python build tools into .venv/ (scripts/install_python.sh --no-package).
# --bench also installs what bench/cpu_bench.py and bench/python_overhead.py compare against
# (ONNX Runtime from PyPI, into .venv/); the tests never need it.
set -euo pipefail

with_bench=0
for arg in "$@"; do
  case "$arg" in
    --bench) with_bench=1 ;;
    *) echo "install_deps.sh: unknown argument '$arg' (allowed: --bench)" >&2; exit 2 ;;
  esac
done

packages=(
  build-essential cmake ninja-build pkg-config git ccache
  libprotobuf-dev protobuf-compiler libonnx-dev libdnnl-dev
  # Only because Debian's oneDNN is built with its OpenCL GPU runtime: dnnl-config.cmake calls
  # find_package(OpenCL), which needs these headers and libOpenCL.so (a Recommends of libdnnl-dev).
  ocl-icd-opencl-dev
  libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev
  python3 python3-dev python3-venv python3-numpy python3-torch python3-onnx python3-pytest python3-matplotlib
  libonnx-testdata clang libclang-rt-14-dev libomp-dev
  dataset-fashion-mnist
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "mlprt: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# nanobind and scikit-build-core (and, with --bench, onnxruntime) from PyPI into .venv/.
scripts=$(cd "$(dirname "$0")" && pwd)
if [ "$with_bench" -eq 1 ]; then
  "$scripts/install_python.sh" --no-package --bench
else
  "$scripts/install_python.sh" --no-package
fi
