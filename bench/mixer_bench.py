#!/usr/bin/env python3
"""One MLP-Mixer block (the paper's small model: tokens 196, channels 512, token MLP 256,
channel MLP 2048, + LayerNorm, mean over tokens and a 1000-class head), mlprt beside its peers
in one run, at batch 1, 64 and 1024 (issue 14).

    # CPU (here: 2 cores; batch 1024 is ~1 TFLOP per call, so give it explicitly):
    .venv/bin/python bench/mixer_bench.py --device cpu --batches 1 64 --threads 2
    # GPU machine (the pack from bench/pack_gpu.sh; see bench/gpu_mixer.sh):
    python3 bench/mixer_bench.py --device cuda --mlprt pkg/bin/mlprt --batches 1 64 1024

The model is built with torch (seed 0) from python/mlprt_tools/mixer_models.py and exported by
torch.onnx.export (TorchScript exporter, opset 17, dynamic batch; input "input", output
"output"). Per batch B, mlprt builds one plan for exactly [B, 196, 512] (`mlprt build
--shapes`), checks it once against torch's float64 output (`mlprt run`, rel L2 recorded), and
times it with `mlprt bench --exportTimes` (its median):
  * cuda: `--useCudaGraph --noDataTransfers`, the median GPU time per call (cuda events), beside
    torch's CUDA-graph replay of the same module (torch.cuda.graph, median of cuda events per
    replay) and torch eager; both in --precision (fp32: TF32 off on both sides; tf32: on; fp16 /
    bf16: mlprt --fp16 / --bf16, torch autocast-free .half() / .bfloat16() module and input);
  * cpu: the median host latency per call with --threads, beside ONNX Runtime (same ONNX,
    intra_op = threads, inter_op = 1) and torch eager (set_num_threads).
With --rounds R, mlprt's bench and its peers' timings alternate R times per row, and each
figure is the median of its R round medians (all rounds are kept in the JSON).
Target (the issue): mlprt at or under torch's CUDA-graph time on every GPU row. Writes
bench/results/mixer-DEVICE-HOST-DATE.json and .png with the device, date, command and every
peer's number.
"""
import argparse
import datetime
import inspect
import json
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(HERE))  # the GPU pack (bench/pack_gpu.sh) puts mlprt_tools beside us
from mlprt_tools.mixer_models import MixerBlock  # noqa: E402

TOKENS, CHANNELS, TOKEN_HIDDEN, CHANNEL_HIDDEN, CLASSES = 196, 512, 256, 2048, 1000
TOLERANCE = {"fp32": 1e-5, "tf32": 1e-3, "fp16": 2e-2, "bf16": 2e-2}


def make_model():
    torch.manual_seed(0)
    return MixerBlock(TOKENS, CHANNELS, TOKEN_HIDDEN, CHANNEL_HIDDEN, CLASSES).eval()


def export(model, path):
    kwargs = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # torch 2.x: the TorchScript exporter, as torch 1.13 here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(2, TOKENS, CHANNELS),), str(path),
                          input_names=["input"], output_names=["output"], opset_version=17,
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          do_constant_folding=True, **kwargs)


def run_cli(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return proc


def rel_l2(got, ref):
    got = np.asarray(got, np.float64)
    return float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30))


def precision_flags(precision):
    return [] if precision == "fp32" else [f"--{precision}"]


def mlprt_row(args, onnx, batch, x, ref, work):
    plan = work / f"mixer_b{batch}.plan"
    shape = f"input:{batch}x{TOKENS}x{CHANNELS}"
    build = [args.mlprt, "build", f"--onnx={onnx}", f"--saveEngine={plan}", f"--shapes={shape}",
             f"--backend={args.device}", *precision_flags(args.precision)]
    if args.device == "cpu":
        build.append(f"--threads={args.threads}")
    t0 = time.perf_counter()
    run_cli(build)
    build_s = time.perf_counter() - t0
    inspect_text = run_cli([args.mlprt, "inspect", f"--loadEngine={plan}"]).stdout
    xin, yout = work / "x.npy", work / "y.npy"
    np.save(xin, x)
    run_cli([args.mlprt, "run", f"--loadEngine={plan}", f"--loadInputs=input:{xin}",
             f"--exportOutput=output:{yout}"])
    error = rel_l2(np.load(yout), ref)
    times = work / "times.json"
    bench = [args.mlprt, "bench", f"--loadEngine={plan}", f"--shapes={shape}",
             f"--duration={args.duration}", f"--warmUp={int(args.warmup * 1000)}",
             f"--exportTimes={times}"]
    if args.device == "cuda":
        bench += ["--useCudaGraph", "--noDataTransfers"]
    else:
        bench.append(f"--threads={args.threads}")
    return {"rel_l2_vs_float64": error, "tolerance": TOLERANCE[args.precision],
            "build_s": build_s, "calls": 0,
            "layers": [line.strip() for line in inspect_text.splitlines()
                       if "MatMul" in line or "Dense" in line],
            "commands": [shlex.join(build), shlex.join(bench)]}, bench, times


def mlprt_time(args, bench, times):
    """One `mlprt bench` run: its median (GPU compute time on cuda, host latency on cpu), calls."""
    run_cli(bench)
    summary = json.loads(times.read_text())["summary"]
    times.unlink()
    us = summary["compute_us"]["median"] if args.device == "cuda" else summary["latency_us"]["median"]
    return us, summary["iterations"]


def median_events(fn, args):
    """Median of cuda-event times per call of fn() (GPU time), after --warmup seconds."""
    end = time.perf_counter() + args.warmup
    while time.perf_counter() < end:
        fn()
    torch.cuda.synchronize()
    samples = []
    end = time.perf_counter() + args.duration
    while time.perf_counter() < end or len(samples) < 10:
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        samples.append(start.elapsed_time(stop) * 1e3)
    return statistics.median(samples), len(samples)


def median_host(fn, args):
    end = time.perf_counter() + args.warmup
    while time.perf_counter() < end:
        fn()
    samples = []
    end = time.perf_counter() + args.duration
    while time.perf_counter() < end or len(samples) < 5:
        t0 = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t0) / 1e3)
    return statistics.median(samples), len(samples)


def torch_cuda_rows(model, x, args):
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(args.precision, torch.float32)
    torch.backends.cuda.matmul.allow_tf32 = args.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = args.precision == "tf32"
    m = model.to("cuda", dtype)
    static_x = torch.from_numpy(x).to("cuda", dtype)
    with torch.inference_mode():
        eager_us, eager_n = median_events(lambda: m(static_x), args)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                m(static_x)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_y = m(static_x)
        graph_us, graph_n = median_events(graph.replay, args)
        graph.replay()
        torch.cuda.synchronize()
        y = static_y.float().cpu().numpy()
    return ({"us": graph_us, "calls": graph_n,
             "how": "torch.cuda.graph capture of the module, median cuda-event time per replay"},
            {"us": eager_us, "calls": eager_n, "how": "torch eager, median cuda-event time"}, y)


def cpu_peer_rows(model, onnx, x, args):
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    # torch first: ONNX Runtime's intra-op threads spin after each run and would take the
    # cores from anything timed after them in this process.
    torch.set_num_threads(args.threads)
    tx = torch.from_numpy(x)
    with torch.inference_mode():
        torch_us, torch_n = median_host(lambda: model(tx), args)
    torch_row = {"us": torch_us, "calls": torch_n, "how": "torch eager on the CPU, median latency"}
    if ort is None:
        return {"us": float("nan"), "how": "onnxruntime is not installed here"}, torch_row
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
    ort_us, ort_n = median_host(lambda: session.run(None, {"input": x}), args)
    del session
    return ({"us": ort_us, "calls": ort_n, "version": ort.__version__,
             "how": "onnxruntime CPUExecutionProvider session.run, median host latency"},
            torch_row)


def device_name(device):
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_png(result, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no PNG")
        return
    rows = result["rows"]
    peers = [k for k in rows[0] if k.endswith("_us")]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(peers)
    for i, peer in enumerate(peers):
        ax.bar([j + i * width for j in range(len(rows))], [r[peer] for r in rows], width,
               label=peer[:-3])
    ax.set_xticks([j + width * (len(peers) - 1) / 2 for j in range(len(rows))])
    ax.set_xticklabels([f"batch {r['batch']}" for r in rows])
    ax.set_yscale("log")
    ax.set_ylabel("us per call (median, log)")
    ax.set_title(f"MLP-Mixer block ({result['precision']}) on {result['device']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), required=True)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--precision", choices=sorted(TOLERANCE), default="fp32")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--mlprt", default=str(ROOT / "build/ci/tools/mlprt/mlprt"))
    parser.add_argument("--duration", type=float, default=2.0, help="seconds timed per row/peer")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternating rounds of mlprt and the peers per row (medians of rounds)")
    parser.add_argument("--out-dir", default=str(HERE / "results"))
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("mixer_bench: --device cuda needs a GPU torch can see")
    model = make_model()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        onnx = work / "mixer.onnx"
        export(model, onnx)
        for batch in args.batches:
            rng = np.random.default_rng(batch)
            x = rng.standard_normal((batch, TOKENS, CHANNELS)).astype(np.float32)
            with torch.inference_mode():
                ref = model.double()(torch.from_numpy(x.astype(np.float64))).numpy()
            model.float()
            row = {"batch": batch}
            mine, bench, times = mlprt_row(args, onnx, batch, x, ref, work)
            # Rounds alternate mlprt and its peers, so that a slow spell of a shared machine
            # falls on both; each figure is the median of its rounds' medians.
            rounds = {"mlprt": [], "a": [], "b": []}
            for _ in range(args.rounds):
                us, calls = mlprt_time(args, bench, times)
                rounds["mlprt"].append(us)
                mine["calls"] += calls
                if args.device == "cuda":
                    graph, eager, y = torch_cuda_rows(make_model(), x, args)
                else:
                    graph, eager = cpu_peer_rows(model, onnx, x, args)
                rounds["a"].append(graph.pop("us"))
                rounds["b"].append(eager.pop("us"))
            mine["rounds_us"] = rounds["mlprt"]
            graph["rounds_us"], eager["rounds_us"] = rounds["a"], rounds["b"]
            row["mlprt_us"] = statistics.median(rounds["mlprt"])
            if args.device == "cuda":
                row["torch_cuda_graph_us"] = statistics.median(rounds["a"])
                row["torch_eager_us"] = statistics.median(rounds["b"])
                row["mlprt_over_torch_graph"] = row["mlprt_us"] / row["torch_cuda_graph_us"]
                row["at_or_under_torch_graph"] = row["mlprt_us"] <= row["torch_cuda_graph_us"]
                row["torch_rel_l2_vs_float64"] = rel_l2(y, ref)
                row["peers"] = {"torch_cuda_graph": graph, "torch_eager": eager}
            else:
                ort_row, torch_row = graph, eager
                row["ort_us"] = statistics.median(rounds["a"])
                row["torch_eager_us"] = statistics.median(rounds["b"])
                row["mlprt_over_ort"] = row["mlprt_us"] / row["ort_us"]
                row["peers"] = {"onnxruntime": ort_row, "torch_eager": torch_row}
            row["mlprt"] = mine
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k not in ("peers", "mlprt")}))
    date = datetime.date.today().isoformat()
    host = socket.gethostname().split(".")[0]
    result = {"benchmark": "mlp_mixer_block", "date": date, "device": device_name(args.device),
              "backend": args.device, "precision": args.precision,
              "threads": args.threads if args.device == "cpu" else None,
              "command": shlex.join([sys.executable, *sys.argv]), "host": host,
              "torch": torch.__version__, "python": platform.python_version(),
              "load_average_1_5_15": list(os.getloadavg()), "cpu_count": os.cpu_count(),
              "model": {"tokens": TOKENS, "channels": CHANNELS, "token_mlp": TOKEN_HIDDEN,
                        "channel_mlp": CHANNEL_HIDDEN, "classes": CLASSES, "opset": 17},
              "rows": rows}
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"mixer-{args.device}-{args.precision}-{date}"
    tmp_json = stem.with_suffix(".json.tmp")
    tmp_json.write_text(json.dumps(result, indent=1))
    tmp_json.replace(stem.with_suffix(".json"))
    write_png(result, stem.with_suffix(".png"))
    print(f"wrote {stem}.json and .png")
    bad = [r["batch"] for r in rows if r["mlprt"]["rel_l2_vs_float64"] > r["mlprt"]["tolerance"]]
    if bad:
        sys.exit(f"mixer_bench: mlprt outside the {args.precision} tolerance at batch {bad}")


if __name__ == "__main__":
    main()
