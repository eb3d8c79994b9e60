#!/usr/bin/env bash
# Builds the ONNX importer fuzzer (preset `fuzz`: clang, ASan + UBSan, libFuzzer) and runs it
# for a bounded time, seeded with the committed fixtures and a few libonnx-testdata models.
#   fuzz/run.sh [seconds=60] [extra libFuzzer flags...]
# Exits non-zero on any crash, leak, sanitizer report or timeout; the reproducer is written to
# fuzz/crashes/ (commit it with a failing unit test).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)" --target mlprt_onnx_import_fuzzer
corpus=build/fuzz/corpus
mkdir -p "$corpus" fuzz/crashes
cp tests/fixtures/torch1/*.onnx tests/fixtures/torch2/*.onnx "$corpus"/ 2>/dev/null || true
for t in gemm_default_vector_bias matmul_2d relu flatten_axis1 reshape_negative_dim softmax_axis_1 \
         layer_normalization_2d_axis1 batchnorm_example gelu_tanh_1 clip_example unsqueeze_axis_0; do
  f=/usr/share/libonnx-testdata/data/node/test_$t/model.onnx
  [ -f "$f" ] && cp "$f" "$corpus/testdata_$t.onnx"
done
build/fuzz/fuzz/mlprt_onnx_import_fuzzer "$corpus" -max_total_time="$seconds" -timeout=10 \
  -rss_limit_mb=2048 -max_len=65536 -artifact_prefix=fuzz/crashes/ -print_final_stats=1 "$@"
