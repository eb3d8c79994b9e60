#!/usr/bin/env python3
"""Two worker nodes: a local Ray cluster of a head (0 CPUs: no replicas) and two worker nodes
started as separate `ray start` processes with their own resources; mlprt replicas on both.

    PYTHONPATH=build/ci/python:python .venv/bin/python bench/ray_serve_two_nodes.py [--smoke]

The deployment asks for 2 replicas, 1 CPU each, at most one per node (max_replicas_per_node),
so Ray must place one on each worker. Reports the placement (node of each replica from the
answers' x-mlprt-node, and each node's resources) and requests/s / p50 / p99 at --clients.
Every process runs on this one host (separate raylets and object stores, one loopback), so
it shows placement and the cross-node path, not more hardware. Writes
bench/results/ray_serve_two_nodes-HOST-DATE.json.
"""
import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import serve_common as sc


def ray_start(*args, log):
    """`ray start ... --block` as our own child process (stopped by its pid, never `ray stop`)."""
    ray = str(Path(sys.executable).parent / "ray")
    return subprocess.Popen([ray, "start", *args, "--block", "--disable-usage-stats"],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, env=os.environ)


def wait_for_nodes(address, want, timeout=90, connect=False):
    import ray
    deadline = time.time() + timeout
    while connect:
        try:
            ray.init(address=address, log_to_driver=False)
            break
        except ConnectionError:
            if time.time() > deadline:
                raise
            time.sleep(1)
    deadline = time.time() + timeout
    while time.time() < deadline:
        alive = sum(1 for n in ray.nodes() if n["Alive"])
        print(f"nodes alive: {alive} of {want}", flush=True)
        if alive >= want:
            return
        time.sleep(0.5)
    raise RuntimeError(f"only {sum(1 for n in ray.nodes() if n['Alive'])} of {want} nodes up: "
                       f"{[(n['NodeID'][:8], n['Alive'], n['Resources']) for n in ray.nodes()]}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--smoke", action="store_true", help="5 s")
    p.add_argument("--out-dir", default=str(sc.BENCH / "results"))
    p.add_argument("--tag")
    args = p.parse_args()
    duration = 5.0 if args.smoke else args.duration
    # One cluster token for the head, the workers and this driver (Ray 2.60 authenticates;
    # set before ray is imported: it reads them once).
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))
    sc.cluster_env()
    work = Path(tempfile.mkdtemp(prefix="ray_two_nodes-"))
    files = sc.make_model(work)
    result = sc.header("ray_serve_two_nodes", sys.argv)
    port = sc.free_port()
    import ray
    ip = ray.util.get_node_ip_address()  # the address Ray itself picks for this host
    address = f"{ip}:{port}"
    processes = [ray_start("--head", f"--port={port}",
                           "--num-cpus=0", "--include-dashboard=false", log=work / "head.log")]
    try:
        import ray
        from ray import serve

        import mlprt.serve as mserve
        wait_for_nodes(address, 1, connect=True)
        # One worker at a time: two raylets registering at once on a loaded 2-core host time
        # out ("The current node timed out during startup").
        for i, name in enumerate(("worker_a", "worker_b")):
            processes.append(ray_start(f"--address={address}", "--num-cpus=1",
                                       f"--resources={{\"{name}\": 1}}",
                                       log=work / f"{name}.log"))
            wait_for_nodes(address, 2 + i)
        nodes = [{"node_id": n["NodeID"], "alive": n["Alive"],
                  "resources": {k: v for k, v in n["Resources"].items()
                                if not k.startswith("node:") and "memory" not in k}}
                 for n in ray.nodes()]
        http_port = sc.free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": http_port, "location": "HeadOnly"})
        app = mserve.MlprtDeployment.options(
            name="mlprt", num_replicas=2, max_replicas_per_node=1, max_ongoing_requests=512,
            ray_actor_options={"num_cpus": 1}).bind(runner_kwargs={"plan": str(files["plan"])})
        mserve.deploy(app, name="mlprt", route_prefix="/mlprt")
        url = f"http://127.0.0.1:{http_port}/mlprt"
        sc.finish_load(sc.start_load(url, 8, 2.0, files, work, "warm", processes=1))
        records = sc.finish_load(sc.start_load(url, args.clients, duration, files, work, "load"))
        summary = sc.summarize(records, duration)
        names = {n["node_id"]: [k for k in n["resources"] if k.startswith("worker_")]
                 for n in nodes}
        summary["answers_per_node"] = {f"{k} {names.get(k, ['head'])}": v
                                       for k, v in summary["answers_per_node"].items()}
        result.update({
            "settings": {"duration_s": duration, "clients": args.clients, "replicas": 2,
                         "max_replicas_per_node": 1, "replica_cpus": 1, "threads": 1,
                         "nodes": "head --num-cpus=0; worker_a, worker_b --num-cpus=1 each, "
                                  "separate `ray start` processes on this host"},
            "nodes": nodes, "load": summary})
        print(f"two nodes: {summary['requests_per_s']:.1f} req/s p50 {summary['p50_ms']:.1f} ms "
              f"p99 {summary['p99_ms']:.1f} ms errors {summary['errors']} placement "
              f"{summary['answers_per_node']} wrong rows {summary['wrong_rows']}", flush=True)
        serve.shutdown()
        ray.shutdown()
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        # `ray start --head` records its address for later ray.init() calls; ours is gone.
        current = Path("/tmp/ray/ray_current_cluster")
        if current.exists() and current.read_text().strip() == address:
            current.unlink()
    tag = args.tag or result["device"]["host"]
    out = Path(args.out_dir) / f"ray_serve_two_nodes-{tag}-{result['date']}.json"
    sc.write_json(out, result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
