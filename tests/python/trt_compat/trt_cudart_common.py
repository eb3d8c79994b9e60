"""A GPU-only TensorRT script in the manner of the samples' common.py, with cuda-python's cudart.

It is a plain TensorRT script: the only line that differs is `import mlprt as trt`. Page-locked
host buffers come from cudaMallocHost and device buffers from cudaMalloc, both sized for the
largest shape of the profile; inputs go up and outputs come back with cudaMemcpyAsync on a stream
made by cudaStreamCreate, and execute_async_v3 is given that cudaStream_t object itself.

    python3 trt_cudart_common.py --onnx model.onnx --input x.npy --expect ref.npy --out y.npy

Exit status: 0 when the output matches --expect (float64) within --tol relative L2, 1 otherwise.
"""

import argparse
import ctypes
import sys

import numpy as np

try:
    from cuda.bindings import runtime as cudart  # cuda-python 12.6 and later
except ImportError:
    from cuda import cudart

import mlprt as trt  # the one line that differs from a TensorRT script: `import tensorrt as trt`

PROFILE_BATCH = (1, 32, 64)


def check(result):
    """cudart calls return (error, *values); raises on an error, returns the values."""
    err, values = result[0], result[1:]
    if err != cudart.cudaError_t.cudaSuccess:
        raise RuntimeError(f"CUDA runtime error: {err}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


class PinnedDeviceBuffer:
    """A page-locked host array and a device allocation of the same size."""

    def __init__(self, count, dtype):
        dtype = np.dtype(dtype)
        self.nbytes = count * dtype.itemsize
        host_ptr = check(cudart.cudaMallocHost(self.nbytes))
        c_type = np.ctypeslib.as_ctypes_type(dtype)
        self.host = np.ctypeslib.as_array(ctypes.cast(host_ptr, ctypes.POINTER(c_type)), (count,))
        self.device = check(cudart.cudaMalloc(self.nbytes))

    def to_device(self, stream, nbytes=None):
        check(cudart.cudaMemcpyAsync(self.device, self.host.ctypes.data, nbytes or self.nbytes,
                                     cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, stream))

    def to_host(self, stream, nbytes=None):
        check(cudart.cudaMemcpyAsync(self.host.ctypes.data, self.device, nbytes or self.nbytes,
                                     cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream))

    def free(self):
        check(cudart.cudaFree(self.device))
        check(cudart.cudaFreeHost(self.host.ctypes.data))


def rel_l2(actual, expected):
    expected = np.asarray(expected, dtype=np.float64)
    diff = np.asarray(actual, dtype=np.float64) - expected
    norm = np.linalg.norm(expected)
    return float(np.linalg.norm(diff) / (norm if norm > 0 else 1.0))


def build_engine(logger, onnx_path):
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        for i in range(parser.num_errors):
            print(parser.get_error(i), file=sys.stderr)
        return None
    config = builder.create_builder_config()
    config.clear_flag(trt.BuilderFlag.TF32)
    inp = network.get_input(0)
    if -1 in tuple(inp.shape):
        rest = tuple(inp.shape)[1:]
        profile = builder.create_optimization_profile()
        profile.set_shape(inp.name, *[(b, *rest) for b in PROFILE_BATCH])
        config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    runtime = trt.Runtime(logger)
    return runtime.deserialize_cuda_engine(plan)


def buffer_specs(engine, profile_index):
    """[shape, numpy dtype] per I/O tensor; a dynamic input gets the profile's largest shape."""
    buffers = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        shape = engine.get_tensor_shape(name)
        if -1 in tuple(shape):
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                shape = engine.get_tensor_profile_shape(name, profile_index)[-1]
            else:
                shape = None  # sized below, once the input's largest shape is known
        buffers[name] = [shape, trt.nptype(engine.get_tensor_dtype(name))]
    return buffers


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--expect", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tol", type=float, default=1e-5)
    args = ap.parse_args()

    logger = trt.Logger(trt.Logger.WARNING)
    engine = build_engine(logger, args.onnx)
    if engine is None:
        print("ERROR: could not build the engine", file=sys.stderr)
        return 1
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    in_name = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
    out_name = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)

    x = np.load(args.input)
    expect = np.load(args.expect)
    stream = check(cudart.cudaStreamCreate())
    context = engine.create_execution_context()

    # Size every buffer for the largest input the profile allows: set that shape, read the
    # output's, then set the shape of the batch at hand.
    specs = buffer_specs(engine, 0)
    dynamic = specs[out_name][0] is None
    if dynamic:
        context.set_optimization_profile_async(0, stream)
        context.set_input_shape(in_name, tuple(specs[in_name][0]))
        specs[out_name][0] = context.get_tensor_shape(out_name)
    mem = {name: PinnedDeviceBuffer(trt.volume(shape), dtype)
           for name, (shape, dtype) in specs.items()}
    try:
        if dynamic:
            context.set_input_shape(in_name, x.shape)
        x_dtype = specs[in_name][1]
        mem[in_name].host[:x.size] = x.astype(x_dtype).ravel()
        out_shape = tuple(context.get_tensor_shape(out_name))
        out_bytes = trt.volume(out_shape) * np.dtype(specs[out_name][1]).itemsize
        for name in names:
            context.set_tensor_address(name, int(mem[name].device))

        mem[in_name].to_device(stream, x.size * np.dtype(x_dtype).itemsize)
        if not context.execute_async_v3(stream):
            print("ERROR: execute_async_v3 returned False", file=sys.stderr)
            return 1
        mem[out_name].to_host(stream, out_bytes)
        check(cudart.cudaStreamSynchronize(stream))

        y = mem[out_name].host[:trt.volume(out_shape)].reshape(out_shape).copy()
    finally:
        for m in mem.values():
            m.free()
        check(cudart.cudaStreamDestroy(stream))

    np.save(args.out, y)
    if y.shape != expect.shape:
        print(f"FAIL: output shape {y.shape} != expected {expect.shape}")
        return 1
    err = rel_l2(y, expect)
    print(f"execute_async_v3 on a cudart stream: rel L2 {err:.3e} (tol {args.tol:.0e})")
    if not err <= args.tol:
        print("FAIL: output differs from the reference")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
