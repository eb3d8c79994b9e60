#!/bin/bash
# On the GPU machine (issue 15, the fused tensor-core MLP): its GPU tests, then mlprt_gpu_bench,
# ../shared/bench/peers.py and tiny-cuda-nn's bench (../shared/bench/tinycudann) in one run ->
# bench/results/gpu-fused-DATE.{json,png} (also copied to $OUT). Steps, in order:
#   tests    the CudaFusedTc tests, every cuda test binary, compute-sanitizer memcheck,
#            racecheck and synccheck on the fused kernels' small cases and the 64-wide chains
#   quick    a few mlprt rows (tcnn, tcnn128, the tutorial model; fp16)
#   bench    the rows of the issue (fp16; the tutorial model in fp32 and tf32, tcnn in fp32 too)
#            + peers + tcnn
#   bench/gpu_fused.sh DIR STEP...   (DIR: pkg.tar.xz from bench/pack_gpu.sh, peers.py, and
#                                     tcnn_bench if built; without it the tcnn column is empty)
set -uo pipefail
dir=$(cd "${1:?usage: gpu_fused.sh DIR STEP...}" && pwd)
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/i15
tar -C /tmp/i15 -xJf "$dir/pkg.tar.xz"
pk=/tmp/i15/pkg
export LD_LIBRARY_PATH=$pk/lib:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for step in "$@"; do
  start=$SECONDS
  case "$step" in
    tests)
      timeout 120 "$pk/bin/test_cuda_backend" --gtest_filter='CudaFusedTc*' > "$OUT/tests_fused.log" 2>&1
      echo "CudaFusedTc rc=$?"; grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure|Expected|Which is|rows" "$OUT/tests_fused.log" | head -30
      for t in test_cuda_backend test_cuda_io test_cuda_split_batch; do
        timeout 150 "$pk/bin/$t" --gtest_filter=-CudaKernels.ElementCountsPastInt32:CudaFusedTc* \
          > "$OUT/tests_$t.log" 2>&1
        echo "$t rc=$? $(grep -E '^\[  PASSED  \]|^\[  FAILED  \]' "$OUT/tests_$t.log" | tr '\n' ' ')"
        grep -E "^\[  FAILED  \] [A-Za-z]" "$OUT/tests_$t.log" | head -5
      done
      for tool in memcheck racecheck synccheck; do
        timeout 150 compute-sanitizer --tool $tool "$pk/bin/test_cuda_backend" \
          --gtest_filter='CudaFusedTc.KernelMatchesFloat64AtOddRowCounts:CudaFusedTc.SixtyFour*' \
          > "$OUT/san_$tool.log" 2>&1
        echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/san_$tool.log" | tr '\n' ' ')"
      done ;;
    bench)
      cd "$pk" && mkdir -p models && python3 src/make_models.py models seed,mnist,tcnn,tcnn128 > /dev/null
      : > "$OUT/mlprt.jsonl"
      b() { ./bin/mlprt_gpu_bench "models/$1.onnx" "$1" "$2" "$3" >> "$OUT/mlprt.jsonl" 2>> "$OUT/bench.log"; }
      b tcnn fp16 1,1024,65536,1048576
      b tcnn128 fp16 65536,1048576
      b seed fp16 1,32,64,256,4096,65536
      b mnist fp16 1,64,4096,65536
      b seed fp32 65536
      b seed tf32 65536
      b tcnn fp32 65536
      echo "mlprt rows: $(wc -l < "$OUT/mlprt.jsonl")"
      if [ -x "$dir/tcnn_bench" ]; then
        timeout 120 "$dir/tcnn_bench" --no-cutlass > "$OUT/tcnn.jsonl" 2>> "$OUT/bench.log"
        echo "tcnn_bench rc=$?"
      else
        echo "tcnn_bench: not built for this run"; : > "$OUT/tcnn.jsonl"
      fi
      timeout 300 python3 "$dir/peers.py" --no-compile --models tcnn,tcnn128,seed,mnist \
        --precisions fp16 --json "$OUT/peers.json" >> "$OUT/bench.log" 2>&1
      echo "peers rc=$?"
      timeout 150 python3 "$dir/peers.py" --no-compile --models seed,tcnn --precisions fp32 \
        --batches 65536 --json "$OUT/peers_fp32.json" >> "$OUT/bench.log" 2>&1
      echo "peers fp32 rc=$?"
      # The merge script beside this one (a copy carried to the GPU machine) or the repo's.
      merge=$here/merge_fused_results.py
      [ -f "$merge" ] || merge=$root/bench/merge_fused_results.py
      merge=$(cd "$(dirname "$merge")" && pwd)/$(basename "$merge")
      mkdir -p /tmp/i15res/bench/results && cd /tmp/i15res
      python3 "$merge" "$OUT/peers.json,$OUT/peers_fp32.json" "$OUT/mlprt.jsonl" "$OUT/tcnn.jsonl" \
        "$(date +%F)" "bench/gpu_fused.sh DIR tests bench (mlprt_gpu_bench, peers.py --no-compile, tcnn_bench --no-cutlass in one run)" \
        "$OUT/bench.log"
      cp bench/results/gpu-fused-* "$OUT/" ;;
    fused-tests)  # the CudaFusedTc tests alone
      timeout 120 "$pk/bin/test_cuda_backend" --gtest_filter='CudaFusedTc*' > "$OUT/tests_fused.log" 2>&1
      echo "CudaFusedTc rc=$?"; grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure|Expected|Which is|rows" "$OUT/tests_fused.log" | head -30 ;;
    quick)  # a few mlprt rows only, for a look between changes
      (cd "$pk" && mkdir -p models && python3 src/make_models.py models seed,tcnn,tcnn128 > /dev/null
       for r in "tcnn 1024,65536,1048576" "tcnn128 65536,1048576" "seed 256,65536"; do
         set -- $r
         ./bin/mlprt_gpu_bench "models/$1.onnx" "$1" fp16 "$2" 2>> "$OUT/quick.log" | tee -a "$OUT/quick.jsonl"
       done; grep "^#" "$OUT/quick.log" | cut -c1-300) ;;
    *) echo "gpu_fused.sh: unknown step '$step' (tests, fused-tests, quick, bench)" ;;
  esac
  echo "step $step: $((SECONDS - start)) s"
done
