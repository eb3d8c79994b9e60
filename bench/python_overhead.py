#!/usr/bin/env python3
"""What the Python layer adds to one inference, at batch 1 of the tutorial model, in one run.

    taskset -c 2 .venv/bin/python bench/python_overhead.py --threads 1
    taskset -c 2 .venv/bin/python bench/python_overhead.py --threads 1 --device cuda   # + GPU

The model: 784 -> 32 -> ReLU -> 10, fp32, made with torch (seed 0) and exported to ONNX (opset
17, dynamic batch, input "input", output "output"); the engine is built with mlprt's TensorRT-style
Python API (one profile: min 1, opt 1, max 64) and saved as a plan for the CLI.

CPU (threads = --threads for mlprt and ONNX Runtime alike; pin the process with taskset):
  * cpp_enqueue: `mlprt bench --loadEngine=PLAN --shapes=input:1x784`, its median per-call
    latency from --exportTimes (steady_clock around each enqueue).
  * py_infer_numpy: `context.infer({"input": x})`, x a float32 numpy array (1, 784).
  * py_infer_outputs: the same with preallocated `outputs=`; py_infer_torch: x a CPU torch tensor.
  * py_execute_async_v3: set_input_shape + set_tensor_address once, then execute_async_v3(0).
  * ort_run / ort_run_iobinding: onnxruntime.InferenceSession.run(None, {"input": x}) and
    run_with_iobinding with input and output bound once (intra_op = threads, inter_op = 1).
  * torch_eager_cpu: the torch model itself (inference_mode, set_num_threads), as context.
Python rows: a tight loop of N calls (functools.partial over a feed built once, gc off) timed with
perf_counter_ns; `us` is the median over --repeats repeats of (loop time / N); p50_us / p99_us come
from one more pass that times every call on its own (they include about one perf_counter_ns call).

GPU (--device cuda, when torch sees a GPU): a cuda engine; x a torch tensor on the GPU;
`context.infer({"input": x}, stream=torch.cuda.current_stream())` in a loop with one synchronize
at the end (throughput style: total / N), against `mlprt bench --useCudaGraph --noDataTransfers`'s
GPU compute time (cuda events) of the same plan; torch's eager model on the GPU as context.

Targets: infer_minus_cpp_us <= 1.5, mlprt_python_over_ort_python (py_infer_numpy / ort_run)
<= 0.5, gpu infer_minus_device_us <= 2. Writes bench/results/python_overhead-HOST-DATE.json and
.png (bars of per-call time).
"""
import argparse
import copy
import datetime
import functools
import gc
import json
import os
import platform
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BATCH, K, N_OUT = 1, 784, 10
TARGETS = (  # name, limit (value <= limit passes), what it is
    ("infer_minus_cpp_us", 1.5, "cpu: py_infer_numpy - cpp_enqueue (us)"),
    ("mlprt_python_over_ort_python", 0.5, "cpu: py_infer_numpy / ort_run"),
    ("gpu_infer_minus_device_us", 2.0, "gpu: py_infer per call (throughput) - GPU compute (us)"),
)


def find_mlprt(explicit):
    candidates = [explicit] if explicit else [ROOT / "build/release/tools/mlprt/mlprt",
                                              ROOT / "build/ci/tools/mlprt/mlprt"]
    for c in candidates:
        if c and Path(c).is_file():
            return str(c)
    sys.exit("python_overhead: no mlprt binary found; build it (cmake --preset release && "
             "cmake --build build/release) or pass --mlprt=PATH")


def import_mlprt(cli):
    """`import mlprt`; failing that, the package of the CLI's own build tree (build/X/python)."""
    try:
        import mlprt
    except ImportError:
        sys.path.insert(0, str(Path(cli).resolve().parents[2] / "python"))
        import mlprt
    return mlprt


def write_atomic(path, write):
    """write(tmp_path) into a temporary file beside `path`, then rename it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_model(workdir):
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(K, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, N_OUT)).eval()
    path = workdir / "tutorial_dynamic.onnx"
    torch.onnx.export(model, torch.zeros(BATCH, K), str(path), input_names=["input"],
                      output_names=["output"], opset_version=17,
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    return model, path


def build_plan(mlprt, onnx_path, backend, threads, plan_path):
    """The TensorRT way: Builder, OnnxParser, one profile (1, 1, 64), build_serialized_network."""
    logger = mlprt.Logger(mlprt.Logger.WARNING)
    builder = mlprt.Builder(logger)
    network = builder.create_network()
    parser = mlprt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError(f"OnnxParser failed on {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.backend = backend
    config.num_threads = threads
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, K), (BATCH, K), (64, K))
    config.add_optimization_profile(profile)
    plan = bytes(builder.build_serialized_network(network, config))
    write_atomic(plan_path, lambda tmp: Path(tmp).write_bytes(plan))
    return mlprt.Engine.load(plan)


def run_cli(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")


def cli_summary(times_path):
    summary = json.loads(Path(times_path).read_text())["summary"]
    Path(times_path).unlink()  # a few MB per second of calls: not worth keeping
    return summary


def cli_cpu(cli, plan, threads, args, workdir):
    times = workdir / "cpu_times.json"
    cmd = [cli, "bench", f"--loadEngine={plan}", f"--shapes=input:{BATCH}x{K}",
           f"--threads={threads}", f"--duration={args.duration}",
           f"--warmUp={int(args.warmup * 1000)}", "--percentile=50,99", f"--exportTimes={times}"]
    run_cli(cmd)
    s = cli_summary(times)
    lat = s["latency_us"]
    return {"us": lat["median"], "p50_us": lat["percentiles"]["50"],
            "p99_us": lat["percentiles"]["99"], "mean_us": lat["mean"], "min_us": lat["min"],
            "calls": s["iterations"], "command": shlex.join(cmd),
            "walltime_per_call_us": s["walltime_s"] * 1e6 / s["iterations"],
            "how": "C++ mlprt bench: median of steady_clock around each enqueue"}


def cli_gpu(cli, plan, args, workdir):
    times = workdir / "gpu_times.json"
    cmd = [cli, "bench", f"--loadEngine={plan}", f"--shapes=input:{BATCH}x{K}", "--useCudaGraph",
           "--noDataTransfers", f"--duration={args.duration}",
           f"--warmUp={int(args.warmup * 1000)}", f"--exportTimes={times}"]
    run_cli(cmd)
    s = cli_summary(times)
    return {"us": s["compute_us"]["median"], "p99_us": s["compute_us"]["percentiles"]["99"],
            "enqueue_us": s["enqueue_us"]["median"], "calls": s["iterations"],
            "command": shlex.join(cmd),
            "how": "C++ mlprt bench --useCudaGraph --noDataTransfers: median GPU compute time "
                   "(cuda events around the enqueue)"}


def time_calls(fn, args, sync=None, how=""):
    """Median over repeats of (loop time / N) for a tight loop of fn(); with `sync` (GPU) a sync
    before and after each loop; without, also p50/p99 of every call timed on its own."""
    clock = time.perf_counter_ns
    end = time.perf_counter() + args.warmup
    while time.perf_counter() < end:
        fn()
    if sync:
        sync()
    t0 = clock()
    for _ in range(200):
        fn()
    if sync:
        sync()
    per_call_ns = max((clock() - t0) / 200, 1.0)
    n = max(200, int(args.duration * 1e9 / (args.repeats + (0 if sync else 1)) / per_call_ns))
    loops = []
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        for _ in range(args.repeats):
            if sync:
                sync()
            t0 = clock()
            for _ in range(n):
                fn()
            if sync:
                sync()
            loops.append((clock() - t0) / n / 1e3)
        result = {"us": statistics.median(loops), "repeats_us": loops, "calls_per_repeat": n,
                  "how": how}
        if not sync:
            samples = []
            add = samples.append
            for _ in range(n):
                t0 = clock()
                fn()
                add(clock() - t0)
            s = np.asarray(samples, dtype=np.float64) / 1e3
            result.update(p50_us=float(np.percentile(s, 50)), p99_us=float(np.percentile(s, 99)),
                          min_us=float(s.min()))
    finally:
        if gc_was_on:
            gc.enable()
    return result


def timer_floor(args):
    """A tight loop of a trivial C call (len(())), and one perf_counter_ns pair: what the Python
    rows carry beyond the call being timed."""
    floor = time_calls(functools.partial(len, ()), args, how="loop of len(()): the loop's floor")
    clock = time.perf_counter_ns
    pairs = []
    for _ in range(100000):
        t0 = clock()
        pairs.append(clock() - t0)
    floor["perf_counter_ns_pair_us"] = float(np.median(pairs)) / 1e3
    return floor


def cpu_section(mlprt, cli, model, onnx_path, args, workdir, rows, outs):
    import onnxruntime as ort
    import torch
    threads = args.threads
    plan = workdir / "tutorial_cpu.plan"
    engine = build_plan(mlprt, onnx_path, "cpu", threads, plan)
    x = np.random.default_rng(1).uniform(-1, 1, (BATCH, K)).astype(np.float32)
    with torch.inference_mode():
        outs["torch_reference"] = model(torch.from_numpy(x)).numpy().copy()

    measure(rows, "cpp_enqueue", lambda: cli_cpu(cli, plan, threads, args, workdir))
    measure(rows, "python_loop_floor", lambda: timer_floor(args))

    def context():
        ctx = engine.create_execution_context()
        ctx.set_num_threads(threads)
        return ctx

    def py_infer():
        ctx = context()
        outs["py_infer_numpy"] = ctx.infer({"input": x})["output"]
        return time_calls(functools.partial(ctx.infer, {"input": x}), args,
                          how='context.infer({"input": x}), x numpy float32 (1, 784)')
    measure(rows, "py_infer_numpy", py_infer)

    def py_infer_outputs():
        ctx = context()
        y = np.empty((BATCH, N_OUT), np.float32)
        outs["py_infer_outputs"] = ctx.infer({"input": x}, outputs={"output": y})["output"]
        return time_calls(functools.partial(ctx.infer, {"input": x}, outputs={"output": y}), args,
                          how="context.infer(feed, outputs={'output': y}), y preallocated")
    measure(rows, "py_infer_outputs", py_infer_outputs)

    def py_infer_torch():
        ctx = context()
        xt = torch.from_numpy(x)
        outs["py_infer_torch"] = ctx.infer({"input": xt})["output"].numpy()
        return time_calls(functools.partial(ctx.infer, {"input": xt}), args,
                          how="context.infer({'input': xt}), xt a CPU torch tensor")
    measure(rows, "py_infer_torch", py_infer_torch)

    def py_execute_v3():
        ctx = context()
        y = np.zeros((BATCH, N_OUT), np.float32)
        ctx.set_input_shape("input", (BATCH, K))
        ctx.set_tensor_address("input", x.ctypes.data)
        ctx.set_tensor_address("output", y.ctypes.data)
        ctx.execute_async_v3(0)
        outs["py_execute_async_v3"] = y.copy()
        return time_calls(functools.partial(ctx.execute_async_v3, 0), args,
                          how="set_input_shape + set_tensor_address once, execute_async_v3(0)")
    measure(rows, "py_execute_async_v3", py_execute_v3)

    def ort_session():
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])

    def ort_run():
        sess = ort_session()
        outs["ort_run"] = sess.run(None, {"input": x})[0]
        return time_calls(functools.partial(sess.run, None, {"input": x}), args,
                          how='InferenceSession.run(None, {"input": x})')
    measure(rows, "ort_run", ort_run)

    def ort_iobinding():
        sess = ort_session()
        y = np.zeros((BATCH, N_OUT), np.float32)
        binding = sess.io_binding()
        binding.bind_cpu_input("input", x)
        binding.bind_output("output", "cpu", 0, np.float32, list(y.shape), y.ctypes.data)
        sess.run_with_iobinding(binding)
        outs["ort_run_iobinding"] = y.copy()
        return time_calls(functools.partial(sess.run_with_iobinding, binding), args,
                          how="run_with_iobinding, input and output bound once")
    measure(rows, "ort_run_iobinding", ort_iobinding)

    def torch_cpu():
        torch.set_num_threads(threads)
        xt = torch.from_numpy(x)
        with torch.inference_mode():
            return time_calls(functools.partial(model, xt), args,
                              how="torch eager model(xt), inference_mode, set_num_threads")
    measure(rows, "torch_eager_cpu", torch_cpu)
    return engine.hardware


def gpu_section(mlprt, cli, model, onnx_path, args, workdir, rows, outs):
    import torch
    plan = workdir / "tutorial_cuda.plan"
    engine = build_plan(mlprt, onnx_path, "cuda", args.threads, plan)
    x = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (BATCH, K))
                         .astype(np.float32)).cuda()
    gmodel = copy.deepcopy(model).cuda()
    sync = torch.cuda.synchronize
    with torch.inference_mode():
        outs["gpu_torch_reference"] = gmodel(x).cpu().numpy()

    measure(rows, "gpu_cpp_compute", lambda: cli_gpu(cli, plan, args, workdir))

    def py_infer():
        ctx = engine.create_execution_context()
        stream = torch.cuda.current_stream()
        outs["gpu_py_infer"] = ctx.infer({"input": x}, stream=stream)["output"].cpu().numpy()
        return time_calls(functools.partial(ctx.infer, {"input": x}, stream=stream), args,
                          sync=sync, how="context.infer({'input': x}, stream=current_stream()), "
                                         "x torch on the GPU; loop time / N, one sync at the end")
    measure(rows, "gpu_py_infer", py_infer)

    def py_execute_v3():
        ctx = engine.create_execution_context()
        y = torch.zeros((BATCH, N_OUT), device=x.device)
        handle = torch.cuda.current_stream().cuda_stream
        ctx.set_input_shape("input", (BATCH, K))
        ctx.set_tensor_address("input", x.data_ptr())
        ctx.set_tensor_address("output", y.data_ptr())
        ctx.execute_async_v3(handle)
        sync()
        outs["gpu_py_execute_async_v3"] = y.cpu().numpy()
        return time_calls(functools.partial(ctx.execute_async_v3, handle), args, sync=sync,
                          how="addresses bound once, execute_async_v3(stream); loop time / N")
    measure(rows, "gpu_py_execute_async_v3", py_execute_v3)

    def torch_gpu():
        with torch.inference_mode():
            return time_calls(functools.partial(gmodel, x), args, sync=sync,
                              how="torch eager model(x) on the GPU; loop time / N")
    measure(rows, "torch_eager_gpu", torch_gpu)


def measure(rows, name, fn):
    try:
        rows[name] = fn()
    except Exception as e:  # noqa: BLE001  (recorded and reported; the other rows still run)
        rows[name] = {"us": None, "error": f"{type(e).__name__}: {e}"}
    row = rows[name]
    if row.get("us") is None:
        print(f"  {name:24s} FAILED: {row['error']}", flush=True)
    else:
        extra = "".join(f"  {k[:-3]} {row[k]:8.3f}" for k in ("p50_us", "p99_us") if k in row)
        print(f"  {name:24s} {row['us']:9.3f} us{extra}", flush=True)


def us(rows, name):
    return (rows.get(name) or {}).get("us")


def derive(cpu, gpu):
    def diff(a, b):
        return a - b if a is not None and b is not None else None

    def ratio(a, b):
        return a / b if a is not None and b else None

    values = {
        "infer_minus_cpp_us": diff(us(cpu, "py_infer_numpy"), us(cpu, "cpp_enqueue")),
        "mlprt_python_over_ort_python": ratio(us(cpu, "py_infer_numpy"), us(cpu, "ort_run")),
        "gpu_infer_minus_device_us": diff(us(gpu, "gpu_py_infer"), us(gpu, "gpu_cpp_compute")),
    }
    targets = [{"name": name, "value": values[name], "limit": limit, "target": f"<= {limit}",
                "what": what, "pass": None if values[name] is None else values[name] <= limit}
               for name, limit, what in TARGETS]
    p50 = (cpu.get("py_infer_numpy") or {}).get("p50_us")
    derived = {
        "infer_p50_minus_cpp_us": diff(p50, us(cpu, "cpp_enqueue")),
        "infer_minus_cpp_walltime_per_call_us": diff(
            us(cpu, "py_infer_numpy"), (cpu.get("cpp_enqueue") or {}).get("walltime_per_call_us")),
        "execute_v3_minus_cpp_us": diff(us(cpu, "py_execute_async_v3"), us(cpu, "cpp_enqueue")),
        "infer_outputs_minus_cpp_us": diff(us(cpu, "py_infer_outputs"), us(cpu, "cpp_enqueue")),
        "execute_v3_over_ort_iobinding": ratio(us(cpu, "py_execute_async_v3"),
                                               us(cpu, "ort_run_iobinding")),
        "mlprt_python_over_torch_eager_cpu": ratio(us(cpu, "py_infer_numpy"),
                                                   us(cpu, "torch_eager_cpu")),
        "gpu_execute_v3_minus_device_us": diff(us(gpu, "gpu_py_execute_async_v3"),
                                               us(gpu, "gpu_cpp_compute")),
        "gpu_infer_over_torch_eager_gpu": ratio(us(gpu, "gpu_py_infer"),
                                                us(gpu, "torch_eager_gpu")),
    }
    return targets, derived


def accuracy(outs):
    """Max |difference| of every path's output from torch's (CPU or GPU reference)."""
    out = {}
    for name, y in outs.items():
        if "reference" in name:
            continue
        ref = outs["gpu_torch_reference" if name.startswith("gpu_") else "torch_reference"]
        out[name] = float(np.max(np.abs(np.asarray(y, np.float32) - ref)))
    return out


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def versions(mlprt, cli):
    import numpy
    v = {"python": platform.python_version(), "mlprt": mlprt.__version__,
         "mlprt_module": getattr(mlprt, "__file__", None), "numpy": numpy.__version__,
         "mlprt_cli": subprocess.run([cli, "--version"], capture_output=True,
                                     text=True).stdout.strip()}
    for name in ("onnxruntime", "torch"):
        try:
            v[name] = __import__(name).__version__
        except ImportError:
            v[name] = None
    return v


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colors = {"cpp": "#1f4e79", "py_": "#2e86c1", "gpu_cpp": "#1f4e79", "gpu_py": "#2e86c1",
              "ort": "#e67e22", "torch": "#7f8c8d"}

    def color(name):
        for prefix in ("gpu_cpp", "gpu_py", "cpp", "py_", "ort", "torch"):
            if name.startswith(prefix):
                return colors[prefix]
        return "#bbbbbb"

    panels = [("cpu", f"CPU, {result['settings']['threads']} thread(s)")]
    if result["gpu"].get("rows"):
        panels.append(("gpu", f"GPU ({result['device'].get('gpu')})"))
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.2), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels):
        items = [(n, r["us"]) for n, r in result[key]["rows"].items()
                 if r.get("us") is not None and n != "python_loop_floor"]
        names = [n for n, _ in items][::-1]
        values = [v for _, v in items][::-1]
        bars = ax.barh(names, values, color=[color(n) for n in names])
        for bar, v in zip(bars, values):
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {v:.2f}",
                    va="center", fontsize=8)
        ax.set_xlabel("per call (us), batch 1")
        ax.set_title(title, fontsize=10)
        ax.set_xlim(0, max(values or [1]) * 1.18)
        ax.grid(True, axis="x", alpha=0.3)
    verdicts = ", ".join(f"{t['name']} {t['value']:.2f} ({'pass' if t['pass'] else 'MISS'})"
                         for t in result["targets"] if t["value"] is not None)
    fig.suptitle(f"mlprt Python overhead, 784-32-10 fp32, {result['device']['cpu']}, "
                 f"{result['date']}\n{verdicts}", fontsize=9)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="mlprt and ONNX Runtime threads")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="cuda: also the GPU section (needs torch.cuda and a cuda mlprt)")
    ap.add_argument("--duration", type=float, default=3.0,
                    help="seconds timed per row (the CLI's --duration; split over the repeats)")
    ap.add_argument("--repeats", type=int, default=7, help="timed loops per Python row")
    ap.add_argument("--warmup", type=float, default=0.3, help="seconds of warm-up per row")
    ap.add_argument("--mlprt", default=None,
                    help="the CLI (default build/release/tools/mlprt/mlprt, else build/ci/...)")
    ap.add_argument("--workdir", default=None, help="keep the ONNX model and plans here")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    args = ap.parse_args()
    if args.threads < 1 or args.repeats < 1 or args.duration <= 0:
        ap.error("--threads and --repeats must be >= 1 and --duration > 0")

    cli = find_mlprt(args.mlprt)
    mlprt = import_mlprt(cli)
    affinity = sorted(os.sched_getaffinity(0))
    notes = []
    if len(affinity) == os.cpu_count():
        notes.append("not pinned: run under taskset (e.g. taskset -c 2) for steadier numbers")
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        notes.append(f"1-minute load average {load_before:.2f} before the run: a busy machine")
    for n in notes:
        print(f"python_overhead: WARNING: {n}", flush=True)

    tmp = None
    if args.workdir:
        workdir = Path(args.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="mlprt_py_overhead_")
        workdir = Path(tmp.name)
    cpu_rows, gpu_rows, outs = {}, {}, {}
    gpu = {}
    try:
        model, onnx_path = make_model(workdir)
        print(f"CPU section (threads {args.threads}, affinity {affinity}):", flush=True)
        hardware = cpu_section(mlprt, cli, model, onnx_path, args, workdir, cpu_rows, outs)
        import torch
        if args.device == "cuda" and torch.cuda.is_available():
            print(f"GPU section ({torch.cuda.get_device_name()}):", flush=True)
            gpu_section(mlprt, cli, model, onnx_path, args, workdir, gpu_rows, outs)
            gpu = {"rows": gpu_rows}
        else:
            gpu = {"skipped": "--device cpu" if args.device == "cpu"
                   else "torch.cuda.is_available() is False"}
    finally:
        if tmp:
            tmp.cleanup()

    load_after = os.getloadavg()[0]
    targets, derived = derive(cpu_rows, gpu_rows)
    errors = {n: r["error"] for n, r in {**cpu_rows, **gpu_rows}.items() if "error" in r}
    diffs = accuracy(outs)
    notes += [f"{n}: output differs from torch's by {d:.2e}" for n, d in diffs.items() if d > 1e-4]
    infer = cpu_rows.get("py_infer_numpy") or {}
    if infer.get("us") and infer.get("p50_us") and infer["us"] > 1.3 * infer["p50_us"]:
        notes.append(f"py_infer_numpy: loop time per call {infer['us']:.2f} us is well above the "
                     f"per-call p50 {infer['p50_us']:.2f} us: interruptions (a busy or unpinned "
                     "machine) weigh on the loop numbers; rerun quiet and pinned")
    import torch
    date = datetime.date.today().isoformat()
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "host"
    result = {
        "benchmark": "python_overhead",
        "date": date,
        "command": shlex.join([sys.executable] + sys.argv),
        "pythonpath": os.environ.get("PYTHONPATH"),
        "device": {"host": socket.gethostname(), "cpu": cpu_model(), "cpus": os.cpu_count(),
                   "mlprt_hardware": hardware,
                   "affinity": affinity, "platform": platform.platform(),
                   "gpu": torch.cuda.get_device_name() if gpu.get("rows") else None},
        "versions": versions(mlprt, cli),
        "settings": {"model": "784-32-ReLU-10 fp32 (torch seed 0, ONNX opset 17, dynamic batch)",
                     "batch": BATCH, "profile": "min 1, opt 1, max 64", "threads": args.threads,
                     "duration_s": args.duration, "repeats": args.repeats,
                     "warmup_s": args.warmup},
        "load_average_1min": {"before": load_before, "after": load_after},
        "units": "every *_us number is microseconds per call",
        "cpu": {"rows": cpu_rows},
        "gpu": gpu,
        "targets": targets,
        "derived": derived,
        "max_abs_diff_vs_torch": diffs,
        "notes": notes,
        "errors": errors,
    }

    print(f"\n{'row':26s} {'us/call':>9s} {'p50':>9s} {'p99':>9s}  how")
    for key in ("cpu", "gpu"):
        for name, r in result[key].get("rows", {}).items():
            fmt = lambda v: f"{v:9.3f}" if v is not None else "        -"  # noqa: E731
            print(f"{name:26s} {fmt(r.get('us'))} {fmt(r.get('p50_us'))} {fmt(r.get('p99_us'))}"
                  f"  {r.get('how', r.get('error', ''))}")
    print("\nTargets:")
    for t in targets:
        verdict = "n/a " if t["pass"] is None else ("PASS" if t["pass"] else "MISS")
        value = "-" if t["value"] is None else f"{t['value']:.3f}"
        print(f"  {verdict} {t['name']:30s} {value:>8s}  (target {t['target']}; {t['what']})")
    for name, value in derived.items():
        if value is not None:
            print(f"       {name:30s} {value:8.3f}")

    out_dir = Path(args.out_dir)
    json_path = out_dir / f"python_overhead-{host}-{date}.json"
    text = json.dumps(result, indent=1) + "\n"
    write_atomic(json_path, lambda tmp: Path(tmp).write_text(text))
    png_path = json_path.with_suffix(".png")
    plot(result, png_path)
    print(f"\nWrote {json_path} and {png_path}")
    if errors:
        sys.exit(f"python_overhead: {len(errors)} row(s) failed: {', '.join(errors)}")


if __name__ == "__main__":
    main()
