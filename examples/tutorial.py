"""The classic TensorRT tutorial, run end to end with mlprt's Python package.

Train a small PyTorch MLP (784 -> 32 -> ReLU -> 10) on Fashion-MNIST, save a .pth, export ONNX
with a static batch (1) and a dynamic batch, build engines with TensorRT's Python names
(Logger, Builder, OnnxParser, optimization profiles, a timing cache kept in a file), save the
plans, load them with a Runtime, run the test set from torch tensors with `context.infer`, and
compare with PyTorch: accuracy, top-1 agreement, max abs diff, latency per batch size. The
TensorRT 10 low-level calls (set_input_shape, set_tensor_address, execute_async_v3) are shown
once as well.

    PYTHONPATH=python .venv/bin/python examples/tutorial.py                    # installed package
    PYTHONPATH=build/ci/python:python python3 examples/tutorial.py             # cpu, 2 epochs
    PYTHONPATH=build/ci/python:python python3 examples/tutorial.py --device cuda --fp16
    PYTHONPATH=build/ci/python:python python3 examples/tutorial.py --epochs 1 --limit 2000

Files go to --workdir (default work/tutorial): model.pth, model_static.onnx,
model_dynamic.onnx, static.plan, dynamic.plan, timing.cache.
Exit status: 0 when every engine output matches a float64 reference computed from the torch
weights (relative L2 <= 1e-5 in fp32, <= 2e-2 with --fp16), 1 otherwise or on an error.
"""

import argparse
import inspect
import json
import os
import sys
import time
import warnings

import numpy as np
import torch
from torch import nn

import mlprt
from mlprt_tools import data
from mlprt_tools.model import build_mlp, default_arch, save_checkpoint

INPUT, OUTPUT = "input", "output"  # the ONNX tensor names the engines are built and fed with
HIDDEN = 32
STATIC_BATCH = 1
PROFILES = [(1, 32, 64), (65, 128, 256)]  # (min, opt, max) batch of each optimization profile
BENCH_BATCHES = [1, 32, 64, 128, 256]
TOLERANCE = {"fp32": 1e-5, "fp16": 2e-2}  # relative L2 against float64
EVAL_BATCH = 256


def rel_l2(actual, expected):
    expected = np.asarray(expected, dtype=np.float64)
    diff = np.asarray(actual, dtype=np.float64) - expected
    norm = np.linalg.norm(expected)
    return float(np.linalg.norm(diff) / (norm if norm > 0 else 1.0))


def to_numpy(t):
    return t.detach().cpu().numpy()


def synchronize(device):
    if device == "cuda":
        torch.cuda.synchronize()


# ---------------------------------------------------------------------------------------------
# 1. Train


def train(model, train_x, train_y, epochs, batch_size, lr, seed):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    order_rng = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        model.train()
        started, total_loss = time.perf_counter(), 0.0
        order = torch.randperm(len(train_x), generator=order_rng).to(train_x.device)
        for start in range(0, len(train_x), batch_size):
            idx = order[start:start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(train_x[idx]), train_y[idx])
            loss.backward()
            optimizer.step()
            total_loss += float(loss) * len(idx)
        print(f"epoch {epoch}/{epochs}  loss {total_loss / len(train_x):.4f}  "
              f"{time.perf_counter() - started:.1f} s")
    model.eval()


@torch.no_grad()
def torch_logits(model, x):
    return torch.cat([model(x[i:i + EVAL_BATCH]) for i in range(0, len(x), EVAL_BATCH)])


def reference_float64(model, x):
    """The MLP's forward pass in float64 numpy from the torch weights (Flatten, Linear, ReLU,
    Linear): what every engine output is checked against."""
    w1, b1, w2, b2 = (p.detach().cpu().double().numpy() for p in
                      (model[1].weight, model[1].bias, model[3].weight, model[3].bias))
    hidden = np.maximum(np.asarray(x, dtype=np.float64) @ w1.T + b1, 0.0)
    return hidden @ w2.T + b2


# ---------------------------------------------------------------------------------------------
# 2. Export


def export_onnx(model, path, batch, dynamic):
    dummy = torch.zeros(batch, data.INPUT_SIZE, device=next(model.parameters()).device)
    dynamic_axes = {INPUT: {0: "batch"}, OUTPUT: {0: "batch"}} if dynamic else None
    kwargs = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # torch >= 2.9 defaults to the dynamo exporter; use the classic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, dummy, path, input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes=dynamic_axes, opset_version=13, **kwargs)
    print(f"wrote {path} ({'dynamic batch' if dynamic else f'static batch {batch}'})")


# ---------------------------------------------------------------------------------------------
# 3. Build (TensorRT's Python names)


def build_engine(logger, onnx_path, plan_path, cache_path, profiles, backend, fp16):
    """Parse, configure, build and save one plan; the timing cache is read from and written
    back to `cache_path`. Returns (seconds, cache entries before, cache entries after)."""
    builder = mlprt.Builder(logger)
    network = builder.create_network(1 << int(mlprt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = mlprt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        errors = "\n".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise SystemExit(f"tutorial: error: cannot parse {onnx_path}:\n{errors}")

    config = builder.create_builder_config()
    config.backend = backend  # mlprt's own setting: 'cpu', 'cuda' or 'auto'
    config.set_memory_pool_limit(mlprt.MemoryPoolType.WORKSPACE, 1 << 28)
    config.clear_flag(mlprt.BuilderFlag.TF32)  # on by default, as in TensorRT; fp32 means fp32
    if fp16:
        config.set_flag(mlprt.BuilderFlag.FP16)

    cache_bytes = b""
    if os.path.exists(cache_path):
        with open(cache_path, "rb") as f:
            cache_bytes = f.read()
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)

    for lo, opt, hi in profiles:  # none for a static model
        profile = builder.create_optimization_profile()
        profile.set_shape(INPUT, (lo, data.INPUT_SIZE), (opt, data.INPUT_SIZE),
                          (hi, data.INPUT_SIZE))
        config.add_optimization_profile(profile)

    started = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - started
    if plan is None:
        raise SystemExit(f"tutorial: error: building {onnx_path} failed")
    with open(plan_path, "wb") as f:
        f.write(plan)
    serialized = bytes(cache.serialize())  # an IHostMemory, as in TensorRT; the build added to it
    with open(cache_path, "wb") as f:
        f.write(serialized)
    return seconds, count_cache_entries(cache_bytes), count_cache_entries(serialized)


def count_cache_entries(cache_bytes):
    """mlprt's timing cache is JSON: {"entries": {tactic key: milliseconds}}."""
    return len(json.loads(cache_bytes)["entries"]) if cache_bytes else 0


def load_engine(logger, plan_path):
    with open(plan_path, "rb") as f, mlprt.Runtime(logger) as runtime:
        return runtime.deserialize_cuda_engine(f.read())


def describe(engine, label):
    print(f"{label}: backend {engine.backend}, precision {engine.precision}, "
          f"{engine.num_optimization_profiles} profile(s)")
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        mode = engine.get_tensor_mode(name)
        print(f"  {mode.name.lower():6} '{name}' shape {tuple(engine.get_tensor_shape(name))} "
              f"{engine.get_tensor_dtype(name).name}")
        if mode == mlprt.TensorIOMode.INPUT:
            for p in range(engine.num_optimization_profiles):
                lo, opt, hi = engine.get_tensor_profile_shape(name, p)
                print(f"    profile {p}: min {tuple(lo)} opt {tuple(opt)} max {tuple(hi)}")


# ---------------------------------------------------------------------------------------------
# 4. Run


class Checks:
    """Collects what failed, so every comparison is printed before the script exits 1."""

    def __init__(self):
        self.failures = []

    def expect(self, ok, message):
        if not ok:
            self.failures.append(message)
            print(f"FAIL: {message}")


def check_output(checks, label, out, x, rows):
    """infer() promises outputs shaped, of the input's kind and on its device."""
    checks.expect(isinstance(out, torch.Tensor),
                  f"{label}: infer returned {type(out).__name__} for a torch input")
    if isinstance(out, torch.Tensor):
        expected = (rows, data.NUM_CLASSES)
        checks.expect(tuple(out.shape) == expected,
                      f"{label}: output shape {tuple(out.shape)}, expected {expected}")
        checks.expect(out.device == x.device,
                      f"{label}: output on {out.device}, the input is on {x.device}")


def run_static(context, x, stream, checks):
    """The static engine takes one image at a time."""
    outs = []
    for i in range(len(x)):
        out = context.infer({INPUT: x[i:i + STATIC_BATCH]}, stream=stream)[OUTPUT]
        if i == 0:
            check_output(checks, "static engine", out, x, STATIC_BATCH)
        outs.append(out)
    return torch.cat(outs)


def run_dynamic(context, x, stream, checks):
    """The dynamic engine takes up to 256 images a call; infer picks the profile that holds the
    batch (the last, shorter batch falls in profile 0)."""
    outs = []
    for start in range(0, len(x), PROFILES[-1][2]):
        xb = x[start:start + PROFILES[-1][2]]
        out = context.infer({INPUT: xb}, stream=stream)[OUTPUT]
        check_output(checks, f"dynamic engine, batch {len(xb)}", out, x, len(xb))
        outs.append(out)
    return torch.cat(outs)


def run_low_level(engine, x, device):
    """TensorRT 10's way: pick the profile, set the input shape, bind the tensors' memory
    (device pointers for a cuda engine, host pointers for a cpu one), enqueue on a stream."""
    rows = len(x)
    profile = next(p for p in range(engine.num_optimization_profiles)
                   if engine.get_tensor_profile_shape(INPUT, p)[0][0] <= rows
                   <= engine.get_tensor_profile_shape(INPUT, p)[2][0])
    stream_handle = torch.cuda.current_stream().cuda_stream if device == "cuda" else 0
    context = engine.create_execution_context()
    context.set_optimization_profile_async(profile, stream_handle)
    context.set_input_shape(INPUT, tuple(x.shape))
    y = torch.empty(tuple(context.get_tensor_shape(OUTPUT)), dtype=torch.float32, device=x.device)
    context.set_tensor_address(INPUT, x.data_ptr())
    context.set_tensor_address(OUTPUT, y.data_ptr())
    if not context.execute_async_v3(stream_handle):
        raise SystemExit("tutorial: error: execute_async_v3 returned False")
    synchronize(device)
    return y, profile


def report_accuracy(label, logits, labels, torch_out, reference, tol, checks):
    pred = logits.argmax(dim=1)
    accuracy = float((pred == labels).float().mean())
    agree = int((pred == torch_out.argmax(dim=1)).sum())
    max_abs = float((logits.float() - torch_out).abs().max())
    err = rel_l2(to_numpy(logits), reference)
    print(f"accuracy  {label:14} {100 * accuracy:6.2f}%  top-1 agrees with PyTorch "
          f"{agree}/{len(labels)}  max abs diff {max_abs:.2e}  rel L2 vs float64 {err:.2e}")
    checks.expect(err <= tol, f"{label}: rel L2 {err:.2e} vs float64 exceeds {tol:.0e}")


# ---------------------------------------------------------------------------------------------
# 5. Latency


def time_call(call, device, min_seconds=0.2, min_iters=20):
    """Median seconds per call, after a warm-up; each call is waited for."""
    for _ in range(5):
        call()
    synchronize(device)
    times, spent = [], 0.0
    while len(times) < min_iters or spent < min_seconds:
        started = time.perf_counter()
        call()
        synchronize(device)
        times.append(time.perf_counter() - started)
        spent += times[-1]
    return float(np.median(times))


def report_latency(engine, model, x, device, stream):
    context = engine.create_execution_context()
    print(f"{'batch':>5}  {'mlprt (us)':>10}  {'PyTorch (us)':>12}  {'mlprt images/s':>14}")
    for batch in BENCH_BATCHES:
        xb = x[torch.arange(batch, device=x.device) % len(x)].contiguous()
        with torch.no_grad():
            t_torch = time_call(lambda: model(xb), device)
        t_mlprt = time_call(lambda: context.infer({INPUT: xb}, stream=stream), device)
        print(f"{batch:5}  {1e6 * t_mlprt:10.1f}  {1e6 * t_torch:12.1f}  {batch / t_mlprt:14.0f}")


# ---------------------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="use the first N training and N test images (quick runs)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="where torch and the engine run (default cpu)")
    parser.add_argument("--fp16", action="store_true", help="permit fp16 layers (BuilderFlag.FP16)")
    parser.add_argument("--workdir", default="work/tutorial")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-bench", action="store_true", help="skip the latency table")
    parser.add_argument("--verbose", action="store_true", help="mlprt's INFO messages")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be >= 1, got {args.limit}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA GPU")
    return args


def main(argv=None):
    args = parse_args(argv)
    device, precision = args.device, "fp16" if args.fp16 else "fp32"
    os.makedirs(args.workdir, exist_ok=True)
    path = {name: os.path.join(args.workdir, name) for name in
            ("model.pth", "model_static.onnx", "model_dynamic.onnx", "static.plan", "dynamic.plan",
             "timing.cache")}
    torch.manual_seed(args.seed)
    checks = Checks()

    print(f"== 1. Train the MLP on Fashion-MNIST ({device})")
    train_x, train_y = data.load_split("train", limit=args.limit)
    test_x, test_y = data.load_split("test", limit=args.limit)
    train_x, train_y = torch.from_numpy(train_x).to(device), torch.from_numpy(train_y).to(device)
    test_x, test_y = torch.from_numpy(test_x).to(device), torch.from_numpy(test_y).to(device)
    arch = default_arch([HIDDEN], "relu", data.INPUT_SIZE, data.NUM_CLASSES)
    model = build_mlp(arch).to(device)
    print(model)
    print(f"{len(train_x)} training images, {len(test_x)} test images, {args.epochs} epoch(s)")
    train(model, train_x, train_y, args.epochs, args.batch_size, args.lr, args.seed)
    torch_out = torch_logits(model, test_x)
    torch_accuracy = float((torch_out.argmax(dim=1) == test_y).float().mean())
    save_checkpoint(path["model.pth"], model, arch, data.DEFAULT_PREPROCESS,
                    {"epochs": args.epochs, "test_accuracy": torch_accuracy})
    print(f"saved {path['model.pth']}")

    print("\n== 2. Export ONNX")
    export_onnx(model, path["model_static.onnx"], STATIC_BATCH, dynamic=False)
    export_onnx(model, path["model_dynamic.onnx"], STATIC_BATCH, dynamic=True)

    print(f"\n== 3. Build engines (backend {device}, {precision})")
    logger = mlprt.Logger(mlprt.Logger.INFO if args.verbose else mlprt.Logger.WARNING)
    builds = [("static", path["model_static.onnx"], path["static.plan"], []),
              ("dynamic", path["model_dynamic.onnx"], path["dynamic.plan"], PROFILES),
              ("dynamic again", path["model_dynamic.onnx"], path["dynamic.plan"], PROFILES)]
    for label, onnx_path, plan_path, profiles in builds:
        seconds, before, after = build_engine(logger, onnx_path, plan_path, path["timing.cache"],
                                              profiles, device, args.fp16)
        print(f"built {plan_path} ({label}) in {seconds:.3f} s; timing cache {before} -> {after} "
              f"entries ({path['timing.cache']})")
    static_engine = load_engine(logger, path["static.plan"])
    dynamic_engine = load_engine(logger, path["dynamic.plan"])
    describe(static_engine, path["static.plan"])
    describe(dynamic_engine, path["dynamic.plan"])

    print(f"\n== 4. Run the test set ({len(test_x)} images, torch tensors on {device})")
    stream = torch.cuda.current_stream() if device == "cuda" else None
    tol = TOLERANCE[precision]
    reference = reference_float64(model, to_numpy(test_x))
    static_out = run_static(static_engine.create_execution_context(), test_x, stream, checks)
    dynamic_out = run_dynamic(dynamic_engine.create_execution_context(), test_x, stream, checks)
    synchronize(device)
    print(f"outputs: {type(dynamic_out).__name__} {tuple(dynamic_out.shape)} {dynamic_out.dtype} "
          f"on {dynamic_out.device}")
    print(f"accuracy  {'PyTorch':14} {100 * torch_accuracy:6.2f}%")
    report_accuracy("mlprt static", static_out, test_y, torch_out, reference, tol, checks)
    report_accuracy("mlprt dynamic", dynamic_out, test_y, torch_out, reference, tol, checks)
    first = int(static_out[0].argmax())
    print(f"test image 0: mlprt says '{data.CLASS_NAMES[first]}', "
          f"the label is '{data.CLASS_NAMES[int(test_y[0])]}'")

    print("\n== 5. The same through TensorRT 10's calls")
    rows = min(100, len(test_x))
    low_out, profile = run_low_level(dynamic_engine, test_x[:rows], device)
    err = rel_l2(to_numpy(low_out), reference[:rows])
    same_call = dynamic_engine.infer({INPUT: test_x[:rows]}, stream=stream)[OUTPUT]
    synchronize(device)
    same = torch.equal(low_out, same_call)
    print(f"set_input_shape({INPUT!r}, {(rows, data.INPUT_SIZE)}) in profile {profile}, "
          f"set_tensor_address(data_ptr()), execute_async_v3: output {tuple(low_out.shape)} on "
          f"{low_out.device}, rel L2 vs float64 {err:.2e}, "
          f"{'identical to' if same else 'differs from'} infer's")
    checks.expect(err <= tol, f"execute_async_v3: rel L2 {err:.2e} vs float64 exceeds {tol:.0e}")

    if not args.no_bench:
        print(f"\n== 6. Latency per batch ({path['dynamic.plan']}, median of each call waited for)")
        report_latency(dynamic_engine, model, test_x, device, stream)

    if checks.failures:
        print(f"\nFAIL: {len(checks.failures)} check(s) failed")
        return 1
    print(f"\nPASS: every engine output within rel L2 {tol:.0e} of the float64 reference")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (mlprt.Error, data.DatasetError) as e:
        print(f"tutorial: error: {e}", file=sys.stderr)
        sys.exit(1)
