"""mlprt.Refitter: TensorRT's refit API over mlprt's refit (tactics kept, byte-identical plans)."""
import numpy as np
import pytest
import torch

import mlprt
from conftest import IN, Mlp, build_plan, export_onnx, rel_l2, requires_cuda


def reference(model, x):
    m = Mlp()
    m.load_state_dict(model.state_dict())
    m = m.double().eval()
    with torch.no_grad():
        return m(torch.from_numpy(x.astype(np.float64))).numpy()


@pytest.fixture()
def models(tmp_path):
    torch.manual_seed(1)
    a = Mlp().eval()
    torch.manual_seed(2)
    b = Mlp().eval()
    path = tmp_path / "m.onnx"
    export_onnx(a, path, dynamic=True)
    cache = mlprt.Builder().create_builder_config().create_timing_cache(b"")
    plan_a = bytes(build_plan(path, cache=cache))
    export_onnx(b, tmp_path / "b.onnx", dynamic=True)
    export_onnx(b, path, dynamic=True)  # a fresh build of B reads the same path as A's did
    plan_b = bytes(build_plan(path, cache=cache))
    return {"a": a, "b": b, "plan_a": plan_a, "plan_b": plan_b, "dir": tmp_path}


def engine_of(plan):
    return mlprt.Runtime(mlprt.Logger()).deserialize_cuda_engine(plan)


def test_set_named_weights_by_torch_name_then_refit(models):
    engine = engine_of(models["plan_a"])
    refitter = mlprt.Refitter(engine, mlprt.Logger())
    assert sorted(refitter.get_all_weights()) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]
    assert sorted(refitter.get_missing_weights()) == sorted(refitter.get_all_weights())
    for name, value in models["b"].state_dict().items():
        assert refitter.set_named_weights(name, value.numpy()) is True
    assert refitter.get_missing_weights() == []
    assert refitter.refit_cuda_engine() is True
    # serialize() gives the refitted plan: the same bytes as a fresh build of B.
    assert bytes(engine.serialize()) == models["plan_b"]
    x = np.random.default_rng(0).standard_normal((5, IN)).astype(np.float32)
    assert rel_l2(engine.infer({"input": x})["output"], reference(models["b"], x)) <= 1e-5
    context = engine.create_execution_context()
    assert rel_l2(context.infer({"input": x})["output"], reference(models["b"], x)) <= 1e-5


def test_torch_tensors_and_files(models):
    d = models["dir"]
    torch.save(models["b"].state_dict(), d / "b.pth")
    # From ONNX the plan records the model's path as a build would: m.onnx holds B now.
    for source in (d / "b.pth", d / "m.onnx"):
        engine = engine_of(models["plan_a"])
        refitter = mlprt.Refitter(engine)
        refitter.set_weights_from_file(str(source))
        assert refitter.refit_cuda_engine()
        assert bytes(engine.serialize()) == models["plan_b"], source
    engine = engine_of(models["plan_a"])
    refitter = mlprt.Refitter(engine)
    for name, value in models["b"].state_dict().items():
        refitter.set_named_weights(name, value)  # torch CPU tensors
    assert refitter.refit_cuda_engine()
    assert bytes(engine.serialize()) == models["plan_b"]


def test_refusals_name_the_problem(models):
    engine = engine_of(models["plan_a"])
    refitter = mlprt.Refitter(engine)
    with pytest.raises(mlprt.InvalidArgumentError, match="unknown weight 'fc3.weight'"):
        refitter.set_named_weights("fc3.weight", np.zeros(3, np.float32))
    with pytest.raises(mlprt.InvalidArgumentError, match=r"shape of 'fc1.weight': \[784x32\], the engine's is \[32x784\]"):
        refitter.set_named_weights("fc1.weight", np.zeros((784, 32), np.float32))
    with pytest.raises(mlprt.InvalidArgumentError, match="dtype of 'fc1.bias': float64"):
        refitter.set_named_weights("fc1.bias", np.zeros(32))
    refitter.set_named_weights("fc1.bias", np.zeros(32, np.float32))
    with pytest.raises(mlprt.InvalidArgumentError) as info:
        refitter.refit_cuda_engine()
    for name in ("fc1.weight", "fc2.bias", "fc2.weight"):
        assert f"missing weight '{name}'" in str(info.value)
    assert bytes(engine.serialize()) == models["plan_a"]  # unchanged


def test_contexts_made_before_a_refit_keep_the_old_weights(models):
    engine = engine_of(models["plan_a"])
    old_context = engine.create_execution_context()
    refitter = mlprt.Refitter(engine)
    for name, value in models["b"].state_dict().items():
        refitter.set_named_weights(name, value.numpy())
    refitter.refit_cuda_engine()
    x = np.random.default_rng(1).standard_normal((3, IN)).astype(np.float32)
    assert rel_l2(old_context.infer({"input": x})["output"], reference(models["a"], x)) <= 1e-5
    new_context = engine.create_execution_context()
    assert rel_l2(new_context.infer({"input": x})["output"], reference(models["b"], x)) <= 1e-5


def test_refit_flag_is_accepted():
    config = mlprt.Builder().create_builder_config()
    config.set_flag(mlprt.BuilderFlag.REFIT)


@requires_cuda
def test_cuda_plan_refit(models, tmp_path):
    torch.manual_seed(1)
    path = tmp_path / "c.onnx"
    export_onnx(models["a"], path, dynamic=True)
    engine = engine_of(build_plan(path, backend="cuda"))
    refitter = mlprt.Refitter(engine)
    for name, value in models["b"].state_dict().items():
        refitter.set_named_weights(name, value.numpy())
    assert refitter.refit_cuda_engine()
    x = np.random.default_rng(2).standard_normal((7, IN)).astype(np.float32)
    assert rel_l2(engine.infer({"input": x})["output"], reference(models["b"], x)) <= 1e-5
