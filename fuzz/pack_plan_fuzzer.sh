#!/usr/bin/env bash
# Packs the plan-loading fuzzer (build/fuzz, preset `fuzz`) with the Debian libraries it loads,
# for a many-core machine that lacks them; run it there with fuzz/run_plan_packed.sh.
#   fuzz/pack_plan_fuzzer.sh .dev/fuzz/plan_fuzzer.tar.xz
set -euo pipefail
out=${1:?usage: pack_plan_fuzzer.sh OUT.tar.xz}
root=$(cd "$(dirname "$0")/.." && pwd)
cmake --build --preset fuzz --target mlprt_plan_load_fuzzer mlprt_make_plan_seeds >/dev/null
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/fz/bin" "$stage/fz/lib"
cp "$root"/build/fuzz/fuzz/{mlprt_plan_load_fuzzer,mlprt_make_plan_seeds} "$stage/fz/bin/"
for lib in $(ldd "$root/build/fuzz/fuzz/mlprt_plan_load_fuzzer" | awk '$3 ~ /^\// {print $3}'); do
  case "$(basename "$lib")" in libc.so*|libm.so*|libstdc++*|libgcc_s*) ;; *) cp -L "$lib" "$stage/fz/lib/" ;; esac
done
mkdir -p "$(dirname "$out")"
tar -C "$stage" -cJf "$out.tmp" fz
mv "$out.tmp" "$out"
ls -la "$out"
