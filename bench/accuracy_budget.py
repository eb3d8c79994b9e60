#!/usr/bin/env python3
"""Accuracy budget bench: per-layer precision chosen by `mlprt build --accuracyBudget`.

For each model (bench/models.py: mnist, wide) and budget (1e-2, 1e-3, 1e-4) it builds with
--accuracyBudget on calibration data (uniform [-1, 1], seed 1, the opt batch), then reports the
chosen mix (per layer), its relative L2 error against float64 on held-out inputs (seed 2) and its
median latency (mlprt bench; the median of interleaved rounds, every engine once per round)
against all-fp32 and all-fp16 (cuda) / all-bf16 (cpu) engines.

    python3 bench/accuracy_budget.py --backend=cpu                 # this machine's CPU (bf16)
    taskset -c 0,1 python3 bench/accuracy_budget.py --backend=cpu --threads=2 --label=xeon
    python3 bench/accuracy_budget.py --backend=cuda                # the GPU (fp16 + tf32)
    python3 bench/accuracy_budget.py --models=mnist --budgets=1e-2 --batch=64   # quick

Writes bench/results/accuracy_budget-<backend>[-label]-YYYY-MM-DD.json and .png with the device,
date and command.
"""
import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import MODELS, make_mlp  # noqa: E402


def find_mlprt(explicit):
    for c in [explicit, os.environ.get("MLPRT_BIN"), ROOT / "build/release/tools/mlprt/mlprt",
              ROOT / "build/ci/tools/mlprt/mlprt"]:
        if c and Path(c).is_file():
            return str(c)
    sys.exit("accuracy_budget: no mlprt binary found; pass --mlprt=PATH")


def run(cmd):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr}")
    return proc


def reference(onnx_path, activation, x):
    """float64 forward pass of a bench model (Gemm transB chain, activation between layers)."""
    inits = {i.name: numpy_helper.to_array(i).astype(np.float64)
             for i in onnx.load(str(onnx_path)).graph.initializer}
    y = x.astype(np.float64)
    n = len([k for k in inits if k.startswith("w")])
    for i in range(n):
        y = y @ inits[f"w{i}"].T + inits[f"b{i}"]
        if i < n - 1:
            if activation == "Relu":
                y = np.maximum(y, 0)
            else:  # Gelu (exact, erf)
                erf = np.vectorize(math.erf)
                y = 0.5 * y * (1.0 + erf(y / math.sqrt(2.0)))
    return y


def rel_l2(a, b):
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b))


def latency_us(mlprt, plan, batch, k, args, tmp):
    times = tmp / "times.json"
    run([mlprt, "bench", f"--loadEngine={plan}", f"--shapes=input:{batch}x{k}",
         f"--warmUp={args.warmup_ms}", f"--duration={args.duration}", "--iterations=20",
         f"--exportTimes={times}"])
    return json.loads(times.read_text())["summary"]["latency_us"]["median"]


def held_out_error(mlprt, plan, onnx_path, activation, x, tmp):
    np.save(tmp / "x.npy", x)
    run([mlprt, "run", f"--loadEngine={plan}", f"--loadInputs=input:{tmp / 'x.npy'}",
         f"--exportOutput=output:{tmp / 'y.npy'}"])
    return rel_l2(np.load(tmp / "y.npy"), reference(onnx_path, activation, x))


def layer_precisions(mlprt, plan):
    info = json.loads(run([mlprt, "inspect", f"--loadEngine={plan}", "--json"]).stdout)
    layers = {layer["name"]: layer["precision"].split(" ")[0] for layer in info["layers"]}
    return info, layers


def plot(rows, path, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    for ax, model in zip(axes[0], models):
        sel = [r for r in rows if r["model"] == model]
        labels = [r["engine"] for r in sel]
        speed = [sel[0]["latency_us"] / r["latency_us"] if r["latency_us"] else 0 for r in sel]
        bars = ax.bar(range(len(sel)), speed, color=["#888" if r["engine"].startswith("all-")
                                                     else "#3a7" for r in sel])
        for b, r in zip(bars, sel):
            ax.annotate(f"err {r['held_out_error']:.1e}", (b.get_x() + b.get_width() / 2,
                                                            b.get_height()),
                        ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(sel)), labels, rotation=20, fontsize=8)
        ax.set_ylabel("speed vs all-fp32 (x)")
        ax.set_title(model)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mlprt", default=None)
    ap.add_argument("--backend", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--models", default="mnist,wide")
    ap.add_argument("--budgets", default="1e-2,1e-3,1e-4")
    ap.add_argument("--batch", type=int, default=256, help="opt batch (calibration rows)")
    ap.add_argument("--held-out", type=int, default=256, help="held-out rows")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--warmup-ms", type=int, default=200)
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved speed rounds")
    ap.add_argument("--label", default="")
    ap.add_argument("--out", default=str(ROOT / "bench/results"))
    args = ap.parse_args()
    mlprt = find_mlprt(args.mlprt)
    low = "fp16" if args.backend == "cuda" else "bf16"
    flags = ["--fp16", "--tf32"] if args.backend == "cuda" else ["--bf16"]
    rows = []
    device = None
    date = datetime.date.today().isoformat()
    stem = f"accuracy_budget-{args.backend}{'-' + args.label if args.label else ''}-{date}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def save(complete):
        """Written after every row too, so that a run cut short keeps what it measured."""
        for r in rows:
            base = next((x for x in rows if x["model"] == r["model"] and x["engine"] == "all-fp32"),
                        None)
            low_row = next((x for x in rows if x["model"] == r["model"]
                            and x["engine"] == f"all-{low}"), None)
            r["speedup_vs_fp32"] = base["latency_us"] / r["latency_us"] if base else None
            r[f"speedup_vs_{low}"] = low_row["latency_us"] / r["latency_us"] if low_row else None
        result = {"device": device, "backend": args.backend, "date": date, "complete": complete,
                  "command": " ".join([sys.executable] + sys.argv),
                  "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
                  "batch": args.batch, "held_out_rows": args.held_out,
                  "metric": "relative L2 of the output against float64", "rows": rows}
        (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for model in args.models.split(","):
            dims, activation = MODELS[model]
            onnx_path = tmp / f"{model}.onnx"
            make_mlp(str(onnx_path), dims, activation)
            k = dims[0]
            calib = np.random.default_rng(1).uniform(-1, 1, (args.batch, k)).astype(np.float32)
            held = np.random.default_rng(2).uniform(-1, 1, (args.held_out, k)).astype(np.float32)
            np.save(tmp / "calib.npy", calib)
            cache = tmp / f"{model}.cache"
            common = [mlprt, "build", f"--backend={args.backend}", f"--onnx={onnx_path}",
                      "--minShapes=input:1x%d" % k, f"--optShapes=input:{args.batch}x{k}",
                      f"--maxShapes=input:{max(args.batch, args.held_out)}x{k}",
                      f"--threads={args.threads}", f"--timingCacheFile={cache}"]
            engines = [("all-fp32", []),
                       (f"all-{low}", flags + ["--precisionConstraints=obey",
                                               f"--layerPrecisions=*:{low}"])]
            engines += [(f"budget {b}", flags + [f"--accuracyBudget={b}",
                                                 f"--calibrationInputs={tmp / 'calib.npy'}"])
                        for b in args.budgets.split(",")]
            model_rows = []
            for i, (name, extra) in enumerate(engines):
                plan = tmp / f"{model}-{i}.plan"
                build = run(common + [f"--saveEngine={plan}"] + extra)
                info, layers = layer_precisions(mlprt, plan)
                device = device or info["hardware"]
                row = {"model": model, "engine": name, "layers": layers,
                       "held_out_error": held_out_error(mlprt, plan, onnx_path, activation,
                                                        held, tmp)}
                if "accuracy" in info:
                    acc = info["accuracy"]
                    row.update(budget=acc["budget"], calibration_error=acc["error"],
                               fp32_calibration_error=acc["fp32_error"],
                               per_layer={n: {"precision": v["precision"], "error": v["error"]}
                                          for n, v in acc["layers"].items()},
                               build_log=[line for line in (build.stdout + build.stderr).splitlines()
                                          if "accuracy budget" in line])
                    row["within_budget_held_out"] = row["held_out_error"] <= acc["budget"]
                model_rows.append((row, plan))
            # Speeds in interleaved rounds (every engine once per round), so that drift of the
            # machine over the run (clocks, neighbours) hits every engine alike.
            for _ in range(args.rounds):
                for row, plan in model_rows:
                    row.setdefault("latency_rounds_us", []).append(
                        latency_us(mlprt, plan, args.batch, k, args, tmp))
            for row, _ in model_rows:
                row["latency_us"] = float(np.median(row["latency_rounds_us"]))
                rows.append(row)
                print(f"{model:6s} {row['engine']:14s} {row['latency_us']:10.1f} us  held-out "
                      f"error {row['held_out_error']:.2e}  "
                      + " ".join(f"{n}:{p}" for n, p in row["layers"].items()), flush=True)
            save(False)
    save(True)
    plotted = plot(rows, out / f"{stem}.png", f"{device} ({date}): {args.backend}, batch "
                   f"{args.batch}; bars: speed vs all-fp32, labels: held-out error")
    print(f"wrote {out / (stem + '.json')}" + (" and .png" if plotted else ""))


if __name__ == "__main__":
    main()
