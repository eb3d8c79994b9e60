"""IExecutionContext.profiler (TensorRT's IProfiler): report_layer_time(layer_name, ms) once per
layer and execution, in inspect's order, on cpu (plain and split batch) and cuda on the GPU
machine; an exception in the callback is raised by the execution."""

import json

import numpy as np
import pytest

import mlprt
from conftest import IN, build_plan, rel_l2, requires_cuda


class Recorder(mlprt.IProfiler):
    def __init__(self):
        super().__init__()
        self.reports = []

    def report_layer_time(self, layer_name, ms):
        self.reports.append((layer_name, ms))


def layer_names(engine):
    names = [layer["name"] for layer in json.loads(engine.to_json())["layers"]]
    assert len(names) == engine.num_layers
    return names


def images(batch, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, IN)).astype(np.float32)


def check_reports(recorder, names, calls):
    assert [name for name, _ in recorder.reports] == names * calls
    assert all(isinstance(ms, float) and ms >= 0.0 for _, ms in recorder.reports)


def test_cpu_reports_every_layer_once_per_execution(cpu_engine, reference):
    names = layer_names(cpu_engine)
    context = cpu_engine.create_execution_context()
    assert context.profiler is None
    recorder = Recorder()
    context.profiler = recorder
    assert context.profiler is recorder
    x = images(8)
    for _ in range(3):
        y = context.infer({"input": x})["output"]
    check_reports(recorder, names, 3)
    assert rel_l2(y, reference(x)) <= 1e-5
    context.profiler = None
    context.infer({"input": x})
    assert len(recorder.reports) == 3 * len(names)


def test_split_batch_reports_each_layer_once(cpu_engine):
    names = layer_names(cpu_engine)
    context = cpu_engine.create_execution_context()
    context.split_batch = True
    recorder = Recorder()
    context.profiler = recorder
    context.infer({"input": images(600)})  # chunks of 256 and a tail
    check_reports(recorder, names, 1)


def test_callback_errors_are_raised_and_bad_profilers_refused(cpu_engine):
    class Failing(mlprt.IProfiler):
        def report_layer_time(self, layer_name, ms):
            raise ValueError(f"no room for {layer_name}")

    context = cpu_engine.create_execution_context()
    context.profiler = Failing()
    with pytest.raises(ValueError, match="no room for"):
        context.infer({"input": images(4)})
    context.profiler = None
    context.infer({"input": images(4)})
    with pytest.raises(mlprt.Error, match="report_layer_time"):
        context.profiler = object()


@requires_cuda
def test_cuda_reports_every_layer_or_one_fused_entry(onnx_dynamic):
    engine = mlprt.Runtime(mlprt.Logger()).deserialize_cuda_engine(
        build_plan(onnx_dynamic, backend="cuda"))
    names = layer_names(engine)
    context = engine.create_execution_context()
    recorder = Recorder()
    context.profiler = recorder
    context.infer({"input": images(8)})
    reported = [name for name, _ in recorder.reports]
    assert reported in (names, [" + ".join(names)])
    assert sum(ms for _, ms in recorder.reports) > 0.0
