#!/bin/bash
# Issue 14 on the GPU machine, inside a package made by bench/pack_gpu.sh (unpacked: pkg/):
#   gpu_mixer.sh tests    the data-layer ops on cuda (test_cpu_backend's DataLayers.Cuda*), the
#                         Mixer / gMLP / ResMLP fixtures on cuda in fp32/tf32/fp16/bf16
#   gpu_mixer.sh dynamo   export the three blocks with torch 2.x's dynamo exporter, run them on
#                         cpu and cuda against torch float64 (bench/check_dynamo_blocks.py)
#   gpu_mixer.sh bench    bench/mixer_bench.py: cuda fp32 and tf32 (vs torch CUDA graphs) and
#                         the host CPU (vs ONNX Runtime), batch 1, 64, 1024 -> $OUT/mixer-*.json
set -uo pipefail
cd "$(dirname "$0")/.."   # pkg/
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/targets/x86_64-linux/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for step in "$@"; do
  case "$step" in
    tests)
      timeout 300 ./bin/test_cpu_backend --gtest_filter='*DataLayers*' > "$OUT/mixer_tests.log" 2>&1
      echo "DataLayers rc=$?"; grep -E "^\[  (FAILED|PASSED|SKIPPED) " "$OUT/mixer_tests.log"
      MLPRT_BIN=$PWD/bin/mlprt PYTHONPATH=$PWD/src timeout 400 python3 -m pytest -q -rs \
        -p no:cacheprovider src/fixtures/test_mlp_family.py >> "$OUT/mixer_tests.log" 2>&1
      echo "fixtures rc=$?"; tail -5 "$OUT/mixer_tests.log" ;;
    dynamo)
      timeout 500 python3 src/check_dynamo_blocks.py --mlprt "$PWD/bin/mlprt" \
        --out "$OUT/torch2_blocks" --backends cpu cuda > "$OUT/dynamo.log" 2>&1
      echo "dynamo rc=$?"; tail -25 "$OUT/dynamo.log" ;;
    bench)
      for prec in fp32 tf32; do
        timeout 560 python3 src/mixer_bench.py --device cuda --precision "$prec" \
          --mlprt "$PWD/bin/mlprt" --out-dir "$OUT" --duration 1 >> "$OUT/mixer_bench.log" 2>&1
        echo "cuda $prec rc=$?"
      done
      timeout 560 python3 src/mixer_bench.py --device cpu --threads "$(nproc)" --batches 1 64 1024 \
        --mlprt "$PWD/bin/mlprt" --out-dir "$OUT" --duration 2 >> "$OUT/mixer_bench.log" 2>&1
      echo "cpu rc=$?"; grep '^{' "$OUT/mixer_bench.log" ;;
    *) echo "gpu_mixer.sh: unknown step '$step' (tests, dynamo, bench)" ;;
  esac
done
