"""Fixtures for the Python package's tests: the tutorial MLP exported with a dynamic batch, its
float64 reference, and engines built through the package.

The package is imported from the build tree (ctest sets PYTHONPATH=<build>/python) or from the
installed .venv; the tests never build the C++ side themselves."""

import inspect

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the package tests export models with torch")
import mlprt  # noqa: E402

IN, HIDDEN, OUT = 784, 32, 10


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(IN, HIDDEN)
        self.fc2 = torch.nn.Linear(HIDDEN, OUT)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


@pytest.fixture(scope="session")
def mlp():
    torch.manual_seed(7)
    return Mlp().eval()


@pytest.fixture(scope="session")
def onnx_dynamic(mlp, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "mlp_dynamic.onnx"
    export_onnx(mlp, path, dynamic=True)
    return path


def export_onnx(model, path, dynamic, batch=2):
    # torch 2.x defaults to the dynamo exporter; the TorchScript one works on torch 1.13 too.
    extra = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic else None
    torch.onnx.export(model, torch.zeros(batch, IN), str(path), input_names=["input"],
                      output_names=["output"], opset_version=17, dynamic_axes=axes, **extra)


@pytest.fixture(scope="session")
def reference(mlp):
    """float64 forward pass from the torch weights."""
    w1, b1 = (p.detach().double().numpy() for p in (mlp.fc1.weight, mlp.fc1.bias))
    w2, b2 = (p.detach().double().numpy() for p in (mlp.fc2.weight, mlp.fc2.bias))

    def forward(x):
        h = np.maximum(np.asarray(x, np.float64) @ w1.T + b1, 0.0)
        return h @ w2.T + b2
    return forward


def rel_l2(actual, expected):
    actual = np.asarray(actual, np.float64)
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


def build_plan(onnx_path, profiles=(((1, IN), (8, IN), (64, IN)),), backend="cpu", flags=(),
               logger=None, cache=None):
    logger = logger or mlprt.Logger(mlprt.Logger.WARNING)
    builder = mlprt.Builder(logger)
    network = builder.create_network(1 << int(mlprt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = mlprt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(onnx_path)), [str(parser.get_error(i))
                                                    for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    config.backend = backend
    config.clear_flag(mlprt.BuilderFlag.TF32)  # fp32 checks at 1e-5; flags may permit it again
    for flag in flags:
        config.set_flag(flag)
    if cache is not None:
        config.set_timing_cache(cache, ignore_mismatch=False)
    for lo, opt, hi in profiles:
        profile = builder.create_optimization_profile()
        profile.set_shape("input", lo, opt, hi)
        config.add_optimization_profile(profile)
    return builder.build_serialized_network(network, config)


@pytest.fixture(scope="session")
def cpu_engine(onnx_dynamic):
    plan = build_plan(onnx_dynamic, profiles=[((1, IN), (8, IN), (64, IN)),
                                              ((65, IN), (128, IN), (256, IN))])
    return mlprt.Runtime(mlprt.Logger()).deserialize_cuda_engine(plan)


def cuda_available():
    return torch.cuda.is_available()


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                   reason="no CUDA GPU on this machine (runs on the GPU machine)")
