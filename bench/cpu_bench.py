#!/usr/bin/env python3
"""mlprt vs ONNX Runtime vs PyTorch on this machine's CPU, in one run.

    python3 bench/cpu_bench.py            # every model, batch 1/64/4096, 1 and 2 threads, fp32+bf16
    python3 bench/cpu_bench.py --quick    # seed and tcnn, batch 1/64, 1 thread

How each engine is timed (median latency of single calls, same input every call):
  * mlprt: the C++ `mlprt bench --onnx=... --shapes=input:Bx.. --threads=T` (build tuned for that
    shape, warm-up, then `--duration` seconds of enqueue calls); we take its median.
  * ONNX Runtime: Python API, SessionOptions(intra_op_num_threads=T, inter_op_num_threads=1,
    ORT_ENABLE_ALL, sequential), IO binding with the input and output bound once to
    preallocated numpy arrays; time.perf_counter around run_with_iobinding.
  * PyTorch: nn.Sequential of Linear+activation with the same weights, torch.set_num_threads(T),
    inference_mode, preallocated input; time.perf_counter around the call. Debian's torch is a
    generic-BLAS build: reported as is.
bf16 rows: mlprt is built with --bf16 (bf16 permitted, chosen per layer where faster); ONNX
Runtime has no bf16 Gemm on the CPU, so its bf16 column is empty; torch runs the model in bf16.

Writes bench/results/cpu-YYYY-MM-DD.json and .png (latency vs batch, log-log, one line per engine).
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from models import MODELS, make_mlp  # noqa: E402


def find_mlprt(explicit):
    candidates = [explicit] if explicit else [
        os.environ.get("MLPRT_BIN"), ROOT / "build/release/tools/mlprt/mlprt",
        ROOT / "build/ci/tools/mlprt/mlprt", ROOT / "build/dev/tools/mlprt/mlprt"]
    for c in candidates:
        if c and Path(c).is_file():
            return str(c)
    sys.exit("cpu_bench: no mlprt binary found; build it (cmake --preset release && "
             "cmake --build build/release) or pass --mlprt=PATH")


def load_average():
    return os.getloadavg()[0]


def wait_quiet(limit, max_wait_s):
    start = time.time()
    while load_average() > limit and time.time() - start < max_wait_s:
        print(f"cpu_bench: load average {load_average():.2f} > {limit}, waiting", flush=True)
        time.sleep(15)
    return load_average()


def mlprt_supports(mlprt, onnx_path, tmp):
    proc = subprocess.run([mlprt, "build", f"--onnx={onnx_path}", f"--saveEngine={tmp / 'probe.plan'}",
                           "--shapes=input:1x" + str(onnx_dims(onnx_path)[0])],
                          capture_output=True, text=True)
    return proc.returncode == 0, proc.stderr.strip()


def onnx_dims(path):
    import onnx
    model = onnx.load(str(path))
    dims = [model.graph.input[0].type.tensor_type.shape.dim[1].dim_value]
    for init in model.graph.initializer:
        if init.name.startswith("w"):
            dims.append(init.dims[0])
    return dims


def time_calls(fn, min_time, min_iters, warmup_s):
    end = time.perf_counter() + warmup_s
    fn()
    while time.perf_counter() < end:
        fn()
    times = []
    start = time.perf_counter()
    # At least min_iters calls and min_time seconds, as `mlprt bench --iterations --duration`.
    while len(times) < min_iters or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e6)
        if len(times) >= 100000:
            break
    return statistics.median(times)


def bench_mlprt(mlprt, onnx_path, batch, k, threads, prec, cache, args, tmp):
    times = tmp / "times.json"
    cmd = [mlprt, "bench", f"--onnx={onnx_path}", f"--shapes=input:{batch}x{k}",
           f"--threads={threads}", f"--timingCacheFile={cache}", f"--warmUp={int(args.warmup * 1000)}",
           f"--duration={args.min_time}", f"--iterations={args.min_iters}",
           f"--exportTimes={times}"]
    if prec == "bf16":
        cmd.append("--bf16")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return json.loads(times.read_text())["summary"]["latency_us"]["median"]


def bench_ort(onnx_path, batch, k, n_out, threads, args):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).uniform(-1, 1, (batch, k)).astype(np.float32)
    y = np.empty((batch, n_out), np.float32)
    binding = sess.io_binding()
    binding.bind_cpu_input("input", x)
    binding.bind_output("output", "cpu", 0, np.float32, list(y.shape), y.ctypes.data)
    return time_calls(lambda: sess.run_with_iobinding(binding), args.min_time, args.min_iters,
                      args.warmup)


def bench_torch(onnx_path, activation, batch, threads, prec, args):
    import onnx
    import torch
    from onnx import numpy_helper
    torch.set_num_threads(threads)
    model = onnx.load(str(onnx_path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    layers = []
    n_layers = sum(1 for name in inits if name.startswith("w"))
    for i in range(n_layers):
        w, b = inits[f"w{i}"], inits[f"b{i}"]
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        lin.weight.data = torch.from_numpy(w.copy())
        lin.bias.data = torch.from_numpy(b.copy())
        layers.append(lin)
        if i < n_layers - 1:
            layers.append(torch.nn.GELU() if activation == "Gelu" else torch.nn.ReLU())
    net = torch.nn.Sequential(*layers).eval()
    dtype = torch.bfloat16 if prec == "bf16" else torch.float32
    net = net.to(dtype)
    x = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (batch, inits["w0"].shape[1]))
                         .astype(np.float32)).to(dtype)
    with torch.inference_mode():
        return time_calls(lambda: net(x), args.min_time, args.min_iters, args.warmup)


def machine_info(mlprt):
    info = {"platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
            if line.startswith("Flags:"):
                flags = line.split()
                info["avx512_bf16"] = "avx512_bf16" in flags
                info["avx512_fp16"] = "avx512_fp16" in flags
                info["amx_bf16"] = "amx_bf16" in flags
    except OSError:
        pass
    versions = {"mlprt": subprocess.run([mlprt, "--version"], capture_output=True,
                                        text=True).stdout.strip()}
    try:
        import onnxruntime
        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        versions["onnxruntime"] = None
    try:
        import torch
        versions["torch"] = torch.__version__
        versions["torch_config"] = torch.__config__.show().splitlines()[:8]
    except ImportError:
        versions["torch"] = None
    info["versions"] = versions
    return info


def plot(rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = sorted({r["model"] for r in rows}, key=lambda m: list(r["model"] for r in rows).index(m))
    configs = sorted({(r["threads"], r["prec"]) for r in rows})
    fig, axes = plt.subplots(len(models), len(configs), figsize=(4 * len(configs), 3.2 * len(models)),
                             squeeze=False)
    for i, model in enumerate(models):
        for j, (threads, prec) in enumerate(configs):
            ax = axes[i][j]
            sel = sorted((r for r in rows if r["model"] == model and r["threads"] == threads
                          and r["prec"] == prec), key=lambda r: r["batch"])
            for key, label, style in (("mlprt_us", "mlprt", "o-"), ("ort_us", "ONNX Runtime", "s--"),
                                      ("torch_us", "PyTorch", "^:")):
                pts = [(r["batch"], r[key]) for r in sel if r.get(key)]
                if pts:
                    ax.plot(*zip(*pts), style, label=label)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{model}, {prec}, {threads} thread{'s' if threads > 1 else ''}", fontsize=9)
            ax.set_xlabel("batch")
            ax.set_ylabel("median latency (us)")
            ax.grid(True, which="both", alpha=0.3)
            if i == 0 and j == 0:
                ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def check_bars(rows):
    """The issue's speed bars, per row: (row, bar, ok, detail)."""
    out = []
    by = {(r["model"], r["prec"], r["batch"], r["threads"]): r for r in rows}
    for r in rows:
        if r["prec"] == "fp32" and r["ort_us"]:
            if r["model"] == "seed" and r["batch"] == 1:
                ratio = r["mlprt_us"] / r["ort_us"]
                out.append((r, "seed b1: mlprt <= 0.5x ORT latency", ratio <= 0.5, f"{ratio:.2f}x"))
            if r["batch"] in (64, 4096):
                ratio = r["ort_us"] / r["mlprt_us"]
                out.append((r, "fp32 throughput >= 1.0x ORT", ratio >= 1.0, f"{ratio:.2f}x"))
        if r["prec"] == "bf16":
            fp32 = by.get((r["model"], "fp32", r["batch"], r["threads"]))
            if fp32 and r["batch"] in (64, 4096):
                ratio = fp32["mlprt_us"] / r["mlprt_us"]
                out.append((r, "bf16 faster than our fp32", ratio > 1.0, f"{ratio:.2f}x"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="seed and tcnn, batch 1 and 64, 1 thread")
    ap.add_argument("--models", default=None, help="comma list of " + ",".join(MODELS))
    ap.add_argument("--batches", default=None, help="comma list, default 1,64,4096")
    ap.add_argument("--threads", default=None, help="comma list, default 1,2")
    ap.add_argument("--precisions", default=None, help="comma list, default fp32,bf16")
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds timed per measurement")
    ap.add_argument("--min-iters", type=int, default=3, help="calls timed at least")
    ap.add_argument("--max-call-s", type=float, default=5.0,
                    help="skip PyTorch where one call is predicted (from the smaller batch) to "
                         "take longer than this")
    ap.add_argument("--warmup", type=float, default=0.2, help="seconds of warm-up per measurement")
    ap.add_argument("--mlprt", default=None, help="mlprt binary (default: build/release, ci, dev)")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    ap.add_argument("--wait-quiet", type=float, default=0,
                    help="wait up to N seconds for the 1-minute load average to drop below 0.5")
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()

    models = (args.models or ("seed,tcnn" if args.quick else ",".join(MODELS))).split(",")
    batches = [int(b) for b in (args.batches or ("1,64" if args.quick else "1,64,4096")).split(",")]
    threads_list = [int(t) for t in (args.threads or ("1" if args.quick else "1,2")).split(",")]
    precisions = (args.precisions or "fp32,bf16").split(",")
    for m in models:
        if m not in MODELS:
            sys.exit(f"cpu_bench: unknown model '{m}'; known: {', '.join(MODELS)}")
    mlprt = find_mlprt(args.mlprt)
    load_before = wait_quiet(0.5, args.wait_quiet) if args.wait_quiet else load_average()
    if load_before > 0.5:
        print(f"cpu_bench: WARNING: 1-minute load average is {load_before:.2f}: numbers taken "
              "on a busy machine are not comparable", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="mlprt_bench_"))
    cache = tmp / "timing.cache"
    rows, notes = [], []
    try:
        for name in models:
            dims, activation = MODELS[name]
            label = name
            onnx_path = tmp / f"{name}.onnx"
            make_mlp(onnx_path, dims, activation)
            ok, why = mlprt_supports(mlprt, onnx_path, tmp)
            if not ok and activation != "Relu":
                notes.append(f"{name}: mlprt cannot import {activation} on this branch "
                             f"({why.splitlines()[-1] if why else 'build failed'}); every engine "
                             "runs it with Relu instead, labelled accordingly")
                activation = "Relu"
                label = f"{name}-relu"
                make_mlp(onnx_path, dims, activation)
            k, n_out = dims[0], dims[-1]
            for threads in threads_list:
                for prec in precisions:
                    torch_prev = None  # (batch, us) of the previous batch, to predict the next
                    for batch in sorted(batches):
                        row = {"model": label, "prec": prec, "batch": batch, "threads": threads}
                        row["mlprt_us"] = bench_mlprt(mlprt, onnx_path, batch, k, threads, prec,
                                                      cache, args, tmp)
                        row["ort_us"] = (bench_ort(onnx_path, batch, k, n_out, threads, args)
                                         if prec == "fp32" else None)
                        predicted = (torch_prev[1] * batch / torch_prev[0] * 1e-6
                                     if torch_prev else 0.0)
                        if args.no_torch:
                            row["torch_us"] = None
                        elif predicted > args.max_call_s:
                            row["torch_us"] = None
                            notes.append(f"{label} {prec} b={batch} t={threads}: PyTorch skipped, "
                                         f"one call predicted to take {predicted:.0f} s")
                        else:
                            row["torch_us"] = bench_torch(onnx_path, activation, batch, threads,
                                                          prec, args)
                            torch_prev = (batch, row["torch_us"])
                        rows.append(row)
                        fmt = lambda v: f"{v:10.1f}" if v else "         -"
                        print(f"{label:10s} {prec:5s} b={batch:<5d} t={threads}  mlprt {fmt(row['mlprt_us'])} us"
                              f"  ort {fmt(row['ort_us'])} us  torch {fmt(row['torch_us'])} us", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    notes.append("ort_us is empty for bf16 rows: ONNX Runtime's CPU provider has no bf16 Gemm")
    notes.append("mlprt bf16 rows: built with --bf16 (permitted); the tuner keeps fp32 per layer "
                 "where that is faster")
    load_after = load_average()
    if max(load_before, load_after) > 0.5:
        notes.insert(0, f"TAKEN UNDER LOAD (1-minute load average {load_before:.2f} before, "
                        f"{load_after:.2f} after, on {os.cpu_count()} cores): other processes "
                        "competed for the cores; 2-thread rows suffer most. Rerun on a quiet "
                        "machine before comparing.")
    date = datetime.date.today().isoformat()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "date": date,
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "machine": machine_info(mlprt),
        "load_average_1min": {"before": load_before, "after": load_after},
        "method": {
            "mlprt": "C++ `mlprt bench` median of enqueue calls (build tuned for the batch)",
            "ort": "Python API, IO binding, perf_counter around run_with_iobinding, "
                   "ORT_ENABLE_ALL, intra_op_num_threads=threads, sequential",
            "torch": "Python, inference_mode, perf_counter around the call, set_num_threads",
            "min_time_s": args.min_time, "warmup_s": args.warmup,
        },
        "notes": notes,
        "rows": rows,
    }
    bars = check_bars(rows)
    result["bars"] = [{"model": r["model"], "prec": r["prec"], "batch": r["batch"],
                       "threads": r["threads"], "bar": bar, "met": ok, "value": detail}
                      for r, bar, ok, detail in bars]
    json_path = out_dir / f"cpu-{date}.json"
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    png_path = out_dir / f"cpu-{date}.png"
    plot(rows, png_path, f"mlprt vs ONNX Runtime vs PyTorch, {result['machine'].get('cpu', 'cpu')}, "
         f"{date} (load {load_before:.1f})")
    print("\nSpeed bars:")
    for r, bar, ok, detail in bars:
        print(f"  {'MET ' if ok else 'MISS'} {r['model']:10s} {r['prec']} b={r['batch']:<5d} "
              f"t={r['threads']}  {bar}: {detail}")
    print(f"\nWrote {json_path} and {png_path} (load average before {load_before:.2f}, "
          f"after {load_after:.2f})")


if __name__ == "__main__":
    main()
