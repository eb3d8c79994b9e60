#!/bin/bash
# Runs on the GPU machine inside a package made by bench/pack_gpu.sh (unpacked: pkg/), writing
# logs and results to $OUT.
#   gpu_run.sh verify          GPU tests, fixtures on cuda, compute-sanitizer, CLI bench flags
#   gpu_run.sh suite           the other C++ test binaries and the CLI tests (auto = cuda here)
#   gpu_run.sh bench PEERS.py  mlprt_gpu_bench and peers.py in one run -> gpu-DATE.json + PNG
#   gpu_run.sh rows PEERS.py MODEL PREC BATCHES   a few rows of both, for a quick look
set -uo pipefail
cd "$(dirname "$0")/.."   # pkg/
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/targets/x86_64-linux/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib
OUT=${OUT:-/tmp/out}
mode=${1:?mode}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
ldd bin/mlprt | grep "not found"

models() {
  mkdir -p models
  python3 src/make_models.py models "$1" > /dev/null
}

ours() {  # MODEL PREC BATCHES
  ./bin/mlprt_gpu_bench "models/$1.onnx" "$1" "$2" "$3" 2>> "$OUT/bench.log"
}

case "$mode" in
  verify)
    timeout 300 ./bin/test_cuda_backend --gtest_filter=-CudaKernels.ElementCountsPastInt32 > "$OUT/tests.log" 2>&1
    echo "test_cuda_backend rc=$?"; grep -E "^\[  (FAILED|PASSED) |^\[ bandwidth|^\[ gelu" "$OUT/tests.log"
    timeout 120 ./bin/test_cuda_backend --gtest_filter=CudaKernels.ElementCountsPastInt32 >> "$OUT/tests.log" 2>&1
    echo "ElementCountsPastInt32 rc=$?"
    timeout 180 ./bin/test_cuda_io > "$OUT/tests_io.log" 2>&1; echo "test_cuda_io rc=$?"
    grep -E "^\[ +(OK|FAILED|PASSED|SKIPPED) |Failure|error" "$OUT/tests_io.log" | head
    cat "$OUT/tests_io.log" >> "$OUT/tests.log"; rm "$OUT/tests_io.log"
    timeout 200 python3 src/run_fixtures.py bin/mlprt src/fixtures --backend=cuda > "$OUT/fixtures.tmp" 2>&1
    echo "fixtures rc=$?"; tail -4 "$OUT/fixtures.tmp" | cut -c1-200
    cat "$OUT/fixtures.tmp" >> "$OUT/tests.log"; rm "$OUT/fixtures.tmp"
    filter='CudaBackend.Normalizations*:CudaBackend.EveryActivationKind*:CudaRuntime.*:CudaBackend.GeluTanh*'
    timeout 240 compute-sanitizer --tool memcheck ./bin/test_cuda_backend --gtest_filter="$filter" > "$OUT/sanitizers.log" 2>&1
    echo "memcheck rc=$?"; grep -E "ERROR SUMMARY" "$OUT/sanitizers.log"
    timeout 200 compute-sanitizer --tool memcheck ./bin/test_cuda_io --gtest_filter='CudaIo.*' > "$OUT/san.tmp" 2>&1
    echo "memcheck io rc=$?"; grep -E "ERROR SUMMARY" "$OUT/san.tmp"; cat "$OUT/san.tmp" >> "$OUT/sanitizers.log"
    timeout 200 compute-sanitizer --tool racecheck ./bin/test_cuda_backend --gtest_filter='CudaBackend.Normalizations*:CudaRuntime.*' > "$OUT/san.tmp" 2>&1
    echo "racecheck rc=$?"; grep -E "RACECHECK SUMMARY|ERROR SUMMARY" "$OUT/san.tmp"; cat "$OUT/san.tmp" >> "$OUT/sanitizers.log"; rm "$OUT/san.tmp"
    models seed
    for flags in "" "--useCudaGraph" "--noDataTransfers --useCudaGraph" "--infStreams=2 --useCudaGraph"; do
      echo "== mlprt bench seed b64 fp16 io $flags"
      ./bin/mlprt bench --onnx=models/seed.onnx --shapes=x:64x784 --fp16 --inputIOFormats=fp16:chw \
        --outputIOFormats=fp16:chw --duration=1 $flags 2>&1 | grep -E "Throughput|Latency|GPU Compute|H2D|D2H|error"
    done
    ;;
  suite)
    for t in test_common mlprt_ir_tests mlprt_onnx_tests test_plan test_runtime test_cpu_backend; do
      timeout 300 "./bin/$t" > "$OUT/suite_$t.log" 2>&1
      echo "$t rc=$? $(grep -E '^\[  (PASSED|FAILED)  \]' "$OUT/suite_$t.log" | tr '\n' ' ')"
    done
    cat "$OUT"/suite_*.log > "$OUT/suite.log"; rm "$OUT"/suite_*.log
    if python3 -c "import pytest, onnx, numpy" 2> /dev/null; then
      MLPRT_BIN=$PWD/bin/mlprt PYTHONPATH=$PWD/src timeout 400 python3 -m pytest -q -p no:cacheprovider \
        src/cli_tests > "$OUT/cli_tests.log" 2>&1
      echo "cli tests rc=$?"; tail -15 "$OUT/cli_tests.log"
    else
      echo "cli tests: skipped, this machine's python3 lacks pytest, onnx or numpy"
    fi
    ;;
  bench)
    peers=${2:?peers.py}
    models seed,mnist,tcnn,wide
    : > "$OUT/mlprt.jsonl"
    for prec in fp32 fp16; do
      ours seed $prec 1,32,64,4096,65536 >> "$OUT/mlprt.jsonl"
      ours mnist $prec 1,64,4096,65536 >> "$OUT/mlprt.jsonl"
      ours tcnn $prec 1,1024,65536,1048576 >> "$OUT/mlprt.jsonl"
      ours wide $prec 1,64,4096,32768 >> "$OUT/mlprt.jsonl"
    done
    # JAX runs its fp32 rows on TF32: our tf32 engines beside them, where matmuls dominate.
    ours seed tf32 4096,65536 >> "$OUT/mlprt.jsonl"
    ours mnist tf32 4096,65536 >> "$OUT/mlprt.jsonl"
    ours tcnn tf32 65536,1048576 >> "$OUT/mlprt.jsonl"
    ours wide tf32 4096,32768 >> "$OUT/mlprt.jsonl"
    python3 "$peers" --no-compile --json "$OUT/peers.json" >> "$OUT/bench.log" 2>&1
    echo "peers rc=$?"
    mkdir -p bench/results
    python3 src/merge_gpu_results.py "$OUT/peers.json" "$OUT/mlprt.jsonl" "$(date +%F)" \
      "bench/gpu_run.sh bench (mlprt_gpu_bench + peers.py --no-compile in one run)"
    cp bench/results/* "$OUT/"
    ;;
  rows)
    peers=${2:?peers.py}; model=${3:?}; prec=${4:?}; batches=${5:?}
    models "$model"
    ours "$model" "$prec" "$batches"
    python3 "$peers" --no-compile --models "$model" --batches "$batches" --precisions "$prec" 2>&1 | tail -8
    ;;
esac
