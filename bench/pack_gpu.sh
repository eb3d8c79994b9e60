#!/bin/bash
# Packs a CUDA-enabled build for a GPU machine that has the CUDA driver and cuBLASLt but not
# Debian's libraries: the binaries, libmlprt and the libraries it loads from Debian (oneDNN,
# protobuf, libgomp, OpenCL loader), the C++ test binaries, the CLI tests, the fixtures and the
# bench scripts, as one .tar.xz.
#   bench/pack_gpu.sh build/ci .dev6/pkg.tar.xz
set -euo pipefail
build=${1:?usage: pack_gpu.sh BUILD_DIR OUT.tar.xz}
out=${2:?usage: pack_gpu.sh BUILD_DIR OUT.tar.xz}
root=$(cd "$(dirname "$0")/.." && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/pkg/bin" "$stage/pkg/lib" "$stage/pkg/src"
for t in tools/mlprt/mlprt tests/backends/test_cuda_backend tests/backends/test_cuda_io \
         tests/backends/test_cuda_split_batch \
         tests/backends/test_cpu_backend tests/common/test_common tests/ir/mlprt_ir_tests \
         tests/onnx/mlprt_onnx_tests tests/plan/test_plan tests/runtime/test_runtime \
         bench/mlprt_gpu_bench bench/mlprt_gpu_accuracy; do
  [ -f "$build/$t" ] && cp "$build/$t" "$stage/pkg/bin/"
done
cp -L "$build"/libmlprt.so.0 "$stage/pkg/lib/"
for lib in libdnnl.so.2 libprotobuf.so.32 libgomp.so.1 libOpenCL.so.1; do
  cp -L "/lib/x86_64-linux-gnu/$lib" "$stage/pkg/lib/"
done
cp -r "$root/tests/fixtures" "$stage/pkg/src/fixtures"
cp "$root"/bench/{run_fixtures.py,make_models.py,merge_gpu_results.py,gpu_run.sh} "$stage/pkg/src/"
cp "$root"/bench/{mixer_bench.py,check_dynamo_blocks.py,gpu_mixer.sh} "$stage/pkg/src/"
# bench/xeon_bench.py (issue 17: the host CPU against ONNX Runtime and PyTorch) and its imports.
cp "$root"/bench/{xeon_bench.py,cpu_bench.py,models.py} "$stage/pkg/src/"
cp -r "$root/python/mlprt_tools" "$stage/pkg/src/"
cp -r "$root/tests/cli" "$stage/pkg/src/cli_tests"
mkdir -p "$(dirname "$out")"
tar -C "$stage" -cJf "$out.tmp" pkg
mv "$out.tmp" "$out"
ls -la "$out"
