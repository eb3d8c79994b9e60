"""IBuilderConfig.accuracy_budget and set_calibration_inputs: the chosen mix is within the
budget on held-out inputs and recorded in the plan (engine.to_json()); bad values are refused."""
import json
import math

import numpy as np
import pytest

import mlprt
from conftest import IN, rel_l2


def build(onnx_path, budget, calibration=None):
    logger = mlprt.Logger(mlprt.Logger.WARNING)
    builder = mlprt.Builder(logger)
    network = builder.create_network(1 << int(mlprt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    assert mlprt.OnnxParser(network, logger).parse_from_file(str(onnx_path))
    config = builder.create_builder_config()
    config.backend = "cpu"
    config.builder_optimization_level = 0
    config.set_flag(mlprt.BuilderFlag.BF16)
    assert config.accuracy_budget is None
    config.accuracy_budget = budget
    assert config.accuracy_budget == pytest.approx(budget)
    if calibration is not None:
        config.set_calibration_inputs({"input": calibration})
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, IN), (64, IN), (128, IN))
    config.add_optimization_profile(profile)
    return builder.build_serialized_network(network, config)


@pytest.mark.parametrize("budget", [1e-2, 1e-5])
def test_budget_mix_within_budget_on_held_out_inputs(onnx_dynamic, reference, budget):
    calib = np.random.default_rng(1).uniform(-1, 1, (64, IN))  # float64: converted
    engine = mlprt.Runtime(mlprt.Logger()).deserialize_cuda_engine(build(onnx_dynamic, budget, calib))
    info = json.loads(engine.to_json())
    acc = info["accuracy"]
    assert acc["budget"] == pytest.approx(budget)
    assert acc["calibration"] == "arrays"
    assert acc["error"] <= budget
    for layer in info["layers"]:
        if layer["type"] == "Dense":
            assert 0 <= layer["measured_error"] <= budget
            assert layer["precision"].split(" ")[0] == acc["layers"][layer["name"]]["precision"]
    x = np.random.default_rng(5).uniform(-1, 1, (100, IN)).astype(np.float32)
    context = engine.create_execution_context()
    y = context.infer({"input": x})["output"]
    assert rel_l2(y, reference(x)) <= budget


def test_bad_budget_and_calibration_are_refused(onnx_dynamic):
    config = mlprt.Builder().create_builder_config()
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(mlprt.InvalidArgumentError, match="accuracy_budget"):
            config.accuracy_budget = bad
    with pytest.raises(mlprt.InvalidArgumentError, match="floating-point"):
        config.set_calibration_inputs({"input": np.ones((4, IN), np.int32)})
    with pytest.raises(mlprt.InvalidArgumentError, match="has shape"):
        build(onnx_dynamic, 1e-2, np.ones((4, IN - 1), np.float32))
    with pytest.raises(mlprt.InvalidArgumentError, match="match no optimization profile"):
        build(onnx_dynamic, 1e-2, np.ones((500, IN), np.float32))
    with pytest.raises(mlprt.InvalidArgumentError, match="unreachable"):
        build(onnx_dynamic, 1e-14)
