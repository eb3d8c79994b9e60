#!/usr/bin/env python3
"""Merges peers.py --json output with mlprt_gpu_bench's JSON lines into
bench/results/gpu-DATE.json and draws latency vs batch per model (PNG).

    python3 bench/merge_gpu_results.py PEERS.json MLPRT.jsonl DATE COMMAND
"""
import json, sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main():
    peers_path, ours_path, date, command = sys.argv[1:5]
    peers = json.load(open(peers_path))
    ours = {(r["model"], r["prec"], r["batch"]): r for r in map(json.loads, open(ours_path))}
    rows = []
    for p in peers["rows"]:
        o = ours.get((p["model"], p["prec"], p["batch"]))
        if o is None:
            continue
        row = {k: p.get(k) for k in ("model", "prec", "batch", "torch_graph_us", "torch_graph_e2e_us",
                                    "torch_eager_us", "jax_jit_us", "floor_us")}
        row["mlprt_us"] = o["mlprt_us"]
        row["mlprt_e2e_us"] = o["mlprt_e2e_us"]
        # JAX's default fp32 matmuls run on TF32: our tf32 build is the like-for-like number.
        tf32 = ours.get((p["model"], "tf32", p["batch"])) if p["prec"] == "fp32" else None
        if tf32 is not None:
            row["mlprt_tf32_us"] = tf32["mlprt_us"]
        rows.append(row)
    out = {"device": peers["device"], "date": date, "command": command,
           "launch_floor_us": peers.get("launch_floor_us"), "rows": rows}
    base = f"bench/results/gpu-{date}"
    json.dump(out, open(base + ".json", "w"), indent=1)
    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5))
    for ax, model in zip(axes, models):
        for prec, style in (("fp32", "-"), ("fp16", "--")):
            rs = sorted((r for r in rows if r["model"] == model and r["prec"] == prec), key=lambda r: r["batch"])
            b = [r["batch"] for r in rs]
            for key, color in (("mlprt_us", "C0"), ("torch_graph_us", "C1"), ("torch_eager_us", "C2"),
                               ("jax_jit_us", "C3"), ("floor_us", "k")):
                ax.plot(b, [r[key] for r in rs], style, color=color, marker="o", ms=3,
                        label=f"{key.replace('_us', '')} {prec}")
        rs = sorted((r for r in rows if r["model"] == model and "mlprt_tf32_us" in r), key=lambda r: r["batch"])
        if rs:
            ax.plot([r["batch"] for r in rs], [r["mlprt_tf32_us"] for r in rs], ":", color="C0", marker="x",
                    ms=4, label="mlprt tf32")
        ax.set_xscale("log"); ax.set_yscale("log"); ax.set_title(f"{model} ({out['device']})")
        ax.set_xlabel("batch"); ax.set_ylabel("latency (us, median)"); ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(base + ".png", dpi=110)
    print(f"{'model':>6} {'prec':>5} {'batch':>8} {'mlprt':>9} {'t.graph':>9} {'ratio':>6} {'e2e':>9} {'t.e2e':>9} {'ratio':>6} {'x floor':>8}")
    for r in rows:
        print(f"{r['model']:>6} {r['prec']:>5} {r['batch']:>8} {r['mlprt_us']:9.2f} {r['torch_graph_us']:9.2f} "
              f"{r['mlprt_us'] / r['torch_graph_us']:6.2f} {r['mlprt_e2e_us']:9.2f} {r['torch_graph_e2e_us']:9.2f} "
              f"{r['mlprt_e2e_us'] / r['torch_graph_e2e_us']:6.2f} {r['mlprt_us'] / r['floor_us']:8.1f}"
              + (f"  tf32 {r['mlprt_tf32_us']:9.2f} jax {r['jax_jit_us']:9.2f}" if "mlprt_tf32_us" in r else ""))


if __name__ == "__main__":
    main()
