#!/bin/bash
# On the GPU machine (python3.12, no ray, no network): one GPU replica of mlprt.serve under
# load at 64 and 256 clients (bench/ray_serve_load.py --backend cuda). Needs, from earlier
# calls on the same warm machine, the wheel parts copied to /tmp/ray312 (see bench/README.md,
# "Ray Serve on the GPU machine") and the Python pack of bench/pack_python_gpu.sh.
#   bench/gpu_ray_serve.sh .dev/pygpu.tar.xz /tmp/ray312 [DURATION]
set -uo pipefail
cd "$(dirname "$0")/.."
pack=${1:?usage: gpu_ray_serve.sh PYGPU.tar.xz WHEEL_DIR [DURATION]}
wheels=${2:?usage: gpu_ray_serve.sh PYGPU.tar.xz WHEEL_DIR [DURATION]}
duration=${3:-30}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/pygpu-root
# The ray wheel, joined from its pieces and checked.
ray_wheel=$(ls "$wheels"/ray-*.whl.split-00 | sed 's/\.split-00$//')
cat "$ray_wheel".split-* > "$ray_wheel" && rm -f "$ray_wheel".split-*
(cd "$wheels" && sha256sum -c ray.sha256) || { echo "ray wheel corrupt"; exit 1; }
# Everything into /tmp/raypy, except numpy / protobuf when python3 already has them (its
# torch was built for its numpy).
install=()
for w in "$wheels"/*.whl; do
  case "$(basename "$w")" in
    numpy-*) python3 -c "import numpy" 2>/dev/null && continue ;;
    protobuf-*) python3 -c "import google.protobuf" 2>/dev/null && continue ;;
  esac
  install+=("$w")
done
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/raypy "${install[@]}" \
  > "$OUT/pip.log" 2>&1 || { echo "pip install failed"; tail -20 "$OUT/pip.log"; exit 1; }
# The mlprt module for this python, as bench/gpu_python.sh builds it.
tar -C /tmp/pygpu-root -xJf "$pack"
pk=/tmp/pygpu-root/pygpu
export LD_LIBRARY_PATH=$pk/prefix/lib:$pk/lib:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/nanobind "$pk"/whl/*.whl
if [ ! -f /tmp/pyb/python/mlprt/__init__.py ]; then
  PYTHONPATH=/tmp/nanobind cmake -S python/bindings -B /tmp/pyb -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -Dmlprt_DIR="$pk/prefix/lib/cmake/mlprt" -DPython_EXECUTABLE="$(command -v python3)" \
    > "$OUT/build.log" 2>&1 && PYTHONPATH=/tmp/nanobind cmake --build /tmp/pyb -j "$(nproc)" \
    >> "$OUT/build.log" 2>&1 || { echo "module build failed"; tail -20 "$OUT/build.log"; exit 1; }
fi
export PYTHONPATH=/tmp/pyb/python:$PWD/python:/tmp/raypy PATH=/tmp/raypy/bin:$PATH
export PYTHONUNBUFFERED=1 RAY_USAGE_STATS_ENABLED=0
python3 -c "import mlprt, ray, ray.serve, aiohttp; print('mlprt', mlprt.__version__, 'ray', ray.__version__)" \
  || exit 1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
# MODES: gpu (one GPU replica, mlprt; the issue's GPU row) and/or cpu (cpu replicas of mlprt,
# ONNX Runtime and the no-engine echo peer at 64 clients: the ceiling on this 16-core host).
for mode in ${MODES:-gpu}; do
  case "$mode" in
    gpu) timeout 540 python3 bench/ray_serve_load.py --backend cuda --num-gpus 1 --peers echo mlprt \
           --clients 64 256 --duration "$duration" --processes 8 --cluster-cpus 16 --replica-cpus 2 \
           --tag h200 --out-dir "$OUT" 2>&1 | grep -v "^\s*$" | tail -40 ;;
    cpu) timeout 540 python3 bench/ray_serve_load.py --backend cpu --peers echo mlprt ort \
           --clients 64 --duration "$duration" --processes 8 --cluster-cpus 16 --replica-cpus 2 \
           --tag h200-host-cpu --out-dir "$OUT" 2>&1 | grep -v "^\s*$" | tail -40 ;;
    *) echo "gpu_ray_serve.sh: unknown mode '$mode' (gpu, cpu)" ;;
  esac
done
