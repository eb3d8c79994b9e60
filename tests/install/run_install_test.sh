#!/usr/bin/env bash
# usage: run_install_test.sh <build dir> <source dir> <mlprt cli> <python>
set -euo pipefail
build=$1 source=$2 cli=$3 python=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log"
test -f "$tmp/prefix/include/mlprt/mlprt.h"
test -f "$tmp/prefix/lib/cmake/mlprt/mlprtConfig.cmake"

cmake -S "$source/tests/install/consumer" -B "$tmp/consumer" -G Ninja \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" -DMLPRT_EXAMPLE_SOURCE="$source/examples/infer.cpp" \
  > "$tmp/configure.log"
cmake --build "$tmp/consumer" > "$tmp/build.log"

# A 4 -> 3 Gemm model with known weights, built with the installed package's CLI.
"$python" - "$tmp/model.onnx" <<'PY'
import sys
import numpy as np
from onnx import TensorProto, helper, numpy_helper, save
w = np.array([[1, 0, 0], [0, 2, 0], [0, 0, 3], [1, 1, 1]], dtype=np.float32)
b = np.array([0.0, -1.0, 0.5], dtype=np.float32)
graph = helper.make_graph(
    [helper.make_node("Gemm", ["input", "w", "b"], ["output"], name="fc")], "tiny",
    [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
    [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3])],
    [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1])
PY
"$tmp/prefix/bin/mlprt" build --onnx="$tmp/model.onnx" --saveEngine="$tmp/model.plan" \
  --minShapes=input:1x4 --optShapes=input:2x4 --maxShapes=input:4x4 > /dev/null
# Rows: [1,0,0,0] -> [1,-1,0.5] (class 0); [0,1,0,0] -> [0,1,0.5] (class 1);
# [0,0,1,0] -> [0,-1,3.5] (class 2).
printf '\x00\x00\x80\x3f\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x3f\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x3f\x00\x00\x00\x00' > "$tmp/x.f32"
out=$("$tmp/consumer/infer" "$tmp/model.plan" 3 "$tmp/x.f32")
echo "$out"
[ "$(echo "$out" | sed -n 1p)" = "output 'output': 3x3" ] || { echo "unexpected shape line"; exit 1; }
[ "$(echo "$out" | sed -n 2p)" = "0 1 2" ] || { echo "unexpected classes"; exit 1; }
echo "install test passed"
