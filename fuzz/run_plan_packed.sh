#!/usr/bin/env bash
# Runs a packed plan fuzzer (fuzz/pack_plan_fuzzer.sh) on every core: JOBS workers, each
# RUNS_PER_JOB executions (or SECONDS, whichever ends first) from the same seeds, sharing one
# corpus; crashes go to CRASH_DIR.
#   fuzz/run_plan_packed.sh PACK.tar.xz JOBS RUNS_PER_JOB CRASH_DIR [SECONDS]
set -euo pipefail
pack=${1:?usage: run_plan_packed.sh PACK JOBS RUNS_PER_JOB CRASH_DIR}
jobs=${2:?}; runs=${3:?}; crashes=${4:?}; seconds=${5:-0}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
tar -C "$work" -xJf "$pack"
export LD_LIBRARY_PATH="$work/fz/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OMP_NUM_THREADS=1
mkdir -p "$work/corpus" "$crashes"
"$work/fz/bin/mlprt_make_plan_seeds" "$work/corpus"
cd "$work"
status=0
ASAN_OPTIONS=allocator_may_return_null=1 LSAN_OPTIONS="suppressions=$root/fuzz/lsan_plan.supp" \
  "$work/fz/bin/mlprt_plan_load_fuzzer" "$work/corpus" -jobs="$jobs" -workers="$jobs" \
  -runs="$runs" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
  -artifact_prefix="$crashes/" -print_final_stats=1 || status=$?
grep -h "stat::number_of_executed_units" fuzz-*.log | awk '{s += $2} END {print "total executions:", s}'
grep -lE "ERROR|SUMMARY|deadly signal|Timeout|out-of-memory" fuzz-*.log | head || true
for f in fuzz-*.log; do tail -n 3 "$f" | sed "s|^|$f: |"; done | tail -n 12
exit $status
