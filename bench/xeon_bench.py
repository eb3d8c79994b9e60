#!/usr/bin/env python3
"""Issue 17's table on a Xeon: mlprt vs ONNX Runtime vs PyTorch pinned to 1 and 2 cores, fp32 /
bf16 / fp16, with the CPU's matmul peak (measured by `mlprt bench` in the same run), cold start
and memory figures.

    python3 bench/xeon_bench.py                      # the issue's rows, 1 and 2 cores
    python3 bench/xeon_bench.py --quick              # seed and tcnn only, short timings
    python3 bench/xeon_bench.py --mlprt=pkg/bin/mlprt --label=h200-host   # on another machine
    python3 bench/xeon_bench.py --rows=mnist:64:1 --rounds=8  # mlprt and ORT alternated 8 times

Each (threads T) configuration pins this process (and so ORT, torch and the mlprt subprocess) to
the first T cores it may use (os.sched_setaffinity), as `taskset -c 0` / `-c 0-1` would. Rows:
  * mlprt: `mlprt bench --onnx --shapes --threads=T [--bf16|--fp16]` (tuned for the batch); its
    --exportTimes summary gives the median, the first call, load time, peak RSS and the CPU's
    matmul peak at the engine's lowest precision on those cores (`cpu_peak_gflops`).
  * ONNX Runtime (fp32 only: its CPU provider has no bf16/fp16 Gemm) and PyTorch (fp32, bf16,
    fp16), timed from Python as bench/cpu_bench.py does.
Memory (the wide model, 2 profiles): peak RSS of `mlprt build`, `mlprt run` of 8 rows and
`mlprt inspect` (and inspect's wall time), against ONNX Runtime's session in a fresh Python
process, each from os.wait4's rusage of that child.

Writes bench/results/xeon-<label>-YYYY-MM-DD.json and .png.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import cpu_bench  # noqa: E402
from models import MODELS, make_mlp  # noqa: E402

# The rows: (model, batch, threads).
ROWS = [("seed", 1, 1), ("seed", 64, 2), ("seed", 4096, 2), ("mnist", 64, 1), ("mnist", 64, 2),
        ("mnist", 4096, 2), ("wide", 1, 1), ("wide", 64, 2), ("tcnn", 4096, 2)]
QUICK_ROWS = [("seed", 1, 1), ("seed", 64, 2), ("tcnn", 4096, 2)]


# Runs a command and writes its peak RSS (KiB, from os.wait4) to argv[1]. A child's ru_maxrss
# starts at its parent's RSS at fork (Linux keeps the high-water mark across exec), so the
# measured commands are started from this small fresh interpreter, not from the benchmark
# process that holds torch and ONNX Runtime.
WAIT4_HELPER = r"""
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def time_peak(cmd):
    """Peak RSS (MiB) and wall time (s) of one command (see WAIT4_HELPER)."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        t0 = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", WAIT4_HELPER, rss.name, *cmd],
                                capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr}")
        return int(rss.read()) / 1024.0, wall, result


ORT_MEMORY = r"""
import resource, sys, numpy as np
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
import onnxruntime as ort
so = ort.SessionOptions(); so.intra_op_num_threads = 1
s = ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
s.run(None, {"input": np.zeros((8, int(sys.argv[2])), np.float32)})
print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def memory_rows(mlprt, tmp):
    dims, act = MODELS["wide"]
    onnx_path = tmp / "wide_mem.onnx"
    make_mlp(onnx_path, dims, act)
    plan = tmp / "wide_mem.plan"
    weight_mib = sum(k * n * 4 + n * 4 for k, n in zip(dims[:-1], dims[1:])) / 2**20
    cache = tmp / "wide_mem.cache"
    build_cmd = [mlprt, "build", "--backend=cpu", f"--onnx={onnx_path}", "--threads=1",
                 f"--minShapes=input:1x{dims[0]}", f"--optShapes=input:1x{dims[0]}",
                 f"--maxShapes=input:8x{dims[0]}", f"--minShapes=input:9x{dims[0]}",
                 f"--optShapes=input:64x{dims[0]}", f"--maxShapes=input:64x{dims[0]}"]
    build_mib, build_s, _ = time_peak(
        build_cmd + [f"--saveEngine={plan}", f"--timingCacheFile={cache}"])
    x = tmp / "x8.npy"
    np.save(x, np.random.default_rng(0).standard_normal((8, dims[0])).astype(np.float32))
    run_mib, run_s, _ = time_peak([mlprt, "run", f"--loadEngine={plan}", f"--loadInputs=input:{x}"])
    # The worst tactic choice for memory: every layer's fixed-M packed tactic in both profiles
    # (forced through the timing cache, so the build times nothing), a packed copy per profile
    # beside the plain one the runtime-M primitive reads.
    entries = json.loads(cache.read_text())
    for key in entries["entries"]:
        if key.endswith("| fp32 fixed-M packed"):
            entries["entries"][key] = 0.001
    forced = tmp / "wide_mem_packed.cache"
    forced.write_text(json.dumps(entries))
    packed_plan = tmp / "wide_mem_packed.plan"
    subprocess.run(build_cmd + [f"--saveEngine={packed_plan}", f"--timingCacheFile={forced}"],
                   check=True, capture_output=True)
    packed_mib, _, _ = time_peak([mlprt, "run", f"--loadEngine={packed_plan}",
                                  f"--loadInputs=input:{x}"])
    inspect_mib, inspect_s, inspected = time_peak([mlprt, "inspect", f"--loadEngine={plan}"])
    cpu_line = next((l for l in inspected.stdout.splitlines() if l.startswith("This CPU")), None)
    _, _, proc = time_peak([sys.executable, "-c", ORT_MEMORY, str(onnx_path), str(dims[0])])
    ort_before, ort_peak = (float(v) for v in proc.stdout.split())
    return {
        "model": "wide 1024-4096-4096-1024 GELU, 2 profiles (1..8, 9..64), fp32",
        "weight_mib": weight_mib,
        "mlprt_build_peak_mib": build_mib, "mlprt_build_s": build_s,
        "mlprt_run8_peak_mib": run_mib, "mlprt_run8_s": run_s,
        "mlprt_run8_peak_mib_packed_tactics": packed_mib,
        "mlprt_inspect_peak_mib": inspect_mib, "mlprt_inspect_s": inspect_s,
        "ort_python_before_session_mib": ort_before, "ort_session_run8_peak_mib": ort_peak,
        "inspect_this_cpu": cpu_line,
        "targets": {"run_peak_mib": 1.3 * weight_mib + 50, "build_peak_mib": 2.5 * weight_mib,
                    "inspect_peak_mib": 50, "inspect_s": 0.05},
    }


def bench_mlprt(mlprt, onnx_path, batch, k, threads, prec, cache, args, tmp):
    times = tmp / "times.json"
    cmd = [mlprt, "bench", "--backend=cpu", f"--onnx={onnx_path}", f"--shapes=input:{batch}x{k}",
           f"--threads={threads}", f"--timingCacheFile={cache}",
           f"--warmUp={int(args.warmup * 1000)}", f"--duration={args.min_time}",
           f"--iterations={args.min_iters}", f"--exportTimes={times}"]
    if prec != "fp32":
        cmd += [f"--{prec}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return None, proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
    return json.loads(times.read_text())["summary"], None


def bench_torch(onnx_path, activation, batch, threads, prec, args):
    if prec != "fp16":
        return cpu_bench.bench_torch(onnx_path, activation, batch, threads, prec, args)
    import torch
    torch.set_num_threads(threads)
    import onnx
    from onnx import numpy_helper
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(onnx_path)).graph.initializer}
    n = sum(1 for name in inits if name.startswith("w"))
    layers = []
    for i in range(n):
        lin = torch.nn.Linear(inits[f"w{i}"].shape[1], inits[f"w{i}"].shape[0])
        lin.weight.data = torch.from_numpy(inits[f"w{i}"].copy())
        lin.bias.data = torch.from_numpy(inits[f"b{i}"].copy())
        layers.append(lin)
        if i < n - 1:
            layers.append(torch.nn.GELU() if activation == "Gelu" else torch.nn.ReLU())
    net = torch.nn.Sequential(*layers).eval().half()
    x = torch.randn(batch, inits["w0"].shape[1]).half()
    with torch.inference_mode():
        return cpu_bench.time_calls(lambda: net(x), args.min_time, args.min_iters, args.warmup)


def plot(rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = [f"{r['model']} b{r['batch']} t{r['threads']} {r['prec']}" for r in rows]
    fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(rows)), 5))
    xs = np.arange(len(rows))
    for off, key, name in ((-0.27, "mlprt_us", "mlprt"), (0.0, "ort_us", "ONNX Runtime"),
                           (0.27, "torch_us", "PyTorch")):
        ax.bar(xs + off, [r.get(key) or 0 for r in rows], 0.27, label=name)
    ax.set_yscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels(labels, rotation=70, fontsize=7)
    ax.set_ylabel("median latency (us)")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rows", default=None,
                    help="comma list of model:batch:threads (e.g. seed:1:1,seed:64:2,mnist:64:1) "
                         "instead of the issue's rows or --quick's")
    ap.add_argument("--precisions", default="fp32,bf16,fp16")
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--min-iters", type=int, default=5)
    ap.add_argument("--warmup", type=float, default=0.2)
    ap.add_argument("--max-call-s", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=1,
                    help="per row, alternate mlprt and ONNX Runtime this many times; the row "
                         "gives the medians and each round's ratio")
    ap.add_argument("--mlprt", default=None)
    ap.add_argument("--label", default="xeon", help="machine label for the file name")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--memory-only", action="store_true", help="only the wide model's memory")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    args = ap.parse_args()
    if args.rounds < 1:
        sys.exit(f"xeon_bench: --rounds={args.rounds}: give 1 or more")
    mlprt = cpu_bench.find_mlprt(args.mlprt)
    precisions = args.precisions.split(",")
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="mlprt_xeon_"))
    cache = tmp / "timing.cache"
    rows, notes = [], []
    all_cores = sorted(os.sched_getaffinity(0))
    selected = QUICK_ROWS if args.quick else ROWS
    if args.rows:
        selected = []
        for item in args.rows.split(","):
            parts = item.split(":")
            if len(parts) != 3 or parts[0] not in MODELS or not all(p.isdigit() for p in parts[1:]):
                sys.exit(f"xeon_bench: --rows entry '{item}' is not model:batch:threads with a "
                         f"model of {', '.join(MODELS)} and positive integers")
            selected.append((parts[0], int(parts[1]), int(parts[2])))
    for model, batch, threads in ([] if args.memory_only else selected):
        if threads > len(all_cores):
            notes.append(f"{model} b={batch} t={threads}: skipped, only {len(all_cores)} cores")
            continue
        os.sched_setaffinity(0, all_cores[:threads])
        dims, act = MODELS[model]
        onnx_path = tmp / f"{model}.onnx"
        if not onnx_path.exists():
            make_mlp(onnx_path, dims, act)
        for prec in precisions:
            row = {"model": model, "batch": batch, "threads": threads, "prec": prec,
                   "cores": all_cores[:threads]}
            # Rounds alternate mlprt and ONNX Runtime on the same cores, so that a change in the
            # host's load between them shows in the per-round ratios instead of in one ratio.
            mlprt_rounds, ort_rounds = [], []
            for _ in range(args.rounds):
                summary, why = bench_mlprt(mlprt, onnx_path, batch, dims[0], threads, prec,
                                           cache, args, tmp)
                if summary is None:
                    break
                mlprt_rounds.append(summary["latency_us"]["median"])
                if prec == "fp32":
                    ort_rounds.append(cpu_bench.bench_ort(onnx_path, batch, dims[0], dims[-1],
                                                          threads, args))
            if summary is None:
                notes.append(f"{model} b={batch} t={threads} {prec}: mlprt failed: {why}")
                continue
            row["mlprt_us"] = float(np.median(mlprt_rounds))
            if len(mlprt_rounds) > 1:
                row["mlprt_rounds_us"] = mlprt_rounds
            row["mlprt_precision"] = summary["precision"]
            for key in ("first_call_us", "load_ms", "peak_rss_mib", "gflops", "cpu_peak_gflops",
                        "peak_precision"):
                row[key] = summary.get(key)
            if row["cpu_peak_gflops"]:
                row["fraction_of_peak"] = row["gflops"] / row["cpu_peak_gflops"]
            row["ort_us"] = float(np.median(ort_rounds)) if ort_rounds else None
            if len(ort_rounds) > 1:
                row["ort_rounds_us"] = ort_rounds
                row["mlprt_over_ort_rounds"] = [m / o for m, o in zip(mlprt_rounds, ort_rounds)]
                row["mlprt_over_ort_median"] = float(np.median(row["mlprt_over_ort_rounds"]))
            try:
                row["torch_us"] = bench_torch(onnx_path, act, batch, threads, prec, args)
            except Exception as e:  # torch builds without a CPU half kernel
                row["torch_us"] = None
                notes.append(f"{model} b={batch} t={threads} {prec}: torch failed: {e}")
            rows.append(row)
            fmt = lambda v: f"{v:10.1f}" if v else "         -"
            print(f"{model:6s} b={batch:<5d} t={threads} {prec:5s} mlprt {fmt(row['mlprt_us'])} "
                  f"({row['mlprt_precision']}) ort {fmt(row['ort_us'])} torch {fmt(row['torch_us'])}"
                  f"  first {row['first_call_us']:.0f} us  peak {row['peak_precision']} "
                  f"{row['cpu_peak_gflops'] or 0:.0f} GFLOP/s ({100 * row.get('fraction_of_peak', 0):.0f}%)"
                  + (f"  mlprt/ort by round {' '.join(f'{r:.2f}' for r in row['mlprt_over_ort_rounds'])}"
                     if "mlprt_over_ort_rounds" in row else ""),
                  flush=True)
    os.sched_setaffinity(0, all_cores[:1])
    memory = None if args.no_memory else memory_rows(mlprt, tmp)
    if memory:
        print("memory:", json.dumps(memory, indent=1))
    os.sched_setaffinity(0, all_cores)
    load_after = os.getloadavg()[0]
    if max(load_before, load_after) > 0.5:
        notes.insert(0, f"TAKEN UNDER LOAD (1-minute load average {load_before:.2f} before, "
                        f"{load_after:.2f} after): other processes shared these cores")
    date = datetime.date.today().isoformat()
    info = cpu_bench.machine_info(mlprt)
    result = {"date": date, "command": " ".join([Path(sys.executable).name] + sys.argv),
              "machine": info, "platform": platform.platform(),
              "load_average_1min": {"before": load_before, "after": load_after},
              "notes": notes, "rows": rows, "memory": memory}
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"xeon-{args.label}-{date}" + ("-memory" if args.memory_only else "")
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    try:
        if rows:
            plot(rows, out / f"{stem}.png", f"mlprt vs ORT vs torch, {info.get('cpu', 'cpu')} "
                 f"({args.label}), pinned 1/2 cores, {date}")
    except ImportError as e:
        print(f"no PNG: {e}")
    print(f"wrote {out / stem}.json and .png")


if __name__ == "__main__":
    main()
