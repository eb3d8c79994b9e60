"""float16 / bfloat16 engine I/O: strongly typed ONNX models and --inputIOFormats /
--outputIOFormats, on the cpu backend (the cuda backend has the same tests in its gtests)."""
import json

import numpy as np
import onnx
import pytest

import cli_helpers as h
from mlprt_tools.typed import round_to, to_typed

TOLERANCE = 2e-2  # fp16 / bf16 against float64


def io_types(plan):
    info = json.loads(h.ok("inspect", f"--loadEngine={plan}", "--json").stdout)
    return {t["name"]: t["dtype"] for t in info["io_tensors"]}


def typed_weights(w, type_name):
    return {k: round_to(v, type_name) for k, v in w.items()}


@pytest.mark.parametrize("type_name", ["float16", "bfloat16"])
def test_strongly_typed_model_runs_in_its_type(models, tmp_path, type_name):
    typed = tmp_path / f"typed_{type_name}.onnx"
    onnx.save(to_typed(onnx.load(str(models["dir"] / "dynamic.onnx")), type_name), str(typed))
    plan = tmp_path / "typed.plan"
    built = h.ok("build", f"--onnx={typed}", f"--saveEngine={plan}", "--backend=cpu",
                 "--minShapes=input:1x6", "--optShapes=input:8x6", "--maxShapes=input:32x6")
    assert f"strongly typed {type_name}" in built.stdout
    assert io_types(plan) == {"input": type_name, "output": type_name}

    x = round_to(h.inputs(7), type_name)
    np.save(tmp_path / "x.npy", x)
    run = h.ok("run", f"--loadEngine={plan}", f"--loadInputs=input:{tmp_path / 'x.npy'}",
               f"--exportOutput={tmp_path / 'y.npy'}", "--check", f"--checkTolerance={TOLERANCE}")
    assert "PASS" in run.stdout
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.float32 and y.shape == (7, h.OUT_FEATURES)
    # Outputs hold values of the narrow type, widened exactly.
    np.testing.assert_array_equal(round_to(y, type_name), y)
    expected = h.reference(typed_weights(models["weights"], type_name), x)
    assert h.rel_l2(y, expected) <= TOLERANCE


def test_io_formats_on_a_float32_model(models, tmp_path):
    plan = tmp_path / "io.plan"
    h.ok("build", f"--onnx={models['dir'] / 'dynamic.onnx'}", f"--saveEngine={plan}",
         "--backend=cpu", "--shapes=input:5x6", "--inputIOFormats=fp16:chw",
         "--outputIOFormats=bf16:chw")
    assert io_types(plan) == {"input": "float16", "output": "bfloat16"}
    x = h.inputs(5)
    np.save(tmp_path / "x.npy", x.astype(np.float16))
    run = h.ok("run", f"--loadEngine={plan}", f"--loadInputs=input:{tmp_path / 'x.npy'}",
               f"--exportOutput={tmp_path / 'y.npy'}", "--check", f"--checkTolerance={TOLERANCE}")
    assert "PASS" in run.stdout
    # The layers run in fp32: only the I/O roundings remain.
    expected = h.reference(models["weights"], x.astype(np.float16).astype(np.float32))
    y = np.load(tmp_path / "y.npy")
    np.testing.assert_array_equal(round_to(y, "bfloat16"), y)
    assert h.rel_l2(y, expected) <= 2 ** -8


def test_float32_npy_into_a_float16_input_is_rounded_and_said(models, tmp_path):
    plan = tmp_path / "io.plan"
    h.ok("build", f"--onnx={models['dir'] / 'dynamic.onnx'}", f"--saveEngine={plan}",
         "--backend=cpu", "--shapes=input:3x6", "--inputIOFormats=fp16")
    np.save(tmp_path / "x.npy", h.inputs(3))
    run = h.ok("run", f"--loadEngine={plan}", f"--loadInputs=input:{tmp_path / 'x.npy'}")
    assert "rounded to float16" in run.stderr


@pytest.mark.parametrize("flag,value,message", [
    ("--inputIOFormats", "int8:chw", "type 'int8' is not one of fp32, fp16, bf16"),
    ("--inputIOFormats", "fp16:hwc8", "format 'hwc8' is not supported"),
    ("--outputIOFormats", "half", "type 'half' is not one of fp32, fp16, bf16"),
])
def test_bad_io_format_is_a_usage_error(models, tmp_path, flag, value, message):
    plan = tmp_path / "bad.plan"
    err = h.fails(2, "build", f"--onnx={models['dir'] / 'static.onnx'}", f"--saveEngine={plan}",
                  f"{flag}={value}")
    assert message in err
    assert not plan.exists()


def test_io_format_count_must_match(models, tmp_path):
    plan = tmp_path / "bad.plan"
    err = h.fails(1, "build", f"--onnx={models['dir'] / 'two_inputs.onnx'}",
                  f"--saveEngine={plan}", "--shapes=input:2x6,mask:2x5",
                  "--inputIOFormats=fp16:chw,fp16:chw,fp32:chw")
    assert "3 formats for 2 tensors ('input', 'mask')" in err
    assert not plan.exists()


def test_model_mixing_float16_and_bfloat16_is_refused(models, tmp_path):
    model = to_typed(onnx.load(str(models["dir"] / "static.onnx")), "float16")
    model.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.BFLOAT16
    path = tmp_path / "mixed.onnx"
    onnx.save(model, str(path))
    err = h.fails(1, "build", f"--onnx={path}", f"--saveEngine={tmp_path / 'mixed.plan'}")
    assert "mixes float16 and bfloat16" in err


def test_integer_graph_input_is_refused_with_the_allowed_types(models, tmp_path):
    model = onnx.load(str(models["dir"] / "static.onnx"))
    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.INT32
    path = tmp_path / "int_input.onnx"
    onnx.save(model, str(path))
    err = h.fails(1, "build", f"--onnx={path}", f"--saveEngine={tmp_path / 'int.plan'}")
    assert "may be float, float16 or bfloat16" in err
