"""The Python package on the MLP-Mixer block fixture (issue 14): an empty batch runs through
infer() and execute_async_v3 with no address for the empty tensors, and a real batch matches
the float64 reference."""
from pathlib import Path

import numpy as np
import pytest

import mlprt
from conftest import rel_l2

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "torch1"


@pytest.fixture(scope="module")
def mixer_engine():
    logger = mlprt.Logger(mlprt.Logger.WARNING)
    builder = mlprt.Builder(logger)
    network = builder.create_network(1 << int(mlprt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = mlprt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(FIXTURES / "mlp_mixer_block.onnx"))
    config = builder.create_builder_config()
    config.backend = "cpu"
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (0, 6, 8), (3, 6, 8), (16, 6, 8))  # min 0: empty batches allowed
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    return mlprt.Runtime(logger).deserialize_cuda_engine(plan)


def test_infer_on_an_empty_batch_gives_an_empty_output(mixer_engine):
    context = mixer_engine.create_execution_context()
    out = context.infer({"input": np.zeros((0, 6, 8), np.float32)})
    assert out["output"].shape == (0, 3)


def test_execute_without_addresses_for_empty_tensors(mixer_engine):
    context = mixer_engine.create_execution_context()
    context.set_input_shape("input", (0, 6, 8))
    assert tuple(context.get_tensor_shape("output")) == (0, 3)
    assert context.execute_async_v3(0)


def test_infer_matches_float64_after_an_empty_batch(mixer_engine):
    context = mixer_engine.create_execution_context()
    context.infer({"input": np.zeros((0, 6, 8), np.float32)})
    x = np.load(FIXTURES / "mlp_mixer_block_in0.npy")
    ref = np.load(FIXTURES / "mlp_mixer_block_ref0.npy")
    assert rel_l2(context.infer({"input": x})["output"], ref) <= 1e-5
