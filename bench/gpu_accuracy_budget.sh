#!/bin/bash
# On the GPU machine: per-layer precision and the accuracy budget. Unpacks a package made by
# bench/pack_gpu.sh (with bench/accuracy_budget.py and bench/models.py beside it) and runs, logs
# and results under $OUT:
#   tests   the cuda test binaries (mixed-precision engines against float64, the budget on cuda,
#           and every older cuda test: single-precision engines must behave as before)
#   cuda    bench/accuracy_budget.py on the GPU (fp16 + tf32 candidates)
#   cpu     bench/accuracy_budget.py on two pinned cores of the host's Xeon (bf16 on AMX)
#   bench/gpu_accuracy_budget.sh DIR/pkg.tar.xz tests cuda cpu      (DIR also holds the .py)
set -uo pipefail
pack=${1:?usage: gpu_accuracy_budget.sh PKG.tar.xz STEP...}
shift
here=$(cd "$(dirname "$pack")" && pwd)
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/prec-root
tar -C /tmp/prec-root -xJf "$pack"
pk=/tmp/prec-root/pkg
export LD_LIBRARY_PATH=$pk/lib:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
ldd "$pk/bin/mlprt" | grep "not found"
for step in "$@"; do
  case "$step" in
    tests)
      timeout 100 "$pk/bin/test_cuda_io" > "$OUT/tests.log" 2>&1; echo "test_cuda_io rc=$?"
      timeout 90 "$pk/bin/test_cuda_backend" --gtest_filter=-CudaKernels.ElementCountsPastInt32 \
        >> "$OUT/tests.log" 2>&1; echo "test_cuda_backend rc=$?"
      grep -E "^\[  (FAILED|PASSED) |^\[  +FAILED|Failure" "$OUT/tests.log" | head -30 ;;
    cuda)
      timeout 150 python3 "$here/accuracy_budget.py" --mlprt="$pk/bin/mlprt" --backend=cuda \
        --batch=128 --held-out=256 --label=h200 --out="$OUT" > "$OUT/bench_cuda.log" 2>&1
      echo "bench cuda rc=$?"; tail -20 "$OUT/bench_cuda.log" ;;
    cpu)
      timeout 120 taskset -c 0,1 python3 "$here/accuracy_budget.py" --mlprt="$pk/bin/mlprt" \
        --backend=cpu --threads=2 --batch=64 --held-out=128 --label=xeon-2cores \
        --out="$OUT" > "$OUT/bench_cpu.log" 2>&1
      echo "bench cpu rc=$?"; tail -20 "$OUT/bench_cpu.log" ;;
  esac
done
