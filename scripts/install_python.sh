#!/usr/bin/env bash
# Installs the Python package mlprt into the virtual environment .venv/ in the repo root.
# Debian's python refuses system-wide pip installs (PEP 668); the venv sees Debian's packages
# (--system-site-packages: torch, numpy, onnx, pytest stay visible) and adds from PyPI only
# nanobind and scikit-build-core (the build), with --bench onnxruntime (the CPU peer) and with
# --ray Ray (ray[serve,data], pinned; mlprt.serve and its tests, tests/python/test_ray_serve.py).
# Then `pip install .` builds the library and the module (scikit-build-core, CMake).
#   scripts/install_python.sh [--bench] [--ray] [--no-package]
#   .venv/bin/python -c "import mlprt"
set -euo pipefail
cd "$(dirname "$0")/.."

bench=0
ray=0
package=1
for arg in "$@"; do
  case "$arg" in
    --bench) bench=1 ;;
    --ray) ray=1 ;;
    --no-package) package=0 ;;
    *) echo "install_python.sh: unknown argument '$arg' (allowed: --bench, --ray, --no-package)" >&2; exit 2 ;;
  esac
done

venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  echo "mlprt: creating $venv (Debian's python3 with --system-site-packages)"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
have() { "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$1') != '$2')" 2>/dev/null; }
# pip install, tried up to 3 times: a download cut or garbled on the way fails pip's hash check
# (it happened in CI: grpcio's wheel, whose next download matched PyPI's hash).
pip_install() {
  local attempt
  for attempt in 1 2 3; do
    "${pip[@]}" install "$@" && return 0
    [ "$attempt" -lt 3 ] && echo "mlprt: pip install $* failed (attempt $attempt of 3); retrying" >&2 && sleep 5
  done
  echo "mlprt: pip install $* failed 3 times" >&2
  return 1
}
# The versions pyproject.toml's [build-system] names.
have nanobind 2.9.2 && have scikit-build-core 0.11.6 || {
  echo "mlprt: installing nanobind and scikit-build-core (PyPI) into $venv"
  pip_install nanobind==2.9.2 scikit-build-core==0.11.6
}
if [ "$bench" -eq 1 ] && ! "$venv/bin/python" -c "import onnxruntime" 2>/dev/null; then
  echo "mlprt: installing onnxruntime (PyPI) into $venv for the benchmarks"
  # --no-deps: a PyPI protobuf would shadow Debian's, which python3-onnx needs.
  pip_install --no-deps onnxruntime==1.23.2 flatbuffers
fi
ray_version=2.60.0
if [ "$ray" -eq 1 ] && ! have ray "$ray_version"; then
  echo "mlprt: installing ray[serve,data]==$ray_version (PyPI) into $venv"
  # Debian's numpy and protobuf (which torch and onnx were built for) stay: pip may only add
  # packages that work with them (pyarrow 19 is the last that takes numpy 1.x).
  constraints=$(mktemp)
  "$venv/bin/python" - >"$constraints" <<'EOF'
import importlib.metadata as m
for name in ("numpy", "protobuf"):
    try:
        print(f"{name}=={m.version(name)}")
    except m.PackageNotFoundError:
        pass
print("pyarrow==19.0.1")
EOF
  pip_install -c "$constraints" "ray[serve,data]==$ray_version"
  rm -f "$constraints"
fi
if [ "$package" -eq 1 ]; then
  echo "mlprt: building and installing the mlprt package into $venv (pip install .)"
  "${pip[@]}" install --no-build-isolation .
  "$venv/bin/python" -c "import mlprt; print('mlprt', mlprt.__version__, 'installed in', mlprt.__file__)"
fi
