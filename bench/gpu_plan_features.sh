#!/bin/bash
# On the GPU machine: the plan features of issue 16 (portable plans, refit, split batch, accuracy
# budget) where they need a GPU or the host's Xeon. Unpacks a package made by bench/pack_gpu.sh
# and runs the steps named, each step's log and files under $OUT:
#   tests     the cuda test binaries (every cuda test, the mixed-precision and split-batch ones
#             included) and the re-tune test for a cuda plan built for another GPU
#   retune    builds the plans of tests/fixtures/retune/ (cuda fp32 / fp16, and a bf16 cpu plan
#             on the Xeon's AMX), inspects and checks them here; they come back in $OUT
#   refit     a cuda plan refitted from .pth and .onnx against a fresh build with the same timing
#             cache (cmp), and both benched (DIR/refit/{a,b}.{onnx,pth}: two 784-32-10 models)
#   budget    bench/accuracy_budget.py on cuda (mnist and wide, budgets 1e-2..1e-4)
#   budget-cpu  the same on two pinned cores of the host's Xeon (bf16 on AMX)
#   bench/gpu_plan_features.sh DIR/pkg.tar.xz tests retune refit budget budget-cpu
set -uo pipefail
pack=${1:?usage: gpu_plan_features.sh PKG.tar.xz STEP...}
shift
here=$(cd "$(dirname "$pack")" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/i16-root
tar -C /tmp/i16-root -xJf "$pack"
pk=/tmp/i16-root/pkg
export LD_LIBRARY_PATH=$pk/lib:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
m=$pk/bin/mlprt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for step in "$@"; do
  start=$SECONDS
  case "$step" in
    tests)
      for t in test_cuda_io test_cuda_backend test_cuda_split_batch; do
        timeout 120 "$pk/bin/$t" --gtest_filter=-CudaKernels.ElementCountsPastInt32 \
          > "$OUT/tests_$t.log" 2>&1
        echo "$t rc=$? $(grep -E '^\[  PASSED  \]|^\[  FAILED  \]|^\[  SKIPPED \]' "$OUT/tests_$t.log" | tr '\n' ' ')"
      done
      timeout 120 "$pk/bin/test_runtime" --gtest_filter='HardwarePolicy*:*Cuda*' \
        > "$OUT/tests_runtime.log" 2>&1
      echo "test_runtime (GPU filter) rc=$? $(grep -E '^\[  PASSED  \]|^\[  FAILED  \]' "$OUT/tests_runtime.log" | tr '\n' ' ')"
      grep -h -E "^\[  FAILED  \] [A-Za-z]" "$OUT"/tests_*.log | sort -u | head -20 ;;
    retune)
      f=$pk/src/fixtures/torch2/relu_nobias_dynamic.onnx
      p="--minShapes=input:1x16 --optShapes=input:8x16 --maxShapes=input:64x16"
      "$m" build --backend=cuda --onnx="$f" $p --saveEngine="$OUT/h200_fp32.plan" > "$OUT/retune.log" 2>&1
      "$m" build --backend=cuda --onnx="$f" $p --fp16 --saveEngine="$OUT/h200_fp16.plan" >> "$OUT/retune.log" 2>&1
      taskset -c 0,1 "$m" build --backend=cpu --onnx="$f" $p --bf16 --precisionConstraints=prefer \
        --layerPrecisions='*:bf16' --saveEngine="$OUT/xeon_amx_bf16.plan" >> "$OUT/retune.log" 2>&1
      x=$pk/src/fixtures/torch2/relu_nobias_dynamic_in0.npy
      for plan in "$OUT"/*.plan; do
        "$m" inspect --loadEngine="$plan" | grep -E "^(Backend|Hardware|Precision)|Dense"
        "$m" run --loadEngine="$plan" --loadInputs=input:"$x" --check --checkTolerance=2e-2 2>&1 | grep -iE "check|error"
      done 2>&1 | tee -a "$OUT/retune.log" ;;
    refit)
      d=/tmp/refit && mkdir -p $d && cp "$here"/refit/* $d/ && cd $d || exit 1
      shapes="--minShapes=input:1x784 --optShapes=input:64x784 --maxShapes=input:256x784"
      cp a.onnx model.onnx
      "$m" build --backend=cuda --onnx=model.onnx $shapes --timingCacheFile=cache.json --saveEngine=a.plan > refit.log 2>&1
      "$m" refit --loadEngine=a.plan --weights=b.pth --saveEngine=r_pth.plan 2>&1 | tee -a refit.log
      "$m" refit --loadEngine=a.plan --onnx=b.onnx --saveEngine=r_onnx.plan 2>&1 | tee -a refit.log
      cp b.onnx model.onnx
      "$m" build --backend=cuda --onnx=model.onnx $shapes --timingCacheFile=cache.json --saveEngine=fresh.plan >> refit.log 2>&1
      cmp r_pth.plan fresh.plan && echo "refit from .pth: byte-identical to a fresh build"
      python3 -c "import numpy; numpy.save('x.npy', numpy.random.default_rng(0).standard_normal((64, 784), dtype=numpy.float32))"
      "$m" run --loadEngine=r_pth.plan --loadInputs=input:x.npy --check 2>&1 | grep -iE "check|error"
      for plan in r_pth.plan fresh.plan; do
        "$m" bench --loadEngine=$plan --shapes=input:64x784 --duration=2 2>&1 | grep -iE "median|latency" | head -3 | sed "s|^|$plan: |"
      done
      cp refit.log "$OUT/"; cd "$root" ;;
    budget)
      timeout 330 python3 "$root/bench/accuracy_budget.py" --mlprt="$m" --backend=cuda \
        --batch=128 --held-out=256 --label=h200 --out="$OUT" > "$OUT/budget_cuda.log" 2>&1
      echo "budget cuda rc=$?"; tail -14 "$OUT/budget_cuda.log" ;;
    budget-cpu)
      timeout 280 taskset -c 0,1 python3 "$root/bench/accuracy_budget.py" --mlprt="$m" \
        --backend=cpu --threads=2 --batch=64 --held-out=128 --label=xeon-2cores --out="$OUT" \
        > "$OUT/budget_cpu.log" 2>&1
      echo "budget cpu rc=$?"; tail -14 "$OUT/budget_cpu.log" ;;
    *) echo "gpu_plan_features.sh: unknown step '$step'" ;;
  esac
  echo "step $step: $((SECONDS - start)) s"
done
