#!/bin/bash
# Prepares what the GPU machine needs to build and test the Python package there (its python is
# 3.12, ours 3.11, so the nanobind module is compiled there against this machine's libmlprt):
# an install prefix of a CUDA-enabled build (library, headers, CMake config), the Debian
# libraries libmlprt loads, and nanobind's wheel. bench/gpu_python.sh uses it on the device.
#   bench/pack_python_gpu.sh build/ci .dev/pygpu.tar.xz     # then carry .dev/
set -euo pipefail
build=${1:?usage: pack_python_gpu.sh BUILD_DIR OUT_DIR}
out=${2:?usage: pack_python_gpu.sh BUILD_DIR OUT.tar.xz}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$(dirname "$out")"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/pygpu
mkdir -p "$pkg/lib" "$pkg/whl" "$pkg/bin"
cmake --install "$build" --prefix "$pkg/prefix" --component Unspecified > /dev/null
strip --strip-unneeded "$pkg/prefix/lib/libmlprt.so."*.*.* 2> /dev/null || true
cp "$build/tools/mlprt/mlprt" "$pkg/bin/"
for lib in libdnnl.so.2 libprotobuf.so.32 libgomp.so.1 libOpenCL.so.1; do
  cp -L "/lib/x86_64-linux-gnu/$lib" "$pkg/lib/"
done
"$root/.venv/bin/python" -m pip download --quiet --no-deps --only-binary=:all: -d "$pkg/whl" \
  nanobind==2.9.2
tar -C "$stage" -cJf "$out.tmp" pygpu
mv "$out.tmp" "$out"
ls -la "$out"
