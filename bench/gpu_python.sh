#!/bin/bash
# On the GPU machine: builds the Python package's nanobind module for its python (3.12) against
# the libmlprt packed by bench/pack_python_gpu.sh, then runs, each step's log under $OUT:
#   tests      the package's pytest suite (the CUDA tests run here, nowhere else)
#   tutorial   examples/tutorial.py --device cuda (Fashion-MNIST from .dev/fashion-mnist)
#   bench      bench/python_overhead.py on the GPU, and on one pinned core of the host CPU
#   bench/gpu_python.sh .dev/pygpu.tar.xz tests tutorial bench
set -uo pipefail
cd "$(dirname "$0")/.."
pack=${1:?usage: gpu_python.sh PACK.tar.xz STEP...}
shift
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/pygpu-root
tar -C /tmp/pygpu-root -xJf "$pack"
pk=/tmp/pygpu-root/pygpu
export LD_LIBRARY_PATH=$pk/prefix/lib:$pk/lib:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/nanobind "$pk"/whl/*.whl
export PYTHONPATH=/tmp/nanobind
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
start=$SECONDS
cmake -S python/bindings -B /tmp/pyb -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -Dmlprt_DIR="$pk/prefix/lib/cmake/mlprt" -DPython_EXECUTABLE="$(command -v python3)" \
  > "$OUT/build.log" 2>&1 && cmake --build /tmp/pyb -j "$(nproc)" >> "$OUT/build.log" 2>&1
echo "module build rc=$? in $((SECONDS - start)) s"
export PYTHONPATH=/tmp/pyb/python:$PWD/python:$PWD/tests/python:/tmp/nanobind
export MLPRT_BIN=$pk/bin/mlprt PYTHONUNBUFFERED=1
python3 -c "import mlprt; print('mlprt', mlprt.__version__, mlprt.__file__)"

for step in "$@"; do
  case "$step" in
    tests)
      timeout 400 python3 -m pytest -q -rs -p no:cacheprovider tests/python > "$OUT/tests.log" 2>&1
      echo "tests rc=$?"; tail -15 "$OUT/tests.log" ;;
    tutorial)
      export MLPRT_FASHION_MNIST_DIR=$PWD/.dev/fashion-mnist
      timeout 300 python3 examples/tutorial.py --device cuda --workdir /tmp/tutorial > "$OUT/tutorial.log" 2>&1
      echo "tutorial rc=$?"; tail -25 "$OUT/tutorial.log" ;;
    bench)
      # One run: the CPU rows on one pinned core of the host's Xeon, then the GPU rows.
      timeout 300 taskset -c 2 python3 bench/python_overhead.py --threads 1 --device cuda \
        --mlprt "$MLPRT_BIN" --out-dir "$OUT" > "$OUT/bench.log" 2>&1
      echo "bench rc=$?"; tail -30 "$OUT/bench.log" ;;
    *) echo "gpu_python.sh: unknown step '$step' (tests, tutorial, bench)" ;;
  esac
done
