"""A TensorRT 8.6-era build-and-run script, written from TensorRT's Python documentation.

It is a plain TensorRT script: the only line that differs is `import mlprt as trt`. It builds an
engine from an ONNX file with the binding-era API (EXPLICIT_BATCH network, builder.max_batch_size,
max_workspace_size beside the memory pool limit, one optimization profile for a dynamic input, a
timing cache kept in a file), writes the plan, loads it with a Runtime, and runs it through
execute_async_v2 and execute_v2 with a list of binding addresses.

    python3 trt8_build_run.py --onnx model.onnx --input x.npy --expect ref.npy --out y.npy \
        [--plan model.plan] [--timing-cache model.cache] [--buffers auto|host|cuda]

Buffers: TensorRT always takes device addresses. An mlprt engine built on a machine without a GPU
is a cpu engine and takes host addresses, so by default (`auto`) the buffers are numpy arrays
(addresses from arr.ctypes.data) when torch sees no CUDA device, and torch CUDA tensors otherwise.

Exit status: 0 when the output matches --expect (float64) within --tol relative L2, 1 otherwise.
"""

import argparse
import os
import sys

import numpy as np

import mlprt as trt  # the one line that differs from a TensorRT script: `import tensorrt as trt`

TRT_LOGGER = trt.Logger(trt.Logger.WARNING)
EXPLICIT_BATCH = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)

# Batch range of the one optimization profile that a dynamic-batch model gets.
PROFILE_BATCH = (1, 32, 64)


def GiB(n):
    return n * (1 << 30)


def rel_l2(actual, expected):
    expected = np.asarray(expected, dtype=np.float64)
    diff = np.asarray(actual, dtype=np.float64) - expected
    norm = np.linalg.norm(expected)
    return float(np.linalg.norm(diff) / (norm if norm > 0 else 1.0))


def load_timing_cache(config, path):
    """Creates the builder's timing cache from `path` when it exists, else an empty one."""
    blob = b""
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            blob = f.read()
    cache = config.create_timing_cache(blob)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        print(f"ERROR: the timing cache {path} was not accepted", file=sys.stderr)
        sys.exit(1)
    return cache


def build_engine(onnx_path, timing_cache_path):
    """Parses the ONNX file and returns the serialized engine (an IHostMemory)."""
    builder = trt.Builder(TRT_LOGGER)
    network = builder.create_network(EXPLICIT_BATCH)
    parser = trt.OnnxParser(network, TRT_LOGGER)
    # Ignored for explicit-batch networks since TensorRT 7, still set by many 8.x scripts.
    builder.max_batch_size = 64

    with open(onnx_path, "rb") as model:
        if not parser.parse(model.read()):
            print(f"ERROR: failed to parse the ONNX file {onnx_path}", file=sys.stderr)
            for i in range(parser.num_errors):
                print(parser.get_error(i), file=sys.stderr)
            return None

    config = builder.create_builder_config()
    config.max_workspace_size = GiB(1)  # deprecated in 8.4 in favour of the next line
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)

    inp = network.get_input(0)
    print(f"network input '{inp.name}' shape {tuple(inp.shape)} dtype {inp.dtype}")
    for i in range(network.num_outputs):
        out = network.get_output(i)
        print(f"network output '{out.name}' shape {tuple(out.shape)} dtype {out.dtype}")

    if any(d < 0 for d in inp.shape):
        features = tuple(inp.shape)[1:]
        lo, opt, hi = PROFILE_BATCH
        profile = builder.create_optimization_profile()
        profile.set_shape(inp.name, (lo, *features), (opt, *features), (hi, *features))
        config.add_optimization_profile(profile)

    cache = load_timing_cache(config, timing_cache_path)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        print("ERROR: build_serialized_network failed", file=sys.stderr)
        return None
    if timing_cache_path:
        with open(timing_cache_path, "wb") as f:
            f.write(cache.serialize())
    return plan


def allocate(shape, dtype, on_gpu):
    """One buffer and its address: a numpy array, or a torch CUDA tensor."""
    if on_gpu:
        import torch

        t = torch.empty(tuple(shape), dtype=getattr(torch, np.dtype(dtype).name), device="cuda")
        return t, t.data_ptr()
    a = np.empty(tuple(shape), dtype=dtype)
    return a, a.ctypes.data


def to_numpy(buf):
    return buf.cpu().numpy() if hasattr(buf, "cpu") else np.array(buf)


def run_engine(engine, x, on_gpu):
    """Runs one batch through execute_async_v2, then again through execute_v2."""
    context = engine.create_execution_context()
    assert context.active_optimization_profile == 0, context.active_optimization_profile

    bindings, buffers, output_index = [], [], None
    for i in range(engine.num_bindings):
        name = engine.get_binding_name(i)
        dtype = trt.nptype(engine.get_binding_dtype(i))
        if engine.binding_is_input(i):
            if -1 in tuple(engine.get_binding_shape(i)):
                context.set_binding_shape(i, x.shape)
            shape = tuple(context.get_binding_shape(i))
            assert shape == x.shape, f"input binding {name}: {shape} != {x.shape}"
            buf, ptr = allocate(shape, dtype, on_gpu)
            if on_gpu:
                import torch

                buf.copy_(torch.from_numpy(np.ascontiguousarray(x, dtype=dtype)))
            else:
                np.copyto(buf, x.astype(dtype))
        else:
            output_index = i
            shape = tuple(context.get_binding_shape(i))
            # Many 8.x scripts keep host outputs flat and reshape them after the copy back.
            buf, ptr = allocate((trt.volume(shape),), dtype, on_gpu)
        print(f"binding {i} '{name}' input={engine.binding_is_input(i)} shape {shape}")
        bindings.append(int(ptr))
        buffers.append(buf)
    if output_index is None:
        raise RuntimeError("the engine has no output binding")

    out_shape = tuple(context.get_binding_shape(output_index))
    if on_gpu:
        import torch

        stream = torch.cuda.Stream()
        ok = context.execute_async_v2(bindings=bindings, stream_handle=stream.cuda_stream)
        stream.synchronize()
    else:
        ok = context.execute_async_v2(bindings=bindings, stream_handle=0)
    if not ok:
        raise RuntimeError("execute_async_v2 returned False")
    y_async = to_numpy(buffers[output_index]).reshape(out_shape)

    # The synchronous twin writes into the same bindings.
    if on_gpu:
        buffers[output_index].zero_()
    else:
        buffers[output_index].fill(0)
    if not context.execute_v2(bindings):
        raise RuntimeError("execute_v2 returned False")
    y_sync = to_numpy(buffers[output_index]).reshape(out_shape)
    return y_async, y_sync


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--input", required=True, help=".npy input batch")
    ap.add_argument("--expect", required=True, help=".npy float64 reference output")
    ap.add_argument("--out", required=True, help=".npy file for the engine's output")
    ap.add_argument("--plan", default=None, help="where to write the plan (default: beside --out)")
    ap.add_argument("--timing-cache", default=None, help="timing cache file, read if present")
    ap.add_argument("--buffers", choices=["auto", "host", "cuda"], default="auto")
    ap.add_argument("--tol", type=float, default=1e-5, help="largest relative L2 error allowed")
    args = ap.parse_args()

    on_gpu = args.buffers == "cuda"
    if args.buffers == "auto":
        import torch

        on_gpu = torch.cuda.is_available()

    plan = build_engine(args.onnx, args.timing_cache)
    if plan is None:
        return 1
    plan_path = args.plan or os.path.splitext(args.out)[0] + ".plan"
    with open(plan_path, "wb") as f:
        f.write(plan)

    runtime = trt.Runtime(TRT_LOGGER)
    with open(plan_path, "rb") as f:
        engine = runtime.deserialize_cuda_engine(f.read())
    if engine is None:
        print("ERROR: deserialize_cuda_engine failed", file=sys.stderr)
        return 1

    x = np.load(args.input)
    expect = np.load(args.expect)
    y_async, y_sync = run_engine(engine, x, on_gpu)
    np.save(args.out, y_async)

    worst = 0.0
    for label, y in (("execute_async_v2", y_async), ("execute_v2", y_sync)):
        if y.shape != expect.shape:
            print(f"FAIL {label}: output shape {y.shape} != expected {expect.shape}")
            return 1
        err = rel_l2(y, expect)
        worst = max(worst, err)
        print(f"{label}: rel L2 {err:.3e} (tol {args.tol:.0e})")
    if not worst <= args.tol:
        print("FAIL: output differs from the reference")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
