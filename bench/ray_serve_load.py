#!/usr/bin/env python3
"""Ray Serve under load: mlprt vs ONNX Runtime in the same deployment, in one run.

    PYTHONPATH=build/ci/python:python .venv/bin/python bench/ray_serve_load.py            # 30 s
    PYTHONPATH=build/ci/python:python .venv/bin/python bench/ray_serve_load.py --smoke    # 3 s

A local Ray cluster; one application per peer, each MlprtDeployment (python/package/mlprt/serve)
with the same HTTP, codec and @serve.batch merging (max batch 256 rows = the plan's largest
profile, max wait --max-wait-ms): runner mlprt (the plan, cpu or cuda) or ONNX Runtime
(bench/serve_ort_runner.py, the same ONNX file, intra-op threads = the plan's threads). For each
client count (1, 8, 64, 256) and each peer in turn: bench/serve_load_client.py processes
(aiohttp, closed loop, single-row .npy bodies) for --duration seconds: requests/s, p50/p99
latency, errors, the batches the replicas ran (from the answers' headers), every answered row
checked against float64. Writes bench/results/ray_serve_load-HOST-DATE.json and .png.
Target: at 64 clients mlprt >= 1.5x ORT's requests/s at equal or lower p99, zero errors.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import serve_common as sc


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--smoke", action="store_true", help="3 s per point")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64, 256])
    p.add_argument("--peers", nargs="+", default=["mlprt", "ort"], choices=["mlprt", "ort", "echo"],
                   help="echo: the same deployment with a runner that computes nothing (zeros), "
                        "the ceiling Ray Serve and the deployment's Python allow")
    p.add_argument("--backend", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--num-gpus", type=float, default=0.0, help="per replica (cuda: 1)")
    p.add_argument("--threads", type=int, default=1, help="engine / ORT intra-op threads")
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--replica-cpus", type=float, default=1.0)
    p.add_argument("--max-wait-ms", type=float, default=2.0)
    p.add_argument("--processes", type=int, default=2, help="load-generator processes")
    p.add_argument("--cluster-cpus", type=int, default=4, help="logical CPUs of the Ray node")
    p.add_argument("--tag", default=None, help="results file tag (default: host)")
    p.add_argument("--out-dir", default=str(sc.BENCH / "results"))
    args = p.parse_args()
    duration = 3.0 if args.smoke else args.duration

    import ray
    from ray import serve

    import mlprt.serve as mserve
    sc.cluster_env()
    work = Path(tempfile.mkdtemp(prefix="ray_serve_load-"))
    files = sc.make_model(work, backend=args.backend, threads=args.threads)
    result = sc.header("ray_serve_load", sys.argv)
    ray.init(address="local", num_cpus=args.cluster_cpus, include_dashboard=False,
             log_to_driver=False)
    port = sc.free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    device = "cuda" if args.backend == "cuda" else "cpu"
    runners = {
        "mlprt": ("mlprt.serve.runner:EngineRunner", {"plan": str(files["plan"])}),
        "ort": ("serve_ort_runner:OrtRunner", {"onnx": str(files["onnx"]),
                                               "threads": args.threads, "device": device}),
        "echo": ("serve_echo_runner:EchoRunner",
                 {"inputs": {"input": ("float32", (-1, sc.IN))},
                  "outputs": {"output": ("float32", (-1, sc.OUT))}}),
    }
    urls = {}
    for peer in args.peers:
        runner, kwargs = runners[peer]
        app = mserve.build_app(files["plan"], name=peer, runner=runner, runner_kwargs=kwargs,
                               num_replicas=args.replicas, num_cpus=args.replica_cpus,
                               num_gpus=0.0 if peer == "echo" else args.num_gpus,
                               max_wait_ms=args.max_wait_ms)
        mserve.deploy(app, name=peer, route_prefix=f"/{peer}")
        urls[peer] = f"http://127.0.0.1:{port}/{peer}"
    result["settings"] = {
        "duration_s": duration, "clients": args.clients, "backend": args.backend,
        "num_gpus_per_replica": args.num_gpus, "threads": args.threads,
        "replicas": args.replicas, "replica_cpus": args.replica_cpus,
        "max_wait_ms": args.max_wait_ms, "max_batch": 256, "load_processes": args.processes,
        "body": "one row, .npy (3264 bytes)", "model": "784-32-ReLU-10 fp32",
        "closed_loop": True}
    # Warm-up: each replica's first batches (page faults, oneDNN / ORT first runs).
    for peer, url in urls.items():
        sc.finish_load(sc.start_load(url, 8, 2.0, files, work, f"warm-{peer}", processes=1))
    points = []
    for clients in args.clients:
        for peer in args.peers:
            records = sc.finish_load(sc.start_load(
                urls[peer], clients, duration, files, work, f"{peer}-{clients}",
                processes=args.processes, check_every=10**9 if peer == "echo" else 1))
            summary = sc.summarize(records, duration)
            summary.update({"peer": peer, "clients": clients})
            points.append(summary)
            print(f"{peer:5s} clients={clients:3d}: {summary['requests_per_s']:8.1f} req/s  "
                  f"p50 {summary['p50_ms']:7.2f} ms  p99 {summary['p99_ms']:7.2f} ms  errors "
                  f"{summary['errors']}  mean batch {summary['mean_batch_rows']:.1f} rows  "
                  f"max rel L2 {summary['max_rel_l2']}", flush=True)
            time.sleep(1.0)
    result["points"] = points
    by = {(q["peer"], q["clients"]): q for q in points}
    if ("mlprt", 64) in by and ("ort", 64) in by:
        m, o = by[("mlprt", 64)], by[("ort", 64)]
        ratio = m["requests_per_s"] / o["requests_per_s"] if o["requests_per_s"] else None
        result["target_64_clients"] = {
            "mlprt_over_ort_requests_per_s": ratio, "mlprt_p99_ms": m["p99_ms"],
            "ort_p99_ms": o["p99_ms"], "mlprt_errors": m["errors"],
            "met": bool(ratio and ratio >= 1.5 and m["p99_ms"] <= o["p99_ms"]
                        and m["errors"] == 0)}
    result["load_average_1min_end"] = __import__("os").getloadavg()[0]
    serve.shutdown()
    ray.shutdown()
    tag = args.tag or result["device"]["host"]
    out = Path(args.out_dir) / f"ray_serve_load-{tag}-{result['date']}"
    sc.write_json(out.with_suffix(".json"), result)
    plot(points, args.peers, out.with_suffix(".png"), result)
    print(f"wrote {out}.json/.png")


def plot(points, peers, path, result):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for peer in peers:
        mine = [q for q in points if q["peer"] == peer]
        x = [q["clients"] for q in mine]
        axes[0].plot(x, [q["requests_per_s"] for q in mine], "o-", label=peer)
        axes[1].plot(x, [q["p99_ms"] for q in mine], "o-", label=f"{peer} p99")
        axes[1].plot(x, [q["p50_ms"] for q in mine], "x--", label=f"{peer} p50")
        axes[2].plot(x, [q["mean_batch_rows"] for q in mine], "o-", label=peer)
    for ax, title in zip(axes, ("requests/s", "latency (ms)", "mean rows per batch")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients")
        ax.set_title(title)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"Ray Serve, tutorial MLP, {result['settings']['backend']} "
                 f"({result['device']['cpu']}, {result['device']['cpus']} cpus"
                 f"{', ' + result['device']['gpu'] if result['device']['gpu'] else ''})",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
