"""python -m mlprt.serve --plan model.plan [options]: serve a plan over HTTP on Ray Serve.

Starts a local Ray cluster (or joins --address), deploys mlprt.serve's deployment, prints the
URL and the engine's description, and serves until Ctrl-C (or exits at once with --detach,
leaving the application on the cluster). A plan that cannot be loaded fails the deployment:
the loader's message is printed and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m mlprt.serve", description=__doc__.split("\n")[0])
    p.add_argument("--plan", required=True, help="plan file (readable on every node)")
    p.add_argument("--replicas", type=int, default=1, help="replica count (default 1)")
    p.add_argument("--autoscale", metavar="MIN:MAX",
                   help="Ray Serve autoscaling between MIN and MAX replicas instead of --replicas")
    p.add_argument("--target-ongoing-requests", type=float, default=64,
                   help="autoscaling target per replica (default 64)")
    p.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per replica (default 1)")
    p.add_argument("--num-gpus", type=float, default=0.0,
                   help="GPUs per replica; a cuda plan needs > 0 (default 0)")
    p.add_argument("--max-batch", type=int, help="rows per merged batch (default: largest "
                   "profile's max batch)")
    p.add_argument("--max-wait-ms", type=float, default=2.0,
                   help="how long a batch waits for more requests (default 2 ms)")
    p.add_argument("--max-body-bytes", type=int, default=16 << 20,
                   help="larger request bodies get 413 (default 16 MiB)")
    p.add_argument("--max-ongoing-requests", type=int, default=512,
                   help="requests in flight per replica (default 512)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--route-prefix", default="/", help="URL path (default /)")
    p.add_argument("--name", default="mlprt", help="application name (default mlprt)")
    p.add_argument("--address", help="an existing Ray cluster (e.g. auto); default: start one")
    p.add_argument("--num-cpus-cluster", type=int,
                   help="CPUs of the local cluster this command starts (default: Ray's)")
    p.add_argument("--detach", action="store_true", help="deploy and exit (needs --address)")
    args = p.parse_args(argv)
    if args.detach and not args.address:
        p.error("--detach leaves the application on a cluster that outlives this command: "
                "give --address (start one with `ray start --head`)")
    if args.autoscale:
        try:
            lo, hi = (int(v) for v in args.autoscale.split(":"))
            if not 0 <= lo <= hi or hi < 1:
                raise ValueError
        except ValueError:
            p.error(f"--autoscale={args.autoscale}: expected MIN:MAX with 0 <= MIN <= MAX, "
                    "MAX >= 1")
        args.autoscale = (lo, hi)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import ray
    from ray import serve

    import mlprt.serve as mserve

    ray.init(address=args.address, num_cpus=args.num_cpus_cluster, include_dashboard=False)
    serve.start(http_options={"host": args.host, "port": args.port})
    autoscaling = None
    if args.autoscale:
        autoscaling = {"min_replicas": args.autoscale[0], "max_replicas": args.autoscale[1],
                       "target_ongoing_requests": args.target_ongoing_requests}
    app = mserve.build_app(args.plan, num_replicas=args.replicas, autoscaling_config=autoscaling,
                           num_cpus=args.num_cpus, num_gpus=args.num_gpus,
                           max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                           max_body_bytes=args.max_body_bytes,
                           max_ongoing_requests=args.max_ongoing_requests)
    try:
        mserve.deploy(app, name=args.name, route_prefix=args.route_prefix)
    except mserve.DeploymentFailed as e:
        print(f"mlprt.serve: error: {e}", file=sys.stderr)
        serve.shutdown()
        return 1
    url = f"http://{args.host}:{args.port}{args.route_prefix}"
    with urllib.request.urlopen(url, timeout=30) as answer:
        info = json.load(answer)
    print(f"mlprt.serve: serving {args.plan} at {url} (POST JSON or .npy; max batch "
          f"{info['max_batch']}, max wait {args.max_wait_ms} ms)")
    print(json.dumps(info["engine"]))
    sys.stdout.flush()
    if args.detach:
        return 0
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
