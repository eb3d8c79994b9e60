"""A TensorRT 10-style build-and-run script, written from TensorRT's Python documentation.

It is a plain TensorRT script: the only line that differs is `import mlprt as trt`. It builds with
the name-based API (create_network(0), parse_from_file, two optimization profiles for a dynamic
batch), loads the plan with a Runtime, and runs it through set_input_shape / set_tensor_address /
execute_async_v3, switching profiles with set_optimization_profile_async. Shapes are given as a
tuple, a list and a torch.Size, as TensorRT accepts all three.

    python3 trt10_build_run.py --onnx model.onnx --input x.npy --expect ref.npy --out y.npy \
        [--plan model.plan] [--precision fp32|tf32|fp16] [--buffers auto|host|cuda] [--tol 1e-5]

Buffers: see trt8_build_run.py (host numpy arrays for a cpu engine, torch CUDA tensors otherwise).
Exit status: 0 when every run matches --expect (float64) within --tol relative L2, 1 otherwise.
"""

import argparse
import sys

import numpy as np
import torch

import mlprt as trt  # the one line that differs from a TensorRT script: `import tensorrt as trt`

# Batch ranges (min, opt, max) of the two profiles that a dynamic-batch model gets.
PROFILES = [(1, 8, 16), (17, 32, 64)]


def rel_l2(actual, expected):
    expected = np.asarray(expected, dtype=np.float64)
    diff = np.asarray(actual, dtype=np.float64) - expected
    norm = np.linalg.norm(expected)
    return float(np.linalg.norm(diff) / (norm if norm > 0 else 1.0))


def build_serialized(logger, onnx_path, precision):
    """Returns (plan, is_dynamic). The plan is an IHostMemory."""
    with trt.Builder(logger) as builder, builder.create_network(0) as network, \
            trt.OnnxParser(network, logger) as parser, builder.create_builder_config() as config:
        if not parser.parse_from_file(onnx_path):
            for i in range(parser.num_errors):
                print(parser.get_error(i), file=sys.stderr)
            raise SystemExit(f"ERROR: failed to parse {onnx_path}")

        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
        # TensorRT enables TF32 by default; a float32 reference at 1e-5 needs it off.
        if precision == "fp32":
            config.clear_flag(trt.BuilderFlag.TF32)
        elif precision == "tf32":
            config.set_flag(trt.BuilderFlag.TF32)
        elif precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)

        inp = network.get_input(0)
        print(f"input '{inp.name}' shape {tuple(inp.shape)} dtype {inp.dtype}")
        is_dynamic = any(d == -1 for d in inp.shape)
        if is_dynamic:
            rest = list(inp.shape)[1:]
            for lo, opt, hi in PROFILES:
                profile = builder.create_optimization_profile()
                profile.set_shape(inp.name, [lo] + rest, [opt] + rest, [hi] + rest)
                config.add_optimization_profile(profile)

        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise SystemExit("ERROR: build_serialized_network failed")
        return plan, is_dynamic


def load_engine(logger, plan_path):
    with open(plan_path, "rb") as f, trt.Runtime(logger) as runtime:
        return runtime.deserialize_cuda_engine(f.read())


def io_names(engine):
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
    return inputs, outputs


def profile_for(engine, name, batch):
    """The first profile whose batch range holds `batch`."""
    for p in range(engine.num_optimization_profiles):
        lo, _, hi = engine.get_tensor_profile_shape(name, p)
        if lo[0] <= batch <= hi[0]:
            return p
    raise SystemExit(f"ERROR: no profile holds batch {batch}")


class Buffers:
    """Host numpy arrays for a cpu engine, torch CUDA tensors for a cuda engine."""

    def __init__(self, on_gpu):
        self.on_gpu = on_gpu
        self.stream = torch.cuda.Stream() if on_gpu else None

    @property
    def handle(self):
        return self.stream.cuda_stream if self.on_gpu else 0

    def upload(self, x):
        if self.on_gpu:
            t = torch.from_numpy(np.ascontiguousarray(x)).cuda()
            return t, t.data_ptr()
        a = np.ascontiguousarray(x)
        return a, a.ctypes.data

    def empty(self, shape, dtype):
        if self.on_gpu:
            t = torch.empty(tuple(shape), dtype=getattr(torch, np.dtype(dtype).name), device="cuda")
            return t, t.data_ptr()
        a = np.empty(tuple(shape), dtype=dtype)
        return a, a.ctypes.data

    def synchronize(self):
        if self.on_gpu:
            self.stream.synchronize()

    def to_numpy(self, buf):
        return buf.cpu().numpy() if self.on_gpu else buf


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--expect", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--plan", default=None)
    ap.add_argument("--precision", choices=["fp32", "tf32", "fp16"], default="fp32")
    ap.add_argument("--buffers", choices=["auto", "host", "cuda"], default="auto")
    ap.add_argument("--tol", type=float, default=1e-5)
    args = ap.parse_args()
    on_gpu = torch.cuda.is_available() if args.buffers == "auto" else args.buffers == "cuda"

    logger = trt.Logger(trt.Logger.WARNING)
    plan, is_dynamic = build_serialized(logger, args.onnx, args.precision)
    plan_path = args.plan or args.out.rsplit(".", 1)[0] + ".plan"
    with open(plan_path, "wb") as f:
        f.write(plan)

    engine = load_engine(logger, plan_path)
    if engine is None:
        raise SystemExit("ERROR: deserialize_cuda_engine failed")
    inputs, outputs = io_names(engine)
    assert len(inputs) == 1 and len(outputs) == 1, (inputs, outputs)
    in_name, out_name = inputs[0], outputs[0]
    for name in inputs + outputs:
        shape = tuple(engine.get_tensor_shape(name))
        print(f"{engine.get_tensor_mode(name)} '{name}' shape {shape} "
              f"dtype {engine.get_tensor_dtype(name)}")
    in_dtype = trt.nptype(engine.get_tensor_dtype(in_name))
    out_dtype = trt.nptype(engine.get_tensor_dtype(out_name))
    if is_dynamic:
        assert engine.num_optimization_profiles == len(PROFILES), engine.num_optimization_profiles
        for p, (lo, opt, hi) in enumerate(PROFILES):
            shapes = [tuple(s)[0] for s in engine.get_tensor_profile_shape(in_name, p)]
            assert shapes == [lo, opt, hi], f"profile {p}: {shapes}"

    x = np.load(args.input).astype(in_dtype)
    expect = np.load(args.expect)
    batch, features = x.shape[0], tuple(x.shape[1:])

    # (rows, the shape as the caller spells it): a tuple, a list, a torch.Size.
    if is_dynamic:
        runs = [(batch, (batch, *features)),
                (batch - 1, [batch - 1, *features]),
                (min(batch, 5), torch.Size([min(batch, 5), *features]))]
    else:
        runs = [(batch, None)]

    buffers = Buffers(on_gpu)
    worst, profile = 0.0, None
    with engine.create_execution_context() as context:
        for rows, shape in runs:
            if is_dynamic:
                wanted = profile_for(engine, in_name, rows)
                if wanted != profile:
                    if not context.set_optimization_profile_async(wanted, buffers.handle):
                        raise SystemExit(f"ERROR: set_optimization_profile_async({wanted}) failed")
                    profile = wanted
                if not context.set_input_shape(in_name, shape):
                    raise SystemExit(f"ERROR: set_input_shape({in_name}, {shape}) failed")
            in_shape = tuple(context.get_tensor_shape(in_name))
            assert in_shape == (rows, *features), f"{in_shape} != {(rows, *features)}"
            out_shape = tuple(context.get_tensor_shape(out_name))
            assert trt.volume(out_shape) == rows * trt.volume(out_shape[1:]), out_shape

            x_buf, x_ptr = buffers.upload(x[:rows])
            y_buf, y_ptr = buffers.empty(out_shape, out_dtype)
            context.set_tensor_address(in_name, x_ptr)
            context.set_tensor_address(out_name, y_ptr)
            if not context.execute_async_v3(buffers.handle):
                raise SystemExit("ERROR: execute_async_v3 returned False")
            buffers.synchronize()
            y = buffers.to_numpy(y_buf)
            if rows == batch:
                np.save(args.out, y)

            if y.shape != expect[:rows].shape:
                print(f"FAIL rows={rows}: output shape {y.shape} != {expect[:rows].shape}")
                return 1
            err = rel_l2(y, expect[:rows])
            worst = max(worst, err)
            print(f"profile {profile} rows {rows} shape given as {type(shape).__name__}: "
                  f"rel L2 {err:.3e} (tol {args.tol:.0e})")

    if not worst <= args.tol:
        print("FAIL: output differs from the reference")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
