#!/bin/bash
# Wheels of ray[serve] (pinned, as scripts/install_python.sh) and its dependencies for the GPU
# machine's python3.12 (cp312, manylinux x86_64; it has no network), in parts under 60 MiB
# each so that each fits one device call's carry (64 MiB): .dev/ray312/part1, part2, ... The
# ray wheel itself (~76 MiB) is cut with split(1); bench/gpu_ray_serve.sh joins it again.
#   bench/pack_ray_gpu.sh [.dev/ray312]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.dev/ray312}
ray_version=2.60.0
mkdir -p "$out/all"
platforms=()
for p in manylinux2014_x86_64 manylinux_2_17_x86_64 manylinux_2_24_x86_64 manylinux_2_27_x86_64 \
         manylinux_2_28_x86_64 manylinux_2_5_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
.venv/bin/python -m pip download --disable-pip-version-check -q --only-binary=:all: \
  --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none "${platforms[@]}" \
  -d "$out/all" "ray[serve]==$ray_version"
rm -rf "$out"/part*
limit=$((58 * 1024 * 1024))
part=1
used=0
mkdir -p "$out/part1"
add() {  # add FILE: into the current part, opening the next one when it would pass the limit
  local size
  size=$(stat -c %s "$1")
  if [ $((used + size)) -gt "$limit" ]; then
    part=$((part + 1)); used=0; mkdir -p "$out/part$part"
  fi
  cp "$1" "$out/part$part/"
  used=$((used + size))
}
ray_wheel=$(ls "$out"/all/ray-"$ray_version"-*.whl)
split -b 50M -d "$ray_wheel" "$out/all/$(basename "$ray_wheel").split-"
for piece in "$out/all/$(basename "$ray_wheel")".split-*; do add "$piece"; done
for wheel in "$out"/all/*.whl; do
  [ "$wheel" = "$ray_wheel" ] || add "$wheel"
done
rm -f "$out/all/$(basename "$ray_wheel")".split-*
(cd "$out" && sha256sum "all/$(basename "$ray_wheel")" | sed 's| all/| |' > "part$part/ray.sha256")
du -sh "$out"/part*
