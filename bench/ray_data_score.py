#!/usr/bin/env python3
"""Offline scoring on Ray Data vs the engine alone, in one run.

    PYTHONPATH=build/ci/python:python .venv/bin/python bench/ray_data_score.py [--smoke]

--shards .npy shards of --rows-per-shard rows of the tutorial model's input (784 float32).
Engine alone: one process loads each shard, runs it through one execution context in the
largest profile's batches (256) and saves the output shard. Ray Data: mlprt.serve.offline.score
(read_numpy -> map_batches over --actors actors each holding an engine -> write_numpy), with 1
and 2 actors. Rows/s end to end (read + infer + write) for each, outputs checked vs float64.
Writes bench/results/ray_data_score-HOST-DATE.json and .png.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import serve_common as sc


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--rows-per-shard", type=int, default=25000)
    p.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    p.add_argument("--smoke", action="store_true", help="4 shards of 2000 rows")
    p.add_argument("--out-dir", default=str(sc.BENCH / "results"))
    p.add_argument("--tag")
    args = p.parse_args()
    if args.smoke:
        args.shards, args.rows_per_shard = 4, 2000
    import ray

    import mlprt
    from mlprt.serve.offline import score
    sc.cluster_env()
    work = Path(tempfile.mkdtemp(prefix="ray_data_score-"))
    files = sc.make_model(work)
    result = sc.header("ray_data_score", sys.argv)
    rng = np.random.default_rng(2)
    shards = []
    for i in range(args.shards):
        shards.append(work / f"shard{i:03d}.npy")
        np.save(shards[-1], rng.standard_normal((args.rows_per_shard, sc.IN)).astype(np.float32))
    total = args.shards * args.rows_per_shard
    onnx_weights = None

    def check(outputs, inputs):
        nonlocal onnx_weights
        if onnx_weights is None:
            import onnx
            from onnx import numpy_helper
            model = onnx.load(str(files["onnx"]))
            onnx_weights = [numpy_helper.to_array(t).astype(np.float64)
                            for t in model.graph.initializer]
        sample = slice(0, 2000)
        x = inputs[sample].astype(np.float64)
        w1, b1, w2, b2 = onnx_weights
        ref = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2
        return float(np.linalg.norm(outputs[sample] - ref) / np.linalg.norm(ref))

    # The engine alone.
    engine = mlprt.Engine.load_file(str(files["plan"]))
    context = engine.create_execution_context()
    alone_dir = work / "alone"
    alone_dir.mkdir()
    start = time.perf_counter()
    for path in shards:
        x = np.load(path)
        y = np.concatenate([context.infer({"input": x[i:i + 256]})["output"]
                            for i in range(0, len(x), 256)])
        np.save(alone_dir / path.name, y)
    seconds = time.perf_counter() - start
    runs = [{"how": "engine alone (1 process, 1 context, batches of 256)", "actors": 0,
             "seconds": seconds, "rows_per_s": total / seconds,
             "rel_l2_sample": check(np.load(alone_dir / shards[0].name), np.load(shards[0]))}]
    print(f"engine alone: {total / seconds:,.0f} rows/s", flush=True)
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    for actors in args.actors:
        out = work / f"ray{actors}"
        stats = score(files["plan"], shards, out, concurrency=actors)
        first = np.load(stats["files"][0])
        runs.append({"how": f"Ray Data map_batches, {actors} actor(s)", "actors": actors,
                     "seconds": stats["seconds"], "rows_per_s": stats["rows_per_s"],
                     "output_files": len(stats["files"]),
                     "rel_l2_sample": check(first, np.load(shards[0])[:len(first)])})
        print(f"ray data {actors} actors: {stats['rows_per_s']:,.0f} rows/s", flush=True)
    ray.shutdown()
    result["settings"] = {"shards": args.shards, "rows_per_shard": args.rows_per_shard,
                          "rows": total, "engine_threads": 1, "batch_rows": 256,
                          "includes": "read .npy + infer + write .npy; Ray Data's times include "
                                      "its actor start-up (one engine load per actor)"}
    result["runs"] = runs
    tag = args.tag or result["device"]["host"]
    path = Path(args.out_dir) / f"ray_data_score-{tag}-{result['date']}"
    sc.write_json(path.with_suffix(".json"), result)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.barh([r["how"] for r in runs], [r["rows_per_s"] for r in runs])
    ax.set_xlabel("rows/s (read + score + write)")
    ax.set_title(f"offline scoring, {total} rows, {result['device']['cpus']} cpus", fontsize=9)
    fig.tight_layout()
    fig.savefig(path.with_suffix(".png"), dpi=90)
    print(f"wrote {path}.json/.png")


if __name__ == "__main__":
    main()
