"""Runtime.hardware_mismatch_policy: a plan built for other hardware is re-tuned (default),
refused or run on another backend. Other hardware is made by relabelling a plan built here
(tests/cli/plan_reframe.py re-frames it with a valid checksum)."""
import sys
from pathlib import Path

import numpy as np
import pytest

import mlprt
from conftest import IN, build_plan, rel_l2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
import plan_reframe  # noqa: E402


class Recorder(mlprt.ILogger):
    def __init__(self):
        mlprt.ILogger.__init__(self)
        self.warnings = []

    def log(self, severity, msg):
        if severity == mlprt.ILogger.Severity.WARNING:
            self.warnings.append(msg)


@pytest.fixture(scope="module")
def native_plan(onnx_dynamic):
    return bytes(build_plan(onnx_dynamic))


def other_cpu(plan):
    here = plan_reframe.read_plan(plan)[0]["hardware"]
    return "x86_64 avx512_core" if here == "x86_64 avx2" else "x86_64 avx2"


def test_policy_enum_and_default():
    runtime = mlprt.Runtime(mlprt.Logger())
    assert runtime.hardware_mismatch_policy == mlprt.HardwareMismatchPolicy.RETUNE
    runtime.hardware_mismatch_policy = mlprt.HardwareMismatchPolicy.REFUSE
    assert runtime.hardware_mismatch_policy == mlprt.HardwareMismatchPolicy.REFUSE
    with pytest.raises(TypeError):
        runtime.hardware_mismatch_policy = "refuse"
    assert {p.name for p in mlprt.HardwareMismatchPolicy} == {"RETUNE", "REFUSE", "FALLBACK"}


def test_default_retunes_a_plan_for_another_cpu(native_plan, reference):
    other = other_cpu(native_plan)
    plan = plan_reframe.relabel(native_plan, hardware=other)
    logger = Recorder()
    engine = mlprt.Runtime(logger).deserialize_cuda_engine(plan)
    assert engine.hardware != other
    assert any("re-tuned for cpu" in w and f"'{other}'" in w for w in logger.warnings), \
        logger.warnings
    x = np.random.default_rng(2).standard_normal((5, IN)).astype(np.float32)
    assert rel_l2(engine.infer({"input": x})["output"], reference(x)) <= 1e-5
    # serialize() gives the re-tuned plan, which the strict policy accepts.
    retuned = bytes(engine.serialize())
    assert plan_reframe.read_plan(retuned)[0]["hardware"] == engine.hardware
    strict = mlprt.Runtime(mlprt.Logger())
    strict.hardware_mismatch_policy = mlprt.HardwareMismatchPolicy.REFUSE
    assert strict.deserialize_cuda_engine(retuned).hardware == engine.hardware


def test_refuse_raises_plan_error(native_plan):
    other = other_cpu(native_plan)
    runtime = mlprt.Runtime(mlprt.Logger())
    runtime.hardware_mismatch_policy = mlprt.HardwareMismatchPolicy.REFUSE
    with pytest.raises(mlprt.PlanError, match=f"'{other}'.*'refuse'"):
        runtime.deserialize_cuda_engine(plan_reframe.relabel(native_plan, hardware=other))


def test_cuda_plan_without_gpu_falls_back_only_when_asked(native_plan, reference):
    if _cuda_runs_here():
        pytest.skip("a GPU is here: the relabelled cuda plan would be re-tuned on it")
    plan = plan_reframe.fake_cuda_plan(native_plan)
    with pytest.raises(mlprt.PlanError, match="'fallback'"):
        mlprt.Runtime(mlprt.Logger()).deserialize_cuda_engine(plan)
    logger = Recorder()
    runtime = mlprt.Runtime(logger)
    runtime.hardware_mismatch_policy = mlprt.HardwareMismatchPolicy.FALLBACK
    engine = runtime.deserialize_cuda_engine(plan)
    assert engine.backend == "cpu"
    assert any("runs on the cpu backend" in w for w in logger.warnings), logger.warnings
    x = np.random.default_rng(3).standard_normal((9, IN)).astype(np.float32)
    assert rel_l2(engine.infer({"input": x})["output"], reference(x)) <= 1e-5


def _cuda_runs_here():
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False
