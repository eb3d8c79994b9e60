"""context.split_batch: a batch past every profile's max runs in chunks of the best profile
(infer and execute_async_v3), on cpu here and on cuda on the GPU machine."""

import numpy as np
import pytest
import torch

import mlprt
from conftest import IN, OUT, build_plan, rel_l2, requires_cuda

FP32_TOL = 1e-5


def images(batch, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, IN)).astype(np.float32)


def test_infer_ten_times_the_largest_max(cpu_engine, reference):
    # cpu_engine's profiles: 1..64 and 65..256: chunks of 256, 2560 rows = 10, plus a tail.
    context = cpu_engine.create_execution_context()
    assert context.split_batch is False
    with pytest.raises(mlprt.Error) as info:
        context.infer({"input": images(2560)})
    assert "split_batch" in str(info.value) or "splitBatch" in str(info.value)
    context.split_batch = True
    assert context.split_batch is True
    for batch in (2560, 2600, 257):
        x = images(batch, seed=batch)
        y = context.infer({"input": x})["output"]
        assert y.shape == (batch, OUT)
        assert rel_l2(y, reference(x)) <= FP32_TOL, batch
    x = images(9)  # in a profile: one call, as before
    assert rel_l2(context.infer({"input": x})["output"], reference(x)) <= FP32_TOL


def test_execute_async_v3_writes_the_callers_buffer(cpu_engine, reference):
    context = cpu_engine.create_execution_context()
    context.split_batch = True
    x = images(1000, seed=3)
    assert context.set_input_shape("input", x.shape)
    assert context.get_tensor_shape("output") == (1000, OUT)
    y = np.full((1000 * OUT + 1,), -5.0, np.float32)
    context.set_tensor_address("input", x.ctypes.data)
    context.set_tensor_address("output", y.ctypes.data)
    assert context.execute_async_v3(0)
    assert rel_l2(y[:-1].reshape(1000, OUT), reference(x)) <= FP32_TOL
    assert y[-1] == -5.0


def test_turning_it_on_for_a_plan_that_mixes_rows_raises(tmp_path):
    class Mixing(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(IN, OUT)

        def forward(self, x):
            return torch.softmax(self.fc(x), dim=0)  # over the batch

    from conftest import export_onnx
    path = tmp_path / "mixing.onnx"
    export_onnx(Mixing().eval(), path, dynamic=True)
    engine = mlprt.Runtime(mlprt.Logger()).deserialize_cuda_engine(build_plan(path))
    context = engine.create_execution_context()
    with pytest.raises(mlprt.Error) as info:
        context.split_batch = True
    assert "axis 0, the batch" in str(info.value)
    assert context.split_batch is False


@requires_cuda
def test_cuda_split_batch_on_device_and_host_memory(onnx_dynamic, reference):
    plan = build_plan(onnx_dynamic, profiles=[((1, IN), (64, IN), (64, IN))], backend="cuda")
    engine = mlprt.Runtime(mlprt.Logger()).deserialize_cuda_engine(plan)
    context = engine.create_execution_context()
    context.split_batch = True
    x = images(650, seed=11)  # 10 chunks of 64 and a 10-row tail
    for _ in range(3):  # replays the chunks' CUDA graphs
        y = context.infer({"input": torch.from_numpy(x).cuda()})["output"]
        assert rel_l2(y.cpu().numpy(), reference(x)) <= FP32_TOL
        y = context.infer({"input": x})["output"]
        assert rel_l2(y, reference(x)) <= FP32_TOL
