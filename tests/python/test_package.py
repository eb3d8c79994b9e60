"""The Python package on a cpu engine: the TensorRT-style build and run calls, infer on numpy
and torch, zero-copy binding, threads, the GIL, and every bad input getting an mlprt.Error."""

import gc
import threading
import time

import numpy as np
import pytest
import torch

import mlprt
from conftest import IN, OUT, build_plan, rel_l2

FP32_TOL = 1e-5


def images(batch, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, IN)).astype(np.float32)


# ---- build ----------------------------------------------------------------------------------

def test_network_reports_inputs_and_outputs(onnx_dynamic):
    logger = mlprt.Logger(mlprt.Logger.WARNING)
    network = mlprt.Builder(logger).create_network()
    assert network.num_inputs == 0
    parser = mlprt.OnnxParser(network, logger)
    assert parser.parse(onnx_dynamic.read_bytes())
    assert (network.num_inputs, network.num_outputs) == (1, 1)
    tensor = network.get_input(0)
    assert (tensor.name, tensor.shape, tensor.dtype) == ("input", (-1, IN), mlprt.float32)
    assert network.get_output(0).shape == (-1, OUT)
    with pytest.raises(mlprt.NotFoundError, match="out of range"):
        network.get_input(1)


def test_parser_records_errors_instead_of_raising(tmp_path):
    network = mlprt.Builder(mlprt.Logger()).create_network()
    parser = mlprt.OnnxParser(network, mlprt.Logger())
    assert not parser.parse(b"not an onnx model")
    assert parser.num_errors == 1
    assert "onnx" in parser.get_error(0).desc().lower()
    assert not parser.parse_from_file(str(tmp_path / "missing.onnx"))
    assert parser.num_errors == 2
    parser.clear_errors()
    assert parser.num_errors == 0
    with pytest.raises(mlprt.InvalidArgumentError, match="network is empty"):
        mlprt.Builder().build_serialized_network(network, mlprt.Builder().create_builder_config())


def test_plan_has_the_buffer_protocol_and_loads(onnx_dynamic, tmp_path):
    plan = build_plan(onnx_dynamic)
    path = tmp_path / "m.plan"
    with open(path, "wb") as f:
        f.write(plan)
    assert path.stat().st_size == plan.nbytes == len(bytes(plan)) == len(memoryview(plan))
    assert bytes(plan)[:8] == b"MLPRTPLN"
    engine = mlprt.Engine.load_file(str(path))
    assert bytes(engine.serialize()) == bytes(plan)
    assert engine.backend == "cpu" and engine.device == -1


def test_profiles_from_tuples_lists_and_torch_size(onnx_dynamic):
    plan = build_plan(onnx_dynamic, profiles=[([1, IN], torch.Size([4, IN]), (8, IN)),
                                              (torch.Size([9, IN]), [16, IN], (32, IN))])
    engine = mlprt.Runtime(mlprt.Logger()).deserialize_cuda_engine(plan)
    assert engine.num_optimization_profiles == 2
    assert engine.get_tensor_profile_shape("input", 1) == [(9, IN), (16, IN), (32, IN)]


def test_bad_profiles_raise(onnx_dynamic):
    with pytest.raises(mlprt.InvalidArgumentError, match="fixed to 784"):
        build_plan(onnx_dynamic, profiles=[((1, 10), (2, 10), (4, 10))])
    profile = mlprt.Builder().create_optimization_profile()
    with pytest.raises(mlprt.InvalidArgumentError, match="min"):
        profile.set_shape("input", (8, IN), (4, IN), (16, IN))
    with pytest.raises(mlprt.InvalidArgumentError, match="sequence of ints"):
        profile.set_shape("input", "1x784", (4, IN), (16, IN))


def test_timing_cache_round_trip_makes_identical_plans(onnx_dynamic):
    config = mlprt.Builder().create_builder_config()
    cache = config.create_timing_cache(b"")
    first = build_plan(onnx_dynamic, cache=cache)
    saved = bytes(cache.serialize())
    assert len(saved) > 0 and saved.startswith(b"{")
    warm = config.create_timing_cache(saved)
    second = build_plan(onnx_dynamic, cache=warm)
    assert bytes(first) == bytes(second)


def test_max_batch_size_is_ignored_with_a_warning():
    builder = mlprt.Builder(mlprt.Logger())
    with pytest.warns(UserWarning, match="max_batch_size is ignored"):
        builder.max_batch_size = 64


def test_memory_pool_limit_is_recorded():
    config = mlprt.Builder().create_builder_config()
    config.set_memory_pool_limit(mlprt.MemoryPoolType.WORKSPACE, 1 << 30)
    assert config.get_memory_pool_limit(mlprt.MemoryPoolType.WORKSPACE) == 1 << 30
    config.max_workspace_size = 1 << 20
    assert config.get_memory_pool_limit(mlprt.MemoryPoolType.WORKSPACE) == 1 << 20
    config.set_flag(mlprt.BuilderFlag.FP16)
    assert config.get_flag(mlprt.BuilderFlag.FP16)
    config.clear_flag(mlprt.BuilderFlag.FP16)
    assert not config.get_flag(mlprt.BuilderFlag.FP16)


def test_unsupported_requests_say_so(cpu_engine):
    config = mlprt.Builder().create_builder_config()
    for call in (lambda: config.set_flag(mlprt.BuilderFlag.INT8),
                 lambda: setattr(config, "int8_calibrator", object()),
                 lambda: mlprt.get_plugin_registry(),
                 lambda: mlprt.Builder().create_optimization_profile().set_shape_input("x", 1, 1, 1)):
        with pytest.raises(mlprt.UnsupportedError) as info:
            call()
        assert isinstance(info.value, NotImplementedError)
        assert info.value.code == "unsupported"


def test_logger_subclass_receives_messages(onnx_dynamic):
    class Collect(mlprt.ILogger):
        def __init__(self):
            mlprt.ILogger.__init__(self)
            self.min_severity = mlprt.Logger.INFO
            self.messages = []

        def log(self, severity, message):
            self.messages.append((severity, message))
    logger = Collect()
    try:
        build_plan(onnx_dynamic, logger=logger)
    finally:
        mlprt.Logger(mlprt.Logger.WARNING)  # back to stderr for the other tests
        mlprt.Builder(mlprt.Logger(mlprt.Logger.WARNING))
    assert logger.messages, "an INFO logger receives the build's messages"
    assert all(isinstance(s, mlprt.ILogger.Severity) for s, _ in logger.messages)


def test_build_releases_the_gil(onnx_dynamic):
    ticks = 0
    done = threading.Event()

    def count():
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.0005)
    counter = threading.Thread(target=count)
    counter.start()
    try:
        start = time.perf_counter()
        build_plan(onnx_dynamic, profiles=[((1, IN), (64, IN), (256, IN))])
        seconds = time.perf_counter() - start
    finally:
        done.set()
        counter.join()
    # With the GIL held for the whole build the counter could not run at all.
    assert ticks >= max(3, int(seconds / 0.0005 * 0.1)), (ticks, seconds)


# ---- run: TensorRT's calls --------------------------------------------------------------------

def test_engine_describes_its_tensors(cpu_engine):
    assert cpu_engine.num_io_tensors == 2
    names = [cpu_engine.get_tensor_name(i) for i in range(cpu_engine.num_io_tensors)]
    assert names == ["input", "output"]
    assert cpu_engine.get_tensor_mode("input") == mlprt.TensorIOMode.INPUT
    assert cpu_engine.get_tensor_mode("output") == mlprt.TensorIOMode.OUTPUT
    assert cpu_engine.get_tensor_mode("nope") == mlprt.TensorIOMode.NONE
    assert cpu_engine.get_tensor_shape("input") == (-1, IN)
    assert cpu_engine.get_tensor_dtype("output") == mlprt.float32
    assert mlprt.nptype(cpu_engine.get_tensor_dtype("output")) == np.float32
    assert mlprt.volume((3, IN)) == 3 * IN and mlprt.volume(torch.Size([2, 5])) == 10
    assert cpu_engine.num_bindings == 4
    assert cpu_engine.get_binding_name(3) == "output [profile 1]"


def test_execute_async_v3_on_host_pointers(cpu_engine, reference):
    context = cpu_engine.create_execution_context()
    x = images(70)
    assert context.set_optimization_profile_async(1, 0)
    assert context.set_input_shape("input", torch.Size(x.shape))
    assert context.get_tensor_shape("output") == (70, OUT)
    y = np.empty(mlprt.volume(context.get_tensor_shape("output")), dtype=np.float32)
    context.set_tensor_address("input", x.ctypes.data)
    context.set_tensor_address("output", y.ctypes.data)
    assert context.execute_async_v3(0)
    assert rel_l2(y.reshape(70, OUT), reference(x)) <= FP32_TOL


def test_execute_async_v2_with_bindings(cpu_engine, reference):
    context = cpu_engine.create_execution_context()
    context.active_optimization_profile = 0
    x = images(5)
    context.set_binding_shape(0, x.shape)
    assert context.all_binding_shapes_specified
    y = np.empty((5, OUT), np.float32)
    assert context.execute_async_v2(bindings=[x.ctypes.data, y.ctypes.data], stream_handle=0)
    assert rel_l2(y, reference(x)) <= FP32_TOL
    z = np.empty((5, OUT), np.float32)
    assert context.execute_v2([x.ctypes.data, z.ctypes.data])
    np.testing.assert_array_equal(y, z)


def test_shape_outside_the_profile_raises(cpu_engine):
    context = cpu_engine.create_execution_context()
    with pytest.raises(mlprt.ShapeError) as info:
        context.set_input_shape("input", (100, IN))  # profile 0 is 1..64
    assert isinstance(info.value, ValueError)
    assert "64" in str(info.value)


# ---- run: infer --------------------------------------------------------------------------------

@pytest.mark.parametrize("batch", [1, 7, 64, 65, 256])
def test_infer_numpy_matches_float64(cpu_engine, reference, batch):
    x = images(batch, seed=batch)
    out = cpu_engine.create_execution_context().infer({"input": x})
    assert set(out) == {"output"}
    y = out["output"]
    assert isinstance(y, np.ndarray) and y.shape == (batch, OUT) and y.dtype == np.float32
    assert rel_l2(y, reference(x)) <= FP32_TOL


def test_infer_torch_returns_torch(cpu_engine, reference):
    x = torch.from_numpy(images(9))
    y = cpu_engine.infer({"input": x})["output"]
    assert isinstance(y, torch.Tensor) and y.shape == (9, OUT) and y.device.type == "cpu"
    assert rel_l2(y.numpy(), reference(x.numpy())) <= FP32_TOL


def test_infer_binds_the_callers_memory(cpu_engine):
    context = cpu_engine.create_execution_context()
    x = images(4)
    context.infer({"input": x})
    assert context.get_tensor_address("input") == x.ctypes.data  # no copy of the input
    t = torch.from_numpy(images(3))
    context.infer({"input": t})
    assert context.get_tensor_address("input") == t.data_ptr()
    out = np.empty((4, OUT), np.float32)
    result = context.infer({"input": x}, outputs={"output": out})
    assert result["output"] is out
    assert context.get_tensor_address("output") == out.ctypes.data
    np.testing.assert_array_equal(out, context.infer({"input": x})["output"])


def test_infer_switches_profiles_by_shape(cpu_engine, reference):
    context = cpu_engine.create_execution_context()
    for batch in (3, 200, 3, 64, 65):
        x = images(batch, seed=batch)
        assert rel_l2(context.infer({"input": x})["output"], reference(x)) <= FP32_TOL
        assert context.active_optimization_profile == (0 if batch <= 64 else 1)


def test_noncontiguous_input_is_copied_with_a_warning(cpu_engine, reference):
    x = np.asfortranarray(images(6))
    with pytest.warns(UserWarning, match="not C-contiguous"):
        y = cpu_engine.infer({"input": x})["output"]
    assert rel_l2(y, reference(x)) <= FP32_TOL
    t = torch.from_numpy(images(IN)[:, :6].copy()).T  # a transposed view
    with pytest.warns(UserWarning, match="not C-contiguous"):
        y = cpu_engine.infer({"input": t})["output"]
    assert rel_l2(y.numpy(), reference(t.numpy())) <= FP32_TOL


class FakeCudaArray:
    """Says it lives in CUDA memory; mlprt must refuse it before touching the pointer."""

    def __init__(self, shape):
        self.__cuda_array_interface__ = {"shape": shape, "typestr": "<f4", "data": (1 << 40, False),
                                         "strides": None, "version": 3}


@pytest.mark.parametrize("feed, error, message", [
    ({"input": images(2).astype(np.float64)}, mlprt.InvalidArgumentError, "float64.*float32"),
    ({"input": torch.zeros(2, IN, dtype=torch.float16)}, mlprt.InvalidArgumentError, "float16"),
    ({"input": np.zeros((2, IN, 1), np.float32)}, mlprt.ShapeError, "outside every"),
    ({"input": np.zeros((2, 10), np.float32)}, mlprt.ShapeError, "outside every"),
    ({"input": np.zeros((300, IN), np.float32)}, mlprt.ShapeError, "max 256x784"),
    ({"inputs": images(2)}, mlprt.NotFoundError, "not an input.*'input'"),
    ({}, mlprt.InvalidArgumentError, "missing input"),
    ({"input": images(2), "extra": images(2)}, mlprt.NotFoundError, "'extra' is not an input"),
    ({"input": [[1.0] * IN]}, mlprt.InvalidArgumentError, "expected an array"),
    ({"input": FakeCudaArray((2, IN))}, mlprt.InvalidArgumentError, "cpu backend"),
])
def test_bad_feeds_raise_clear_errors(cpu_engine, feed, error, message):
    with pytest.raises(error, match=message):
        cpu_engine.create_execution_context().infer(feed)


def test_bad_outputs_raise(cpu_engine):
    context = cpu_engine.create_execution_context()
    x = images(2)
    with pytest.raises(mlprt.InvalidArgumentError, match="shape 3x10"):
        context.infer({"input": x}, outputs={"output": np.empty((3, OUT), np.float32)})
    with pytest.raises(mlprt.NotFoundError, match="not an output"):
        context.infer({"input": x}, outputs={"logits": np.empty((2, OUT), np.float32)})
    with pytest.raises(mlprt.InvalidArgumentError, match="feed must be a dict"):
        context.infer([x])


def test_bad_plans_raise_plan_error(cpu_engine, tmp_path):
    runtime = mlprt.Runtime(mlprt.Logger())
    plan = bytes(cpu_engine.serialize())
    for bad in (b"", b"not a plan at all", plan[: len(plan) // 2],
                plan[:100] + bytes([plan[100] ^ 0xFF]) + plan[101:]):
        with pytest.raises(mlprt.PlanError):
            runtime.deserialize_cuda_engine(bad)
    with pytest.raises(mlprt.InvalidArgumentError, match="buffer protocol"):
        runtime.deserialize_cuda_engine("model.plan")
    with pytest.raises(mlprt.IoError):
        mlprt.Engine.load_file(str(tmp_path / "missing.plan"))


def test_context_outlives_its_engine(onnx_dynamic, reference):
    engine = mlprt.Engine.load(build_plan(onnx_dynamic))
    context = engine.create_execution_context()
    del engine
    gc.collect()
    x = images(5)
    assert rel_l2(context.infer({"input": x})["output"], reference(x)) <= FP32_TOL
    assert context.engine.num_io_tensors == 2


def test_eight_threads_one_engine(cpu_engine, reference):
    errors = []

    def work(seed):
        try:
            context = cpu_engine.create_execution_context()
            rng = np.random.default_rng(seed)
            for _ in range(60):
                batch = int(rng.integers(1, 257))
                x = rng.standard_normal((batch, IN)).astype(np.float32)
                err = rel_l2(context.infer({"input": x})["output"], reference(x))
                if err > FP32_TOL:
                    errors.append((seed, batch, err))
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append((seed, repr(e)))
    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_engine_infer_from_threads_is_serialized(cpu_engine, reference):
    x = images(16)
    results = [None] * 8

    def work(i):
        results[i] = cpu_engine.infer({"input": x})["output"]
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for y in results:
        assert rel_l2(y, reference(x)) <= FP32_TOL


# ---- the package itself ------------------------------------------------------------------------

def test_help_and_stubs_document_the_api():
    import pathlib
    import pydoc
    text = pydoc.render_doc(mlprt.Builder, renderer=pydoc.plaintext)
    for name in ("build_serialized_network", "create_optimization_profile", "max_batch_size"):
        assert name in text
    doc = mlprt.IExecutionContext.infer.__doc__
    assert "ShapeError" in doc and "stream" in doc
    stub = pathlib.Path(mlprt._mlprt.__file__).with_name("_mlprt.pyi")
    assert stub.exists(), "nanobind's stubgen output ships beside the module"
    assert "def execute_async_v3" in stub.read_text()


def test_error_hierarchy():
    for name, builtin in (("ShapeError", ValueError), ("ModelError", ValueError),
                          ("PlanError", ValueError), ("UnsupportedError", NotImplementedError),
                          ("InvalidArgumentError", ValueError), ("NotFoundError", LookupError),
                          ("IoError", OSError)):
        cls = getattr(mlprt, name)
        assert issubclass(cls, mlprt.Error) and issubclass(cls, builtin)


def test_bad_model_raises_model_error(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x08\x07garbage")
    with pytest.raises(mlprt.ModelError):
        mlprt.Network.from_onnx_file(str(path))
    with pytest.raises(mlprt.ModelError):
        mlprt.Network.from_onnx_bytes(b"\x08\x07garbage", "bad")


def test_a_context_used_by_two_callers_at_once_is_refused(cpu_engine, reference):
    context = cpu_engine.create_execution_context()
    x = images(3)
    seen = []

    class Reentrant:
        """An array whose interface, when read by infer, calls infer on the same context (as a
        second thread could): the inner call must be refused, the outer one must finish."""

        @property
        def __cuda_array_interface__(self):
            try:
                context.infer({"input": x})
            except mlprt.InvalidArgumentError as e:
                seen.append(str(e))
            raise AttributeError("not an array")

    with pytest.raises(mlprt.InvalidArgumentError, match="expected an array"):
        context.infer({"input": Reentrant()})
    assert seen and "in use by another thread" in seen[0]
    assert rel_l2(context.infer({"input": x})["output"], reference(x)) <= FP32_TOL  # still usable
    del Reentrant  # a class lives in a reference cycle: free its closure's context now
    gc.collect()


LEAK_SCRIPT = """
import numpy as np, mlprt, sys
engine = mlprt.Engine.load_file(sys.argv[1])
context = engine.create_execution_context()
x = np.zeros((2, 784), np.float32)
context.infer({"input": x})
engine.infer({"input": x})
class NotAnArray:
    @property
    def __cuda_array_interface__(self):
        raise AttributeError("no")
for bad in ({"input": NotAnArray()}, {"input": x.astype(np.float64)}, {"nope": x}, {}):
    try:
        context.infer(bad)
    except mlprt.Error:
        pass
"""


def test_no_python_object_outlives_the_interpreter(cpu_engine, tmp_path):
    """nanobind reports instances still alive at exit: every path above, errors included, must
    release what it references (a cached user class once kept its whole module alive)."""
    import subprocess
    import sys
    plan = tmp_path / "m.plan"
    plan.write_bytes(bytes(cpu_engine.serialize()))
    proc = subprocess.run([sys.executable, "-c", LEAK_SCRIPT, str(plan)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "leaked" not in proc.stderr, proc.stderr


def test_infer_recovers_after_a_refused_shape(cpu_engine, reference):
    context = cpu_engine.create_execution_context()
    small, large = images(3), images(100)
    context.infer({"input": small})
    with pytest.raises(mlprt.ShapeError):
        context.infer({"input": np.zeros((300, IN), np.float32)})
    for x in (small, large, small):  # both profiles, after the refusal
        assert rel_l2(context.infer({"input": x})["output"], reference(x)) <= FP32_TOL


def test_weight_bytes_and_no_device_memory_for_cpu_engines(onnx_dynamic):
    before = mlprt.device_memory_usage()
    assert set(before) == {"current_bytes", "peak_bytes"}
    engine = mlprt.Engine.load(build_plan(onnx_dynamic))
    # The fixture's MLP: IN x 32 + 32 + 32 x OUT + OUT fp32 weights.
    assert engine.weight_bytes == 4 * (IN * 32 + 32 + 32 * OUT + OUT)
    engine.infer({"input": np.ones((2, IN), np.float32)})
    assert mlprt.device_memory_usage()["current_bytes"] == before["current_bytes"]
