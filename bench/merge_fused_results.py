#!/usr/bin/env python3
"""Merges one GPU run of the fused-MLP bench (bench/gpu_fused.sh): peers.py --json output(s),
mlprt_gpu_bench's JSON lines and tiny-cuda-nn's tcnn_bench JSON lines, into
bench/results/gpu-fused-DATE.json and a PNG (latency against batch per model, fp16).

    python3 bench/merge_fused_results.py PEERS.json[,PEERS2.json] MLPRT.jsonl TCNN.jsonl DATE COMMAND [BENCH.log]

BENCH.log (mlprt_gpu_bench's stderr) gives each row the engine's time with the fused kernel as
the builder timed it (`fused_tc_us`, chosen or not; the whole engine, one call per graph launch,
since the builder times candidate engines whole). Without tcnn_bench rows, tiny-cuda-nn's reference
figures of ../shared/bench/tinycudann/README.md (same H200) fill `tcnn_readme_us`.

tiny-cuda-nn runs batches rounded to a multiple of 256 (its granularity) and pads the tutorial
model's output to 16; its row is matched to ours by the batch it was asked for.
"""
import json
import os
import re
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

# The table (mlprt before the fused kernel, H200, fp16 device-resident CUDA graph).
BEFORE = {("tcnn", 1024): 20.0, ("tcnn", 65536): 40.3, ("tcnn", 1048576): 346.0,
          ("tcnn128", 65536): 51.2, ("tcnn128", 1048576): 620.0, ("mnist", 65536): 465.0,
          ("seed", 65536): 44.0}
# ../shared/bench/tinycudann/README.md: H200, CUDA 13.0, 2026-11-30, tcnn_fused_graph_us.
TCNN_README = {("tcnn", 1024): 8.0, ("tcnn", 65536): 16.3, ("tcnn", 1048576): 191.0,
               ("tcnn128", 65536): 65.0, ("tcnn128", 1048576): 677.4}
TARGET = {("tcnn", "fp16", 65536): 12.0, ("tcnn", "fp16", 1048576): 115.0,
          ("tcnn128", "fp16", 1048576): 450.0, ("seed", "fp16", 65536): 40.0,
          ("seed", "fp32", 65536): 83.0, ("mnist", "fp16", 65536): 400.0}
# The fp32 figure (cuBLASLt SGEMM layers before the fused kernel took fp32 engines).
BEFORE_FP32 = {("seed", 65536): 115.0}


def load_lines(path):
    rows = []
    if path and os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def main():
    peers_paths, ours_path, tcnn_path, date, command = sys.argv[1:6]
    fused_us, decisions = {}, []
    if len(sys.argv) > 6 and os.path.exists(sys.argv[6]):
        for line in open(sys.argv[6]):
            m = re.match(r"# (\S+) (\S+) (\d+):", line)
            t = re.search(r"fused tensor-core MLP[^|]*", line)
            if m and t:
                decisions.append(f"{m.group(1)} {m.group(2)} b={m.group(3)}: {t.group(0).strip()}")
                u = re.search(r"(chosen|not chosen), ([0-9.]+) us fused", t.group(0))
                if u:
                    fused_us[(m.group(1), m.group(2), int(m.group(3)))] = float(u.group(2))
    peers_rows, device, floor = [], None, None
    for path in peers_paths.split(","):
        if os.path.exists(path):
            p = json.load(open(path))
            peers_rows += p["rows"]
            device = device or p["device"]
            floor = floor or p.get("launch_floor_us")
    peers = {(r["model"], r["prec"], r["batch"]): r for r in peers_rows}
    tcnn_lines = load_lines(tcnn_path)
    tcnn_info = next((r for r in tcnn_lines if "device" in r), {})
    tcnn = {}
    for r in tcnn_lines:
        if "model" in r:
            tcnn[(r["model"], r.get("requested_batch", r.get("batch")))] = r
    rows = []
    for o in load_lines(ours_path):
        key = (o["model"], o["prec"], o["batch"])
        p = peers.get(key, {})
        t = tcnn.get((o["model"], o["batch"]), {}) if o["prec"] == "fp16" else {}
        row = {"model": o["model"], "prec": o["prec"], "batch": o["batch"],
               "mlprt_us": o["mlprt_us"], "mlprt_e2e_us": o["mlprt_e2e_us"],
               "fused_tc": o.get("fused_tc", False), "fused_layers": o.get("fused_layers", 0)}
        for k in ("torch_graph_us", "torch_graph_e2e_us", "torch_eager_us", "jax_jit_us", "floor_us"):
            if k in p:
                row[k] = p[k]
        for k in ("tcnn_fused_graph_us", "tcnn_fused_us", "batch"):
            if k in t:
                row["tcnn_batch" if k == "batch" else k] = t[k]
        if key in fused_us:
            row["fused_tc_us"] = fused_us[key]
        if not t and o["prec"] == "fp16" and (o["model"], o["batch"]) in TCNN_README:
            row["tcnn_readme_us"] = TCNN_README[(o["model"], o["batch"])]
        if (o["model"], o["batch"]) in BEFORE and o["prec"] == "fp16":
            row["mlprt_before_us"] = BEFORE[(o["model"], o["batch"])]
        if (o["model"], o["batch"]) in BEFORE_FP32 and o["prec"] == "fp32":
            row["mlprt_before_us"] = BEFORE_FP32[(o["model"], o["batch"])]
        if key in TARGET:
            row["target_us"] = TARGET[key]
            row["target_met"] = o["mlprt_us"] <= TARGET[key]
        if "tcnn_fused_graph_us" in row:
            row["vs_tcnn"] = o["mlprt_us"] / row["tcnn_fused_graph_us"]
        rows.append(row)
    out = {"device": device or tcnn_info.get("device"), "date": date, "command": command,
           "launch_floor_us": floor, "tiny_cuda_nn": tcnn_info or None,
           "tiny_cuda_nn_commit": "6ee3546bda615f51abe684ce9edefeb414689135" if tcnn_info else None,
           "fused_tc_decisions": decisions, "rows": rows}
    base = f"bench/results/gpu-fused-{date}"
    tmp = base + ".json.tmp"
    json.dump(out, open(tmp, "w"), indent=1)
    os.replace(tmp, base + ".json")
    models = sorted({r["model"] for r in rows if r["prec"] == "fp16"})
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4.2), squeeze=False)
    axes = axes[0]
    for ax, model in zip(axes, models):
        rs = sorted((r for r in rows if r["model"] == model and r["prec"] == "fp16"), key=lambda r: r["batch"])
        for key, color, label in (("mlprt_us", "C0", "mlprt (fused tactic)"),
                                  ("mlprt_before_us", "C0", "mlprt before (issue)"),
                                  ("fused_tc_us", "C2", "engine with our fused kernel (as the build timed it)"),
                                  ("tcnn_fused_graph_us", "C4", "tiny-cuda-nn fused"),
                                  ("tcnn_readme_us", "C4", "tiny-cuda-nn fused (its README, same H200)"),
                                  ("torch_graph_us", "C1", "torch CUDA graph"),
                                  ("jax_jit_us", "C3", "jax jit")):
            pts = [(r["batch"], r[key]) for r in rs if r.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts), ":" if "before" in key else "-", color=color, marker="o", ms=3, label=label)
        ax.set_xscale("log"); ax.set_yscale("log"); ax.set_title(f"{model} fp16 ({out['device']})", fontsize=9)
        ax.set_xlabel("batch"); ax.set_ylabel("latency (us, median)"); ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(base + ".png.tmp.png", dpi=110)
    os.replace(base + ".png.tmp.png", base + ".png")
    print(f"{'model':>8} {'prec':>5} {'batch':>8} {'fused':>5} {'mlprt':>9} {'before':>8} {'build':>9} {'tcnn':>9} {'torch.g':>9} {'jax':>9} {'target':>7}")
    f = lambda v: f"{v:9.2f}" if isinstance(v, (int, float)) else f"{'-':>9}"
    for r in rows:
        print(f"{r['model']:>8} {r['prec']:>5} {r['batch']:>8} {str(r['fused_tc'])[0]:>5} {f(r['mlprt_us'])} "
              f"{f(r.get('mlprt_before_us'))[1:]} {f(r.get('fused_tc_us'))} {f(r.get('tcnn_fused_graph_us', r.get('tcnn_readme_us')))} {f(r.get('torch_graph_us'))} "
              f"{f(r.get('jax_jit_us'))} {('met' if r.get('target_met') else 'MISS') if 'target_us' in r else '':>7}")


if __name__ == "__main__":
    main()
