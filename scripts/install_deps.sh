#!/usr/bin/env bash
# Installs everything mlprt needs on Debian 12 (idempotent; skips apt when all is there).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libprotobuf-dev protobuf-compiler libonnx-dev libdnnl-dev
  libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev
  python3 python3-numpy python3-torch python3-onnx python3-pytest python3-matplotlib
  libonnx-testdata clang libclang-rt-14-dev
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
