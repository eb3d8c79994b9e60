"""TensorRT scripts run unchanged under `import mlprt as trt`.

The scripts in trt_compat/ are written from TensorRT's own documentation and samples (the 8.6
binding API, the 10.x name-based API, the samples' cudart common.py); each builds an engine from
an ONNX export of a torch MLP, runs it and checks the output against a float64 numpy reference
itself. This driver makes the models and inputs, runs each script in a fresh interpreter and
checks the exit status and the saved output. In-process tests check the plan's buffer protocol,
the errors that bad calls raise, and which TensorRT names the package offers.

    PYTHONPATH=build/ci/python:python python3 -m pytest -q tests/python/test_trt_compat.py
"""

import inspect
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

SCRIPTS = Path(__file__).parent / "trt_compat"
IN_FEATURES, HIDDEN, OUT_FEATURES = 784, 32, 10
STATIC_BATCH = 16
DYNAMIC_BATCH = 40  # in the second of the TensorRT 10 script's profiles (17..64)
TOL = 1e-5


def rel_l2(actual, expected):
    expected = np.asarray(expected, dtype=np.float64)
    diff = np.asarray(actual, dtype=np.float64) - expected
    norm = np.linalg.norm(expected)
    return float(np.linalg.norm(diff) / (norm if norm > 0 else 1.0))


def reference(weights, x):
    """float64 forward pass of Linear -> ReLU -> Linear from the torch weights."""
    w1, b1, w2, b2 = weights
    h = np.maximum(np.asarray(x, dtype=np.float64) @ w1.T + b1, 0.0)
    return h @ w2.T + b2


@pytest.fixture(scope="session")
def trt():
    """The package under test, imported the way the scripts import it."""
    import mlprt

    return mlprt


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """784 -> 32 -> ReLU -> 10, seed 0, exported at opset 17 with a static and a dynamic batch;
    inputs and float64 references for both."""
    d = tmp_path_factory.mktemp("trt_compat")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(IN_FEATURES, HIDDEN), torch.nn.ReLU(),
                              torch.nn.Linear(HIDDEN, OUT_FEATURES)).eval()
    weights = [p.detach().double().numpy() for p in
               (net[0].weight, net[0].bias, net[2].weight, net[2].bias)]
    out = {"dir": d, "weights": weights}
    for kind, batch in (("static", STATIC_BATCH), ("dynamic", DYNAMIC_BATCH)):
        onnx_path = d / f"{kind}.onnx"
        example = torch.zeros(batch, IN_FEATURES)
        dynamic_axes = None
        if kind == "dynamic":
            dynamic_axes = {"input": {0: "batch"}, "output": {0: "batch"}}
        with torch.no_grad():
            # The TorchScript exporter keeps the weights inside the file (torch 2.x's dynamo
            # exporter writes them beside it, which parse(bytes) without a path cannot read).
            torch.onnx.export(net, example, str(onnx_path), input_names=["input"],
                              output_names=["output"], dynamic_axes=dynamic_axes, opset_version=17,
                              **EXPORT_KW)
        x = np.random.default_rng(batch).standard_normal((batch, IN_FEATURES)).astype(np.float32)
        np.save(d / f"{kind}_x.npy", x)
        np.save(d / f"{kind}_ref.npy", reference(weights, x))
        out[kind] = {"onnx": onnx_path, "x": d / f"{kind}_x.npy", "ref": d / f"{kind}_ref.npy",
                     "expect": reference(weights, x)}
    return out


EXPORT_KW = ({"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters
             else {})


def run_script(name, *args, expect_rc=0):
    cmd = [sys.executable, str(SCRIPTS / name), *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    if proc.returncode != expect_rc:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode} (wanted {expect_rc})\n"
                    f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


# ---------------------------------------------------------------------------------------------
# The scripts


# The TensorRT 8 script keeps TensorRT's default flags, TF32 permitted: on a GPU (backend auto
# picks cuda) its matrix products may run in TF32.
TRT8_TOL = 1e-3 if torch.cuda.is_available() else TOL


@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_trt8_script(models, tmp_path, kind):
    m = models[kind]
    out, cache = tmp_path / "y.npy", tmp_path / "timing.cache"
    args = ["--onnx", m["onnx"], "--input", m["x"], "--expect", m["ref"], "--out", out,
            "--plan", tmp_path / "m.plan", "--timing-cache", cache, "--tol", TRT8_TOL]
    proc = run_script("trt8_build_run.py", *args)
    assert "PASS" in proc.stdout
    y = np.load(out)
    assert y.dtype == np.float32 and y.shape == m["expect"].shape
    assert rel_l2(y, m["expect"]) <= TRT8_TOL
    assert (tmp_path / "m.plan").stat().st_size > 0
    assert cache.exists()
    # A second build starts from the cache the first one saved.
    run_script("trt8_build_run.py", *args)


def test_trt8_script_catches_a_wrong_output(models, tmp_path):
    """The script's own check is live: a reference off by 1% makes it exit 1."""
    m = models["dynamic"]
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, m["expect"] * 1.01)
    proc = run_script("trt8_build_run.py", "--onnx", m["onnx"], "--input", m["x"],
                      "--expect", wrong, "--out", tmp_path / "y.npy", expect_rc=1)
    assert "FAIL" in proc.stdout


@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_trt10_script(models, tmp_path, kind):
    m = models[kind]
    out = tmp_path / "y.npy"
    proc = run_script("trt10_build_run.py", "--onnx", m["onnx"], "--input", m["x"],
                      "--expect", m["ref"], "--out", out)
    assert "PASS" in proc.stdout
    if kind == "dynamic":
        # Rows 40 and 39 run in profile 1, rows 5 in profile 0, with the shape as three types.
        for line in ("profile 1 rows 40 shape given as tuple",
                     "profile 1 rows 39 shape given as list",
                     "profile 0 rows 5 shape given as Size"):
            assert line in proc.stdout
    y = np.load(out)
    assert y.shape == m["expect"].shape
    assert rel_l2(y, m["expect"]) <= TOL


@pytest.mark.parametrize("precision,tol", [("tf32", 5e-3), ("fp16", 1e-2)])
def test_trt10_script_reduced_precision(models, tmp_path, precision, tol):
    m = models["dynamic"]
    run_script("trt10_build_run.py", "--onnx", m["onnx"], "--input", m["x"], "--expect", m["ref"],
               "--out", tmp_path / "y.npy", "--precision", precision, "--tol", tol)


@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_cudart_common_script(models, tmp_path, kind):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU: the script manages device memory with cudart")
    if importlib.util.find_spec("cuda") is None:
        pytest.skip("needs cuda-python (pip install cuda-python)")
    m = models[kind]
    out = tmp_path / "y.npy"
    run_script("trt_cudart_common.py", "--onnx", m["onnx"], "--input", m["x"], "--expect", m["ref"],
               "--out", out)
    assert rel_l2(np.load(out), m["expect"]) <= TOL


@pytest.mark.parametrize("case", ["int8_flag", "int8_calibrator", "plugin_registry",
                                  "shape_input_profile"])
def test_unsupported_calls_raise(models, case):
    proc = run_script("trt_unsupported.py", "--onnx", models["dynamic"]["onnx"], "--case", case)
    assert f"PASS {case}" in proc.stdout


# ---------------------------------------------------------------------------------------------
# In-process: the plan as a buffer, and bad calls


@pytest.fixture(scope="module")
def built(trt, models):
    """A dynamic engine with one profile (batch 1..16) and its plan."""
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network()
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(models["dynamic"]["onnx"]))
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, IN_FEATURES), (8, IN_FEATURES), (16, IN_FEATURES))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(plan)
    return {"logger": logger, "builder": builder, "network": network, "parser": parser,
            "config": config, "profile": profile, "plan": plan, "runtime": runtime,
            "engine": engine}


def test_plan_supports_bytes_and_memoryview(trt, built, tmp_path):
    plan = built["plan"]
    assert plan
    data = bytes(plan)
    view = memoryview(plan)
    assert len(data) > 0
    assert view.nbytes == len(data) == plan.nbytes
    assert view.tobytes() == data
    path = tmp_path / "m.plan"
    with open(path, "wb") as f:
        f.write(plan)
    assert path.read_bytes() == data
    runtime = built["runtime"]
    for blob in (data, view, bytearray(data), path.read_bytes()):
        engine = runtime.deserialize_cuda_engine(blob)
        assert engine is not None and engine.num_io_tensors == 2


def test_parse_of_garbage_returns_false_with_errors(trt, built):
    """TensorRT's contract: parse() returns False and the errors are read from the parser."""
    logger = built["logger"]
    network = built["builder"].create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(b"this is not an onnx model") is False
    assert parser.num_errors >= 1
    assert str(parser.get_error(0))


def test_deserialize_of_garbage_raises_plan_error(trt, built):
    with pytest.raises(trt.PlanError):
        built["runtime"].deserialize_cuda_engine(b"not a plan" * 10)


def test_set_shape_with_min_above_max_raises(trt, built):
    builder = built["builder"]
    with pytest.raises(trt.Error):
        profile = builder.create_optimization_profile()
        profile.set_shape("input", (16, IN_FEATURES), (8, IN_FEATURES), (1, IN_FEATURES))
        config = builder.create_builder_config()
        config.add_optimization_profile(profile)
        builder.build_serialized_network(built["network"], config)


@pytest.mark.parametrize("shape", [(17, IN_FEATURES), (0, IN_FEATURES), (4, IN_FEATURES + 1),
                                   (4, IN_FEATURES, 1), (IN_FEATURES,)])
def test_input_shape_outside_the_profile_raises_shape_error(trt, built, shape):
    context = built["engine"].create_execution_context()
    with pytest.raises(trt.ShapeError) as info:
        context.set_input_shape("input", shape)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, trt.Error)


UNKNOWN_NAME_CALLS = {
    "context.set_input_shape": lambda e, c: c.set_input_shape("nope", (1, IN_FEATURES)),
    "context.get_tensor_shape": lambda e, c: c.get_tensor_shape("nope"),
    "context.set_tensor_address": lambda e, c: c.set_tensor_address("nope", 0),
    "engine.get_tensor_shape": lambda e, c: e.get_tensor_shape("nope"),
    "engine.get_tensor_dtype": lambda e, c: e.get_tensor_dtype("nope"),
}


@pytest.mark.parametrize("call", sorted(UNKNOWN_NAME_CALLS))
def test_unknown_tensor_name_raises_not_found(trt, built, call):
    """docs/python-api.md: an unknown tensor name is a NotFoundError (also a LookupError)."""
    engine = built["engine"]
    context = engine.create_execution_context()
    with pytest.raises(trt.Error) as info:
        UNKNOWN_NAME_CALLS[call](engine, context)
    assert "nope" in str(info.value)
    assert isinstance(info.value, trt.NotFoundError), \
        f"{call} raised {type(info.value).__name__}, not NotFoundError: {info.value}"
    assert isinstance(info.value, LookupError)


def test_unknown_tensor_mode_is_none(trt, built):
    """TensorRT answers get_tensor_mode of an unknown name with TensorIOMode.NONE."""
    assert built["engine"].get_tensor_mode("nope") == trt.TensorIOMode.NONE


def test_static_engine_runs_without_set_input_shape(trt, models):
    """TensorRT: only dynamic dimensions need set_input_shape; a static input is set already."""
    m = models["static"]
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(m["onnx"]))
    plan = builder.build_serialized_network(network, builder.create_builder_config())
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    context = engine.create_execution_context()
    assert tuple(context.get_tensor_shape("input")) == (STATIC_BATCH, IN_FEATURES)
    assert context.all_binding_shapes_specified
    if torch.cuda.is_available():
        pytest.skip("the rest runs host buffers, for a cpu engine")
    x = np.load(m["x"])
    y = np.zeros((STATIC_BATCH, OUT_FEATURES), dtype=np.float32)
    context.set_tensor_address("input", x.ctypes.data)
    context.set_tensor_address("output", y.ctypes.data)
    assert context.execute_async_v3(0)
    assert rel_l2(y, m["expect"]) <= TOL


def test_stream_handle_may_be_any_object_with_int(trt, built):
    """cuda-python's cudaStream_t is passed as is to execute_async_v3 by TensorRT's samples."""
    if torch.cuda.is_available():
        pytest.skip("runs host buffers, for a cpu engine")

    class StreamLike:
        def __int__(self):
            return 0

    context = built["engine"].create_execution_context()
    assert context.set_optimization_profile_async(0, StreamLike())
    assert context.set_input_shape("input", (2, IN_FEATURES))
    x = np.ones((2, IN_FEATURES), dtype=np.float32)
    y = np.zeros((2, OUT_FEATURES), dtype=np.float32)
    context.set_tensor_address("input", x.ctypes.data)
    context.set_tensor_address("output", y.ctypes.data)
    assert context.execute_async_v3(StreamLike())
    assert context.execute_async_v3(stream_handle=0)


@pytest.mark.parametrize("call", ["binding_is_input", "get_binding_shape", "get_binding_dtype"])
def test_binding_calls_take_a_name_or_an_index(built, call):
    """TensorRT 8.6 has an overload by name beside the one by index for these three."""
    engine = built["engine"]
    by_index = getattr(engine, call)(0)
    try:
        by_name = getattr(engine, call)("input")
    except TypeError as e:
        pytest.xfail(f"mlprt's engine.{call} takes no tensor name: {str(e).splitlines()[0]}")
    assert by_name == by_index


def test_profile_index_out_of_range_raises(trt, built):
    context = built["engine"].create_execution_context()
    with pytest.raises(trt.Error):
        context.set_optimization_profile_async(1, 0)
    with pytest.raises(trt.Error):
        built["engine"].get_tensor_profile_shape("input", 5)


def test_execute_without_addresses_raises(trt, built):
    context = built["engine"].create_execution_context()
    context.set_input_shape("input", (2, IN_FEATURES))
    with pytest.raises(trt.Error):
        context.execute_async_v3(0)


def test_unsupported_error_is_not_implemented_error(trt):
    assert issubclass(trt.UnsupportedError, trt.Error)
    assert issubclass(trt.UnsupportedError, NotImplementedError)
    for name in ("ShapeError", "ModelError", "PlanError", "InvalidArgumentError"):
        assert issubclass(getattr(trt, name), trt.Error)


# ---------------------------------------------------------------------------------------------
# Which TensorRT names exist. CONTRACT: promised by docs/python-api.md, must be there. EXTRA: in
# TensorRT's Python API and common in its samples, not promised; a missing one is an xfail that
# names it.

CONTRACT = {
    "module": ["Logger", "Builder", "OnnxParser", "Runtime", "NetworkDefinitionCreationFlag",
               "BuilderFlag", "MemoryPoolType", "TensorIOMode", "DataType", "volume", "nptype",
               "float32", "float16", "Error", "ShapeError", "ModelError", "PlanError",
               "UnsupportedError", "InvalidArgumentError"],
    "Logger": ["INFO"],
    "NetworkDefinitionCreationFlag": ["EXPLICIT_BATCH"],
    "BuilderFlag": ["FP16", "BF16", "TF32"],
    "MemoryPoolType": ["WORKSPACE"],
    "TensorIOMode": ["INPUT", "OUTPUT"],
    "builder": ["create_network", "max_batch_size", "create_builder_config",
                "create_optimization_profile", "build_serialized_network"],
    "network": ["num_inputs", "num_outputs", "get_input", "get_output"],
    "tensor": ["name", "shape", "dtype"],
    "parser": ["parse", "parse_from_file", "num_errors", "get_error"],
    "config": ["set_flag", "set_memory_pool_limit", "create_timing_cache", "set_timing_cache",
               "add_optimization_profile"],
    "profile": ["set_shape"],
    "runtime": ["deserialize_cuda_engine", "__enter__", "__exit__"],
    "engine": ["num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_shape",
               "get_tensor_dtype", "get_tensor_profile_shape", "num_optimization_profiles",
               "create_execution_context", "num_bindings", "get_binding_name", "binding_is_input",
               "get_binding_shape"],
    "context": ["set_optimization_profile_async", "set_input_shape", "get_tensor_shape",
                "set_tensor_address", "execute_async_v3", "execute_async_v2", "execute_v2",
                "set_binding_shape", "get_binding_shape", "active_optimization_profile"],
}

EXTRA = {
    "module": ["__version__", "ILogger", "init_libnvinfer_plugins", "get_plugin_registry",
               "Refitter", "IInt8EntropyCalibrator2", "int8", "int32", "bool"],
    "Logger": ["WARNING", "ERROR", "VERBOSE", "INTERNAL_ERROR", "Severity"],
    "BuilderFlag": ["INT8", "REFIT"],
    "DataType": ["FLOAT", "HALF"],
    "builder": ["platform_has_fast_fp16", "platform_has_tf32", "platform_has_fast_int8",
                "__enter__"],
    "network": ["num_layers", "__enter__"],
    "parser": ["clear_errors", "__enter__"],
    "config": ["clear_flag", "get_flag", "max_workspace_size", "get_memory_pool_limit",
               "get_timing_cache", "num_optimization_profiles", "int8_calibrator",
               "builder_optimization_level", "__enter__"],
    "profile": ["get_shape", "set_shape_input"],
    "timing_cache": ["serialize", "combine", "reset"],
    "engine": ["get_binding_dtype", "get_binding_index", "get_profile_shape", "max_batch_size",
               "serialize", "device_memory_size", "num_layers", "name", "__len__", "__getitem__",
               "get_tensor_location", "__enter__"],
    "context": ["all_binding_shapes_specified", "get_tensor_address", "engine", "infer_shapes",
                "__enter__"],
    "plan": ["nbytes", "dtype", "__enter__"],
}


@pytest.fixture(scope="module")
def objects(trt, built):
    config = built["builder"].create_builder_config()
    return {"module": trt, "Logger": trt.Logger,
            "NetworkDefinitionCreationFlag": trt.NetworkDefinitionCreationFlag,
            "BuilderFlag": trt.BuilderFlag, "MemoryPoolType": trt.MemoryPoolType,
            "TensorIOMode": trt.TensorIOMode, "DataType": trt.DataType,
            "builder": built["builder"], "network": built["network"],
            "tensor": built["network"].get_input(0), "parser": built["parser"], "config": config,
            "profile": built["profile"], "timing_cache": config.create_timing_cache(b""),
            "plan": built["plan"], "runtime": built["runtime"], "engine": built["engine"],
            "context": built["engine"].create_execution_context()}


def has_name(obj, name):
    """Looks the name up without calling a property's getter."""
    return hasattr(type(obj), name) or name in dir(obj)


def _pairs(table):
    return [pytest.param(k, n, id=f"{k}.{n}") for k, names in table.items() for n in names]


@pytest.mark.parametrize("kind,name", _pairs(CONTRACT))
def test_documented_name_exists(objects, kind, name):
    assert has_name(objects[kind], name), \
        f"mlprt lacks {kind}.{name}, which docs/python-api.md promises"


@pytest.mark.parametrize("kind,name", _pairs(EXTRA))
def test_tensorrt_name_exists(objects, kind, name):
    if not has_name(objects[kind], name):
        pytest.xfail(f"mlprt lacks TensorRT's {kind}.{name}")
