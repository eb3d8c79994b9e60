#!/usr/bin/env bash
# Proves that a machine with nothing but Debian 12 and a clone of mlprt can install, build and
# run it, whatever the developer's own machine happens to hold:
#   1. makes a minimal Debian 12 root (mmdebstrap, variant minbase, plus git and ca-certificates),
#   2. clones the current commit into it (uncommitted changes are not part of the check),
#   3. inside it runs scripts/install_deps.sh [--bench], the release build, and a smoke run:
#      `mlprt build` + `mlprt run --check` of a small fixture model, the Python package
#      (scripts/install_python.sh, `import mlprt`, one inference) and, with --bench, the peers the
#      benchmarks import and a short run of bench/python_overhead.py.
# Any missing package fails a step, and the script exits non-zero. It prints the packages each
# install added and the time of every step. Needs root (mmdebstrap's root mode) and Debian's
# mirror; about 8 minutes on 2 cores.
#   scripts/check_clean_install.sh [--bench] [--keep] [--mirror URL]
set -euo pipefail

args=("$@")
bench=0
keep=0
mirror=http://deb.debian.org/debian
while [ $# -gt 0 ]; do
  case "$1" in
    --bench) bench=1 ;;
    --keep) keep=1 ;;
    --mirror) mirror=${2:?--mirror needs a URL}; shift ;;
    *) echo "check_clean_install.sh: unknown argument '$1' (allowed: --bench, --keep, --mirror URL)" >&2
       exit 2 ;;
  esac
  shift
done

if [ "$(id -u)" -ne 0 ]; then
  # mmdebstrap builds the root with chroot: as install_deps.sh does, go through sudo.
  if command -v sudo > /dev/null; then exec sudo -E "$0" "${args[@]}"; fi
  echo "check_clean_install.sh: needs root (mmdebstrap builds the root with chroot) and there is no sudo" >&2
  exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$repo" rev-parse HEAD)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "check_clean_install.sh: note: uncommitted changes are not checked, only $commit"
fi

if ! command -v mmdebstrap > /dev/null; then
  echo "check_clean_install.sh: installing mmdebstrap (Debian package)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap
fi

work=$(mktemp -d /var/tmp/mlprt-clean-root.XXXXXX)
# mmdebstrap unmounts what it mounted in the root, unless it was killed: then unmount first, and
# never let rm cross into a mounted file system.
cleanup() {
  local m
  for m in $(awk -v w="$work/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" || true
  done
  if [ "$keep" -eq 1 ]; then echo "kept: $work"; else rm -rf --one-file-system "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The host's network setup is not a dependency, but the root needs it to reach the same mirrors:
# local CA certificates (an egress proxy's) and pip's index / certificate settings.
network_env=""
for var in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST PIP_CERT http_proxy https_proxy \
           HTTP_PROXY HTTPS_PROXY no_proxy; do
  [ -n "${!var:-}" ] && network_env+="export $var='${!var}'"$'\n'
done

# Runs inside the root, as a new user would: the clone, the install, the build, the smoke run.
cat > "$work/inside.sh" <<EOF
set -euo pipefail
export HOME=/root LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
$network_env
step() { printf '\n== [%s] %s\n' "\$(date +%T)" "\$*"; }
timed() { local t0=\$SECONDS; "\$@"; echo "-- \$((SECONDS - t0)) s: \$*"; }
packages() { dpkg-query -W -f='\${Package}\n' | sort; }

packages > /tmp/packages.before
cd /mlprt
step "scripts/install_deps.sh $([ "$bench" -eq 1 ] && echo --bench)"
timed scripts/install_deps.sh $([ "$bench" -eq 1 ] && echo --bench)
packages > /tmp/packages.after
echo "packages added by install_deps.sh (\$(comm -13 /tmp/packages.before /tmp/packages.after | wc -l)):"
comm -13 /tmp/packages.before /tmp/packages.after | tr '\n' ' '; echo

step "release build of the command-line tool (its tests build and run in scripts/test.sh)"
# One ccache for this build and the package's below, which then reuses the library's objects.
source scripts/ccache_env.sh
timed cmake --preset release
timed cmake --build --preset release -j "\$(nproc)" --target mlprt_cli

step "smoke run: mlprt build, run, run --check"
m=build/release/tools/mlprt/mlprt
f=tests/fixtures/torch2/relu_nobias_dynamic
timed \$m build --onnx=\$f.onnx --saveEngine=/tmp/smoke.plan \
  --minShapes=input:1x16 --optShapes=input:4x16 --maxShapes=input:16x16
timed \$m run --loadEngine=/tmp/smoke.plan --loadInputs=input:\${f}_in0.npy --exportOutput=output:/tmp/smoke_out.npy
timed \$m run --loadEngine=/tmp/smoke.plan --loadInputs=input:\${f}_in0.npy --check
test -s /tmp/smoke_out.npy

step "Python package: scripts/install_python.sh, import mlprt, one inference"
timed scripts/install_python.sh
timed .venv/bin/python - <<'PY'
import numpy as np
import mlprt
engine = mlprt.Engine.load_file("/tmp/smoke.plan")
x = np.load("tests/fixtures/torch2/relu_nobias_dynamic_in0.npy")
y = engine.infer({"input": x})["output"]
ref = np.load("tests/fixtures/torch2/relu_nobias_dynamic_ref0.npy")
err = np.linalg.norm(y - ref) / np.linalg.norm(ref)
assert err <= 1e-5, err
print("mlprt", mlprt.__version__, engine.backend, "engine, rel L2", err)
PY
EOF
if [ "$bench" -eq 1 ]; then
  cat >> "$work/inside.sh" <<'EOF'
step "benchmark peers (install_deps.sh --bench)"
timed .venv/bin/python -c "import onnxruntime, matplotlib; print('onnxruntime', onnxruntime.__version__, 'matplotlib', matplotlib.__version__)"
timed .venv/bin/python bench/python_overhead.py --duration 0.2 --repeats 1 --warmup 0.05 --out-dir /tmp/bench-smoke
ls /tmp/bench-smoke
EOF
fi
echo 'step "clean-root check passed"' >> "$work/inside.sh"

t0=$SECONDS
echo "== [$(date +%T)] minimal Debian 12 root (mmdebstrap minbase + git, ca-certificates) in $work/root"
mmdebstrap --variant=minbase --include=git,ca-certificates --quiet \
  --customize-hook="git clone --quiet --no-hardlinks '$repo' \"\$1/mlprt\" && git -C \"\$1/mlprt\" checkout --quiet --detach $commit" \
  --customize-hook="cp '$work/inside.sh' \"\$1/inside.sh\"" \
  --customize-hook='if ls /usr/local/share/ca-certificates/*.crt > /dev/null 2>&1; then
      cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" &&
      chroot "$1" update-ca-certificates > /dev/null; fi' \
  --customize-hook='chroot "$1" bash /inside.sh' \
  bookworm "$work/root" "$mirror"
echo "== clean-root check of $commit passed in $((SECONDS - t0)) s"
