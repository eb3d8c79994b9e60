#!/usr/bin/env python3
"""The demo's last step, with mlprt's Python API: push the whole test set through the engines
at several batch sizes (one execution context, `context.infer` per batch of torch tensors), and
print accuracy beside PyTorch's, top-1 agreement on every image, and the latency per call. Exits
1 if any engine disagrees with PyTorch on any image's top-1.
"""
import argparse
import statistics
import sys
import time

import numpy as np
import torch

import mlprt
from mlprt_tools.model import load_model
from mlprt_tools.predict import accuracy, torch_logits


def run_engine(plan, images, batch):
    """Logits for every image, in calls of `batch` rows (the last may be smaller)."""
    with open(plan, "rb") as f:
        engine = mlprt.Runtime(mlprt.Logger()).deserialize_cuda_engine(f.read())
    context = engine.create_execution_context()
    x = torch.from_numpy(images)
    logits, times_us = [], []
    for start in range(0, len(images), batch):
        chunk = x[start:start + batch]
        t0 = time.perf_counter()
        out = context.infer({"input": chunk})["output"]
        times_us.append((time.perf_counter() - t0) * 1e6)
        logits.append(out.numpy())
    return np.concatenate(logits), len(times_us), statistics.mean(times_us), statistics.median(times_us)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pth", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--labels", required=True)
    parser.add_argument("--static-plan", required=True)
    parser.add_argument("--static-batch", type=int, required=True)
    parser.add_argument("--dynamic-plan", required=True)
    parser.add_argument("--batches", default="1,32,64,128,256")
    args = parser.parse_args()

    images = np.load(args.images)
    labels = np.load(args.labels)
    model, _ = load_model(args.pth)
    reference = torch_logits(model, images)
    torch_top1 = reference.argmax(1)
    print(f"\nPyTorch (float32, eager): test accuracy {100 * accuracy(reference, labels):.2f}% "
          f"on {len(labels)} images\n")

    runs = [("static", args.static_plan, args.static_batch)]
    runs += [("dynamic", args.dynamic_plan, int(b)) for b in args.batches.split(",")]
    header = (f"{'engine':<8} {'batch':>5} {'calls':>6} {'accuracy':>9} {'PyTorch':>8} "
              f"{'top-1 = PyTorch':>16} {'max |diff|':>11} {'mean us/call':>13} "
              f"{'median us/call':>15} {'us/image':>9}")
    print(header)
    print("-" * len(header))
    all_match = True
    for name, plan, batch in runs:
        count = len(images)
        logits, calls, mean_us, median_us = run_engine(plan, images, batch)
        same = int(np.sum(logits.argmax(1) == torch_top1))
        all_match &= same == count
        diff = float(np.max(np.abs(logits - reference)))
        print(f"{name:<8} {batch:>5} {calls:>6} {100 * accuracy(logits, labels):>8.2f}% "
              f"{100 * accuracy(reference, labels):>7.2f}% "
              f"{same:>7}/{count:<8} {diff:>11.2e} {mean_us:>13.1f} {median_us:>15.1f} "
              f"{median_us / batch:>9.3f}")
    print()
    if not all_match:
        sys.exit("demo: the engine's top-1 differs from PyTorch's on some images")
    print("demo: the engine's top-1 equals PyTorch's on every test image")


if __name__ == "__main__":
    main()
