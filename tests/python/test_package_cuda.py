"""The Python package on a cuda engine: torch CUDA tensors in and out without a host round
trip, zero-copy binding, streams, the caller's own CUDA graph, fp16, threads. Skipped (saying
so) on machines without a CUDA GPU; bench/gpu_python.sh runs them on the GPU machine."""

import threading

import numpy as np
import pytest
import torch

import mlprt
from conftest import IN, OUT, build_plan, rel_l2, requires_cuda

pytestmark = requires_cuda
FP32_TOL = 1e-5
FP16_TOL = 2e-2


@pytest.fixture(scope="module")
def cuda_engine(onnx_dynamic):
    plan = build_plan(onnx_dynamic, backend="cuda",
                      profiles=[((1, IN), (8, IN), (64, IN)), ((65, IN), (128, IN), (1024, IN))])
    engine = mlprt.Engine.load(plan)
    assert engine.backend == "cuda" and engine.device == 0
    return engine


def cuda_images(batch, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(batch, IN, generator=g).cuda()


@pytest.mark.parametrize("batch", [1, 8, 64, 65, 1024])
def test_torch_cuda_in_and_out(cuda_engine, reference, batch):
    x = cuda_images(batch, seed=batch)
    y = cuda_engine.create_execution_context().infer({"input": x})["output"]
    assert isinstance(y, torch.Tensor) and y.device == x.device and y.shape == (batch, OUT)
    torch.cuda.current_stream().synchronize()
    assert rel_l2(y.cpu().numpy(), reference(x.cpu().numpy())) <= FP32_TOL


def test_zero_copy_on_the_gpu(cuda_engine):
    context = cuda_engine.create_execution_context()
    x = cuda_images(16)
    y = torch.empty(16, OUT, device="cuda")
    out = context.infer({"input": x}, outputs={"output": y})
    assert out["output"] is y
    assert context.get_tensor_address("input") == x.data_ptr()
    assert context.get_tensor_address("output") == y.data_ptr()


def test_numpy_into_a_cuda_engine_comes_back_numpy(cuda_engine, reference):
    x = np.random.default_rng(1).standard_normal((33, IN)).astype(np.float32)
    y = cuda_engine.infer({"input": x})["output"]
    assert isinstance(y, np.ndarray)
    assert rel_l2(y, reference(x)) <= FP32_TOL


def test_on_a_side_stream(cuda_engine, reference):
    context = cuda_engine.create_execution_context()
    stream = torch.cuda.Stream()
    x = cuda_images(40, seed=3)
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        y = context.infer({"input": x}, stream=stream)["output"]
    stream.synchronize()
    assert rel_l2(y.cpu().numpy(), reference(x.cpu().numpy())) <= FP32_TOL
    z = context.infer({"input": x}, stream=stream.cuda_stream)["output"]  # a raw handle
    stream.synchronize()
    torch.testing.assert_close(y, z, rtol=0, atol=0)


def test_tensorrt_style_device_pointers(cuda_engine, reference):
    context = cuda_engine.create_execution_context()
    x = cuda_images(70, seed=4)
    y = torch.empty(70, OUT, device="cuda")
    context.set_optimization_profile_async(1, torch.cuda.current_stream().cuda_stream)
    context.set_input_shape("input", x.shape)
    context.set_tensor_address("input", x.data_ptr())
    context.set_tensor_address("output", y.data_ptr())
    assert context.execute_async_v3(torch.cuda.current_stream().cuda_stream)
    torch.cuda.current_stream().synchronize()
    assert rel_l2(y.cpu().numpy(), reference(x.cpu().numpy())) <= FP32_TOL


@pytest.mark.parametrize("engine_graphs", [False, True], ids=["launches", "engine-graph"])
def test_captured_in_the_callers_cuda_graph(cuda_engine, reference, engine_graphs):
    context = cuda_engine.create_execution_context()
    context.set_use_cuda_graph(engine_graphs)
    x = cuda_images(8, seed=5)
    y = torch.empty(8, OUT, device="cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        context.infer({"input": x}, outputs={"output": y})  # warm-up: buffers, kernels
    stream.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        context.infer({"input": x}, outputs={"output": y})
    fresh = cuda_images(8, seed=6)
    x.copy_(fresh)
    graph.replay()
    torch.cuda.synchronize()
    assert rel_l2(y.cpu().numpy(), reference(fresh.cpu().numpy())) <= FP32_TOL


def test_fp16_engine(onnx_dynamic, reference):
    plan = build_plan(onnx_dynamic, backend="cuda", flags=[mlprt.BuilderFlag.FP16])
    engine = mlprt.Engine.load(plan)
    x = cuda_images(32, seed=7)
    y = engine.infer({"input": x})["output"]
    torch.cuda.synchronize()
    assert rel_l2(y.float().cpu().numpy(), reference(x.cpu().numpy())) <= FP16_TOL


def test_eight_threads_on_one_cuda_engine(cuda_engine, reference):
    errors = []

    def work(seed):
        try:
            context = cuda_engine.create_execution_context()
            stream = torch.cuda.Stream()
            rng = np.random.default_rng(seed)
            with torch.cuda.stream(stream):
                for _ in range(40):
                    batch = int(rng.integers(1, 1025))
                    x = torch.from_numpy(rng.standard_normal((batch, IN)).astype(np.float32)).cuda()
                    y = context.infer({"input": x})["output"].cpu().numpy()
                    err = rel_l2(y, reference(x.cpu().numpy()))
                    if err > FP32_TOL:
                        errors.append((seed, batch, err))
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append((seed, repr(e)))
    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_tensor_on_another_gpu_is_refused(cuda_engine):
    x = torch.zeros(2, IN, device="cuda:1")
    with pytest.raises(mlprt.InvalidArgumentError, match="GPU 1"):
        cuda_engine.infer({"input": x})


def test_cuda_tensor_into_a_cpu_engine_is_refused(cpu_engine):
    with pytest.raises(mlprt.InvalidArgumentError, match="cpu backend"):
        cpu_engine.infer({"input": cuda_images(2)})


def test_cupy_in_cupy_out(cuda_engine, reference):
    cupy = pytest.importorskip("cupy", reason="cupy is not installed")
    x = cupy.asarray(cuda_images(12, seed=8).cpu().numpy())
    context = cuda_engine.create_execution_context()
    y = context.infer({"input": x})["output"]
    assert isinstance(y, cupy.ndarray) and y.shape == (12, OUT)
    assert context.get_tensor_address("input") == x.data.ptr
    cupy.cuda.get_current_stream().synchronize()
    assert rel_l2(cupy.asnumpy(y), reference(cupy.asnumpy(x))) <= FP32_TOL


class CudaArrayInterfaceOnly:
    """Exposes a torch CUDA tensor through __cuda_array_interface__ alone (as numba does)."""

    def __init__(self, tensor):
        self.tensor = tensor
        self.__cuda_array_interface__ = tensor.__cuda_array_interface__


def test_cuda_array_interface_input(cuda_engine, reference):
    x = cuda_images(6, seed=9)
    context = cuda_engine.create_execution_context()
    y = context.infer({"input": CudaArrayInterfaceOnly(x)})["output"]
    assert context.get_tensor_address("input") == x.data_ptr()
    assert isinstance(y, torch.Tensor) and y.is_cuda  # a GPU output needs a library: torch here
    torch.cuda.synchronize()
    assert rel_l2(y.cpu().numpy(), reference(x.cpu().numpy())) <= FP32_TOL


def test_device_memory_usage_counts_engine_and_context(onnx_dynamic):
    before = mlprt.device_memory_usage()["current_bytes"]
    engine = mlprt.Engine.load(build_plan(onnx_dynamic, backend="cuda"))
    loaded = mlprt.device_memory_usage()
    assert loaded["current_bytes"] >= before + engine.weight_bytes
    context = engine.create_execution_context()
    context.infer({"input": np.ones((4, IN), np.float32)})
    running = mlprt.device_memory_usage()
    assert running["current_bytes"] > loaded["current_bytes"]  # activations, workspace
    assert running["peak_bytes"] >= running["current_bytes"]
    del context, engine
    import gc
    gc.collect()
    assert mlprt.device_memory_usage()["current_bytes"] == before
