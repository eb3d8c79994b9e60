#!/usr/bin/env python3
"""Split batch against the same rows run chunk by chunk by hand, in one run.

    PYTHONPATH=build/ci/python:python .venv/bin/python bench/split_batch.py               # cpu
    .venv/bin/python bench/split_batch.py --backend cuda                                  # GPU

The model: bench/models.py's MLP (--model, default mnist: 784 -> 1024 -> 1024 -> 10, ReLU),
fp32, built with mlprt's Python API with one profile min 1, opt = max = --max-batch (default
256: the chunks are that profile's max, so opt = max gives them tuned kernels). The input has
--factor (10) x max rows.
  * split: context.split_batch = True; set_input_shape(rows); the whole input and output bound
    once; one execute_async_v3 per iteration (the context runs the chunks).
  * by_hand: another context at shape (max, features); per iteration, for each chunk, the input
    and output addresses set at the chunk's offset and one execute_async_v3 (what a caller
    would write without split batch).
  * with --mlprt PATH (the CLI) also the C++ view: `mlprt bench --shapes=input:ROWSxF
    --splitBatch` against `mlprt bench --shapes=input:MAXxF` (one chunk per enqueue, no Python
    in the loop), rows/s from each run's throughput_qps x batch.
Both run from the same buffers, alternating rounds; each round times --iters iterations with
perf_counter_ns (cuda: one synchronize per round); rows/s is the median over --rounds rounds.
Target: split_rows_per_s >= 0.9 x by_hand_rows_per_s. Writes
bench/results/split_batch-DEVICE-DATE.json with the command, device, date and every round.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import models  # noqa: E402

import mlprt  # noqa: E402


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def build_engine(onnx_path, features, max_batch, backend, threads):
    logger = mlprt.Logger(mlprt.Logger.WARNING)
    builder = mlprt.Builder(logger)
    network = builder.create_network(1 << int(mlprt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = mlprt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(onnx_path))
    config = builder.create_builder_config()
    config.backend = backend
    config.clear_flag(mlprt.BuilderFlag.TF32)
    if threads:
        config.num_threads = threads
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, features), (max_batch, features), (max_batch, features))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    return mlprt.Runtime(logger).deserialize_cuda_engine(plan)


def cli_bench(args, engine, features, tmp):
    """rows/s of `mlprt bench` split (whole batch, --splitBatch) and per chunk, alternating."""
    import subprocess
    plan = Path(tmp) / "split.plan"
    plan.write_bytes(bytes(engine.serialize()))
    rows, chunk = args.factor * args.max_batch, args.max_batch
    out = {"split": [], "one_chunk_per_call": [], "commands": {}}
    for _ in range(3):
        for name, batch, extra in (("split", rows, ["--splitBatch"]),
                                   ("one_chunk_per_call", chunk, [])):
            times = Path(tmp) / f"{name}.json"
            cmd = [args.mlprt, "bench", f"--loadEngine={plan}", f"--shapes=input:{batch}x{features}",
                   "--warmUp=200", f"--duration={args.duration}", f"--exportTimes={times}", *extra]
            if args.threads:
                cmd.append(f"--threads={args.threads}")
            if args.backend == "cuda":
                cmd += ["--useCudaGraph", "--noDataTransfers"]
            subprocess.run(cmd, check=True, capture_output=True, text=True)
            summary = json.loads(times.read_text())["summary"]
            out[name].append(summary["throughput_qps"] * batch)
            out["commands"][name] = " ".join(str(c) for c in cmd)
    out["split_rows_per_s"] = statistics.median(out["split"])
    out["one_chunk_per_call_rows_per_s"] = statistics.median(out["one_chunk_per_call"])
    out["split_over_chunks"] = out["split_rows_per_s"] / out["one_chunk_per_call_rows_per_s"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mnist", choices=sorted(models.MODELS))
    ap.add_argument("--backend", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--max-batch", type=int, default=256)
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--out", default=None)
    ap.add_argument("--mlprt", default=None, help="the mlprt CLI, for the C++ comparison")
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per CLI bench run")
    args = ap.parse_args()

    dims, act = models.MODELS[args.model]
    features, out_features = dims[0], dims[-1]
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / f"{args.model}.onnx"
        models.make_mlp(onnx_path, dims, act)
        engine = build_engine(onnx_path, features, args.max_batch, args.backend, args.threads)
        cli = cli_bench(args, engine, features, tmp) if args.mlprt else None
    rows, chunk = args.factor * args.max_batch, args.max_batch
    x_host = np.random.default_rng(0).standard_normal((rows, features)).astype(np.float32)

    cuda = args.backend == "cuda"
    if cuda:
        import torch
        x = torch.from_numpy(x_host).cuda()
        y_split = torch.empty((rows, out_features), device="cuda")
        y_hand = torch.empty((rows, out_features), device="cuda")
        ptr = lambda t: t.data_ptr()  # noqa: E731
        stream = torch.cuda.current_stream().cuda_stream
        sync = torch.cuda.synchronize
        device = torch.cuda.get_device_name()
    else:
        x = x_host
        y_split = np.empty((rows, out_features), np.float32)
        y_hand = np.empty((rows, out_features), np.float32)
        ptr = lambda a: a.ctypes.data  # noqa: E731
        stream = 0
        sync = lambda: None  # noqa: E731
        device = cpu_name()
    in_row, out_row = features * 4, out_features * 4

    split = engine.create_execution_context()
    split.split_batch = True
    assert split.set_input_shape("input", (rows, features))
    split.set_tensor_address("input", ptr(x))
    split.set_tensor_address("output", ptr(y_split))
    hand = engine.create_execution_context()
    assert hand.set_input_shape("input", (chunk, features))

    def run_split():
        split.execute_async_v3(stream)

    def run_by_hand():
        for first in range(0, rows, chunk):
            hand.set_tensor_address("input", ptr(x) + first * in_row)
            hand.set_tensor_address("output", ptr(y_hand) + first * out_row)
            hand.execute_async_v3(stream)

    for fn in (run_split, run_by_hand):  # warm up (CUDA graphs captured here)
        for _ in range(3):
            fn()
    sync()
    y_a = y_split.cpu().numpy() if cuda else y_split
    y_b = y_hand.cpu().numpy() if cuda else y_hand
    max_diff = float(np.max(np.abs(y_a - y_b)))

    times = {"split": [], "by_hand": []}
    for _ in range(args.rounds):
        for name, fn in (("split", run_split), ("by_hand", run_by_hand)):
            sync()
            t0 = time.perf_counter_ns()
            for _ in range(args.iters):
                fn()
            sync()
            times[name].append((time.perf_counter_ns() - t0) / args.iters / 1e9)
    rate = {k: rows / statistics.median(v) for k, v in times.items()}
    ratio = rate["split"] / rate["by_hand"]
    result = {
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(), "device": device, "backend": args.backend,
        "threads": args.threads or os.environ.get("OMP_NUM_THREADS", "default"),
        "model": args.model, "dims": dims, "profile": [1, chunk, chunk],
        "rows": rows, "chunk_rows": chunk, "chunks": rows // chunk,
        "split_rows_per_s": rate["split"], "by_hand_rows_per_s": rate["by_hand"],
        "split_over_by_hand": ratio, "target": ">= 0.9", "pass": ratio >= 0.9,
        "max_abs_diff_split_vs_by_hand": max_diff,
        "round_seconds": times, "iters_per_round": args.iters,
        "cli": cli,
    }
    tag = "h200" if cuda and "H200" in device else ("gpu" if cuda else "cpu")
    out = Path(args.out) if args.out else (
        Path(__file__).parent / "results" /
        f"split_batch-{tag}-{datetime.date.today().isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(result, indent=2) + "\n")
    tmp_out.replace(out)
    print(f"{args.model} {args.backend} ({device}): {rows} rows = {rows // chunk} chunks of {chunk}: "
          f"split {rate['split']:.0f} rows/s, by hand {rate['by_hand']:.0f} rows/s, "
          f"ratio {ratio:.3f} (target >= 0.9); max |split - by hand| {max_diff:.2e} -> {out}")
    if cli:
        print(f"  mlprt bench: split {cli['split_rows_per_s']:.0f} rows/s, one chunk per call "
              f"{cli['one_chunk_per_call_rows_per_s']:.0f} rows/s, ratio {cli['split_over_chunks']:.3f}")
    return 0 if ratio >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
