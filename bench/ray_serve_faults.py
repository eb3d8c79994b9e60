#!/usr/bin/env python3
"""Faults under load on Ray Serve: SIGKILL one mlprt replica mid-run, and (a separate run)
kill the serve controller so Ray restarts it. Counts every request (answered, errored, timed
out: nothing may go missing), the time to recover, and checks every answered row vs float64.

    PYTHONPATH=build/ci/python:python .venv/bin/python bench/ray_serve_faults.py [--smoke]

Two replicas (1 CPU each, engine threads 1), 16 clients (2 load processes) for --duration s;
the fault at --fault-at s. Recovery: replica fault: time from the kill until the deployment has
its 2 replicas RUNNING again (serve.status) and until the last error answer; controller fault:
time until serve.status() answers again and until the last error. Writes
bench/results/ray_serve_faults-HOST-DATE.json and .png (answers and errors per 0.5 s).
"""
import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import serve_common as sc


def replica_pids(url, want, timeout=60):
    import requests
    pids, deadline = {}, time.time() + timeout
    while len(pids) < want and time.time() < deadline:
        info = requests.get(url, timeout=10).json()
        pids[info["replica"]] = info["pid"]
    return pids


def running_replicas(app):
    from ray import serve
    status = serve.status().applications[app].deployments[app]
    return status.replica_states.get("RUNNING", 0)


def run_fault(kind, url, files, work, args):
    import ray
    from ray import serve
    handle = sc.start_load(url, args.clients, args.duration, files, work, f"fault-{kind}",
                           processes=2, timeout=args.timeout)
    time.sleep(max(0.0, handle["start_at"] - time.time()) + args.fault_at)
    event = {"kind": kind, "fault_time": time.time()}
    if kind == "replica_sigkill":
        pids = replica_pids(url, 2)
        victim, pid = sorted(pids.items())[0]
        event.update({"victim_replica": victim, "victim_pid": pid, "fault_time": time.time()})
        os.kill(pid, signal.SIGKILL)
        deadline = time.time() + args.duration
        seen_down = False
        while time.time() < deadline:
            n = running_replicas("mlprt")
            seen_down = seen_down or n < 2
            if seen_down and n >= 2:
                event["replicas_back_s"] = time.time() - event["fault_time"]
                break
            time.sleep(0.1)
    else:
        from ray._private import state as gcs_state  # the GCS actor table (no dashboard needed)

        def get_actor(actor_id):
            info = gcs_state.actors(actor_id)
            return info["State"], info["NumRestarts"]
        controller = ray.get_actor("SERVE_CONTROLLER_ACTOR", namespace="serve")
        actor_id = controller._actor_id.hex()  # noqa: SLF001
        restarts = get_actor(actor_id)[1]
        event["fault_time"] = time.time()
        ray.kill(controller, no_restart=False)
        deadline = time.time() + args.duration
        # Back: Ray has restarted the actor (its restart count went up, state ALIVE) and it
        # answers serve.status().
        while time.time() < deadline:
            state, now = get_actor(actor_id)
            if now > restarts and state == "ALIVE":
                try:
                    serve.status()
                    event["controller_back_s"] = time.time() - event["fault_time"]
                    event["controller_restarts"] = now - restarts
                    break
                except Exception:  # noqa: BLE001  (restarted but still recovering)
                    pass
            time.sleep(0.1)
    records = sc.finish_load(handle)
    summary = sc.summarize(records, args.duration)
    errors_at = [r["t"] for r in records if r.get("status") != 200]
    summary["last_error_after_fault_s"] = (max(errors_at) - event["fault_time"]) if errors_at \
        else None
    summary["lost_silently"] = 0  # every request sent has a record: answer, error or timeout
    t0 = min(r["t"] for r in records)
    bins = np.arange(0, args.duration + 1.0, 0.5)
    summary["timeline"] = {
        "bin_s": 0.5, "fault_at_s": event["fault_time"] - t0,
        "answered": np.histogram([r["t"] - t0 for r in records if r.get("status") == 200],
                                 bins)[0].tolist(),
        "errors": np.histogram([r["t"] - t0 for r in records if r.get("status") != 200],
                               bins)[0].tolist()}
    summary["event"] = event
    print(f"{kind}: {summary['answered']} answered, {summary['errors']} errors "
          f"{summary['error_kinds']}, wrong rows {summary['wrong_rows']} of "
          f"{summary['rows_checked']}, event {event}", flush=True)
    return summary


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=40.0)
    p.add_argument("--fault-at", type=float, default=10.0)
    p.add_argument("--smoke", action="store_true", help="15 s runs, fault at 5 s")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--timeout", type=float, default=30.0, help="client timeout per request")
    p.add_argument("--out-dir", default=str(sc.BENCH / "results"))
    p.add_argument("--tag")
    args = p.parse_args()
    if args.smoke:
        args.duration, args.fault_at = 15.0, 5.0
    import ray
    from ray import serve

    import mlprt.serve as mserve
    sc.cluster_env()
    work = Path(tempfile.mkdtemp(prefix="ray_serve_faults-"))
    files = sc.make_model(work)
    result = sc.header("ray_serve_faults", sys.argv)
    result["settings"] = {"duration_s": args.duration, "fault_at_s": args.fault_at,
                          "clients": args.clients, "replicas": 2, "replica_cpus": 1,
                          "threads": 1, "client_timeout_s": args.timeout,
                          "check": "every answered row vs float64, rel L2 <= 1e-5"}
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    port = sc.free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    mserve.deploy(mserve.build_app(files["plan"], num_replicas=2), name="mlprt",
                  route_prefix="/mlprt")
    url = f"http://127.0.0.1:{port}/mlprt"
    result["runs"] = []
    for kind in ("replica_sigkill", "controller_restart"):
        deadline = time.time() + 120
        while running_replicas("mlprt") < 2 and time.time() < deadline:
            time.sleep(0.5)
        result["runs"].append(run_fault(kind, url, files, work, args))
    serve.shutdown()
    ray.shutdown()
    tag = args.tag or result["device"]["host"]
    out = Path(args.out_dir) / f"ray_serve_faults-{tag}-{result['date']}"
    sc.write_json(out.with_suffix(".json"), result)
    plot(result, out.with_suffix(".png"))
    print(f"wrote {out}.json/.png")


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(result["runs"]), figsize=(12, 3.5))
    for ax, run in zip(np.atleast_1d(axes), result["runs"]):
        t = run["timeline"]
        x = np.arange(len(t["answered"])) * t["bin_s"]
        ax.bar(x, t["answered"], width=t["bin_s"], label="answered", align="edge")
        ax.bar(x, t["errors"], width=t["bin_s"], label="errors", color="r", align="edge")
        ax.axvline(t["fault_at_s"], color="k", ls="--", label="fault")
        ax.set_title(f"{run['event']['kind']}: {run['errors']} errors, "
                     f"{run['wrong_rows']} wrong rows", fontsize=9)
        ax.set_xlabel("s")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
