#!/usr/bin/env bash
# Installs everything mlprt needs on Debian 12 (idempotent; skips apt when all is there).
# --bench also installs what bench/cpu_bench.py compares against (ONNX Runtime from PyPI, into
# the system python); the tests never need it.
set -euo pipefail

with_bench=0
for arg in "$@"; do
  case "$arg" in
    --bench) with_bench=1 ;;
    *) echo "install_deps.sh: unknown argument '$arg' (allowed: --bench)" >&2; exit 2 ;;
  esac
done

packages=(
  build-essential cmake ninja-build pkg-config git
  libprotobuf-dev protobuf-compiler libonnx-dev libdnnl-dev
  libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev
  python3 python3-numpy python3-torch python3-onnx python3-pytest python3-matplotlib
  libonnx-testdata clang libclang-rt-14-dev libomp-dev
  dataset-fashion-mnist
)
[ "$with_bench" -eq 1 ] && packages+=(python3-matplotlib python3-pip)

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

if [ "$with_bench" -eq 1 ] && ! /usr/bin/python3 -c "import onnxruntime" 2>/dev/null; then
  echo "mlprt: installing onnxruntime (PyPI) for bench/cpu_bench.py"
  # --no-deps: a PyPI protobuf would shadow Debian's, which python3-onnx needs.
  /usr/bin/python3 -m pip install --break-system-packages --quiet --no-deps onnxruntime flatbuffers
fi
