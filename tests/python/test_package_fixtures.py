"""Every fixture model of both exporters (tests/fixtures: torch 1.13 and 2.11, with float64
references) built through the package's TensorRT-style calls and run with infer: several inputs
and outputs, static and dynamic, every op the importer takes."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

import mlprt

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
TOL = 1e-5


def entries():
    for exporter in ("torch1", "torch2"):
        index = json.loads((FIXTURES / exporter / "index.json").read_text())
        for entry in index["models"]:
            yield pytest.param(exporter, entry, id=f"{exporter}-{entry['name']}")


def build(path, entry, backend):
    """Dynamic dims get min 1, opt the run size, max twice it."""
    builder = mlprt.Builder(mlprt.Logger(mlprt.Logger.ERROR))
    network = builder.create_network()
    parser = mlprt.OnnxParser(network, mlprt.Logger(mlprt.Logger.ERROR))
    assert parser.parse_from_file(str(path)), str(parser.get_error(0))
    config = builder.create_builder_config()
    config.backend = backend
    config.clear_flag(mlprt.BuilderFlag.TF32)  # fp32 checked at 1e-5
    config.builder_optimization_level = 0  # the default kernels: this checks numerics, not tactics
    declared = {i.name: i for i in onnx.load(str(path), load_external_data=False).graph.input}
    profile = builder.create_optimization_profile()
    dynamic = False
    for inp in entry["inputs"]:
        dims = declared[inp["name"]].type.tensor_type.shape.dim
        is_dyn = [not d.HasField("dim_value") for d in dims]
        dynamic |= any(is_dyn)
        lo = [1 if dyn else s for dyn, s in zip(is_dyn, inp["shape"])]
        hi = [2 * s if dyn else s for dyn, s in zip(is_dyn, inp["shape"])]
        profile.set_shape(inp["name"], lo, inp["shape"], hi)
    if dynamic:
        config.add_optimization_profile(profile)
    return mlprt.Engine.load(builder.build_serialized_network(network, config))


def backends():
    yield "cpu"
    try:
        import torch
        gpu = torch.cuda.is_available()
    except ImportError:
        gpu = False
    yield pytest.param("cuda", marks=pytest.mark.skipif(
        not gpu, reason="no CUDA GPU on this machine (runs on the GPU machine)"))


@pytest.mark.parametrize("backend", list(backends()))
@pytest.mark.parametrize("exporter, entry", list(entries()))
def test_fixture_through_the_package(exporter, entry, backend):
    folder = FIXTURES / exporter
    engine = build(folder / entry["onnx"], entry, backend)
    feed = {i["name"]: np.load(folder / i["file"]) for i in entry["inputs"]}
    for name, x in feed.items():  # the engine's own input types (float32 unless typed)
        feed[name] = x.astype(mlprt.nptype(engine.get_tensor_dtype(name)))
    outputs = engine.create_execution_context().infer(feed)
    assert set(outputs) == {o["name"] for o in entry["outputs"]}
    for o in entry["outputs"]:
        ref = np.load(folder / o["reference"]).astype(np.float64)
        y = outputs[o["name"]].astype(np.float64)
        assert y.shape == ref.shape
        err = np.linalg.norm(y - ref) / max(np.linalg.norm(ref), 1e-300)
        tol = TOL if outputs[o["name"]].dtype == np.float32 else 2e-2
        assert err <= tol, f"{o['name']}: rel L2 {err:.2e} > {tol}"
