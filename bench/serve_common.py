"""Shared by the Ray benchmarks (bench/ray_serve_*.py, bench/ray_data_score.py): the tutorial
model (784 -> 32 -> ReLU -> 10, torch seed 0, ONNX with a dynamic batch, a plan with profiles
1..64 and 65..256), a pool of rows with their float64 answers, the load generator's processes
(bench/serve_load_client.py) and the summary of what they recorded."""
import datetime
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
IN, HIDDEN, OUT = 784, 32, 10


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster_env():
    """PYTHONPATH for the cluster's workers: the package as this process sees it, and bench/."""
    import mlprt
    paths = [str(Path(mlprt.__file__).resolve().parent.parent), str(BENCH)]
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(":") if p]
    os.environ["PYTHONPATH"] = ":".join(dict.fromkeys(paths))
    return os.environ["PYTHONPATH"]


def make_model(workdir: Path, backend="cpu", threads=1, pool=1024):
    import torch

    import mlprt
    workdir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(IN, HIDDEN), torch.nn.ReLU(),
                                torch.nn.Linear(HIDDEN, OUT)).eval()
    onnx_path = workdir / "tutorial_dynamic.onnx"
    torch.onnx.export(model, torch.zeros(2, IN), str(onnx_path), input_names=["input"],
                      output_names=["output"], opset_version=17,
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      **({"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames
                         else {}))
    logger = mlprt.Logger(mlprt.Logger.WARNING)
    builder = mlprt.Builder(logger)
    network = builder.create_network(0)
    parser = mlprt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(onnx_path))
    config = builder.create_builder_config()
    config.backend = backend
    config.num_threads = threads
    config.clear_flag(mlprt.BuilderFlag.TF32)
    for lo, opt, hi in ((1, 8, 64), (65, 128, 256)):
        profile = builder.create_optimization_profile()
        profile.set_shape("input", (lo, IN), (opt, IN), (hi, IN))
        config.add_optimization_profile(profile)
    plan_path = workdir / f"tutorial_{backend}.plan"
    plan_path.write_bytes(bytes(builder.build_serialized_network(network, config)))
    rows = np.random.default_rng(1).standard_normal((pool, IN)).astype(np.float32)
    weights = [p.detach().double().numpy() for p in model.parameters()]
    hidden = np.maximum(rows.astype(np.float64) @ weights[0].T + weights[1], 0.0)
    reference = hidden @ weights[2].T + weights[3]
    np.save(workdir / "rows.npy", rows)
    np.save(workdir / "reference.npy", reference)
    return {"onnx": onnx_path, "plan": plan_path, "rows": workdir / "rows.npy",
            "reference": workdir / "reference.npy"}


def start_load(url, clients, duration, files, workdir: Path, tag, processes=2, check_every=1,
               timeout=30.0):
    """Starts the load processes (clients split among them); returns a handle for finish_load."""
    processes = max(1, min(processes, clients))
    share = [clients // processes + (i < clients % processes) for i in range(processes)]
    start_at = time.time() + 2.0
    running = []
    for i, n in enumerate(share):
        out = workdir / f"{tag}-client{i}.json"
        command = [sys.executable, str(BENCH / "serve_load_client.py"), "--url", url,
                   "--concurrency", str(n), "--duration", str(duration),
                   "--rows", str(files["rows"]), "--reference", str(files["reference"]),
                   "--out", str(out), "--seed", str(i), "--check-every", str(check_every),
                   "--timeout", str(timeout), "--start-at", str(start_at)]
        running.append((subprocess.Popen(command), out))
    return {"running": running, "start_at": start_at, "duration": duration, "clients": clients}


def finish_load(handle):
    records = []
    for process, out in handle["running"]:
        if process.wait() != 0:
            raise RuntimeError(f"load process {process.args} failed ({process.returncode})")
        records += json.loads(Path(out).read_text())
    return records


def summarize(records, duration, tolerance=1e-5):
    ok = [r for r in records if r.get("status") == 200]
    errors = {}
    for r in records:
        if r.get("status") != 200:
            kind = f"http {r['status']}" if r.get("status", -9) > 0 else r.get("error", "?")[:60]
            errors[kind] = errors.get(kind, 0) + 1
    latencies = np.array([r["latency_ms"] for r in ok]) if ok else np.array([np.nan])
    batches = {}
    for r in ok:
        replica, number, rows = r["batch"]
        batches[(replica, number)] = rows
    histogram = {}
    for rows in batches.values():
        histogram[rows] = histogram.get(rows, 0) + 1
    checked = [r["rel_l2"] for r in ok if "rel_l2" in r]
    nodes = {}
    for r in ok:
        nodes[r.get("node")] = nodes.get(r.get("node"), 0) + 1
    return {
        "requests": len(records), "answered": len(ok), "errors": sum(errors.values()),
        "error_kinds": errors, "requests_per_s": len(ok) / duration,
        "p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99)),
        "batches": len(batches),
        "mean_batch_rows": float(np.mean(list(batches.values()))) if batches else 0.0,
        "batch_rows_histogram": {str(k): v for k, v in sorted(histogram.items())},
        "rows_checked": len(checked), "max_rel_l2": max(checked) if checked else None,
        "wrong_rows": sum(1 for e in checked if not e <= tolerance),
        "replicas": len({r["batch"][0] for r in ok}), "answers_per_node": nodes,
    }


def describe_device():
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = None
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"host": platform.node(), "cpu": cpu, "cpus": os.cpu_count(), "gpu": gpu,
            "platform": platform.platform()}


def versions():
    import ray

    import mlprt
    out = {"mlprt": mlprt.__version__, "ray": ray.__version__, "python": platform.python_version(),
           "numpy": np.__version__}
    try:
        import onnxruntime
        out["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return out


def header(name, argv):
    return {"benchmark": name, "date": datetime.date.today().isoformat(),
            "command": " ".join([Path(sys.executable).name] + argv), "device": describe_device(),
            "versions": versions(), "load_average_1min": os.getloadavg()[0]}


def write_json(path: Path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    os.replace(tmp, path)
