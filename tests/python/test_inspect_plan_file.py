"""mlprt.inspect_plan_file: a plan described from its metadata, as the loaded engine describes it."""
import json

import pytest

import mlprt
from conftest import IN, build_plan


def test_inspect_plan_file_agrees_with_the_loaded_engine(onnx_dynamic, tmp_path):
    plan = tmp_path / "m.plan"
    plan.write_bytes(bytes(build_plan(onnx_dynamic, profiles=[((1, IN), (8, IN), (64, IN))])))
    described = json.loads(mlprt.inspect_plan_file(plan))
    loaded = json.loads(mlprt.ICudaEngine.load_file(plan).to_json())
    assert described == loaded
    assert described["layers"] and described["weight_bytes"] > 0


def test_inspect_plan_file_refuses_a_damaged_plan(onnx_dynamic, tmp_path):
    data = bytearray(build_plan(onnx_dynamic))
    data[len(data) // 2] ^= 0xFF
    plan = tmp_path / "bad.plan"
    plan.write_bytes(bytes(data))
    with pytest.raises(mlprt.Error, match="checksum mismatch"):
        mlprt.inspect_plan_file(plan)
