"""mlprt run / bench --splitBatch: a batch past every profile's max in chunks of the best
profile, against float64; every refusal (no flag, a row-mixing model, a plan from before)."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
import onnx

import cli_helpers as h
import plan_file

TOL = 1e-5


def run_split(plan, x, tmp_path, *extra):
    return h.run_plan(plan, x, tmp_path, "--splitBatch", *extra)


@pytest.mark.parametrize("rows", [320, 321, 333])
def test_ten_times_the_max_matches_float64(models, plans, tmp_path, rows):
    # The dynamic plan's one profile is 1..32: 320 rows are 10 chunks, 333 add a 13-row tail.
    x = h.inputs(rows, seed=rows)
    y, _ = run_split(plans["dynamic"], x, tmp_path)
    assert y.shape == (rows, h.OUT_FEATURES)
    assert h.rel_l2(y, h.reference(models["weights"], x)) <= TOL


def test_chunks_of_the_profile_with_the_largest_max(models, plans, tmp_path):
    # Profiles 1..4 and 5..8: chunks of 8; the 3-row tail runs in profile 0.
    x = h.inputs(83, seed=3)
    y, proc = run_split(plans["two_profiles"], x, tmp_path, "--check")
    assert y.shape == (83, h.OUT_FEATURES)
    assert h.rel_l2(y, h.reference(models["weights"], x)) <= TOL
    assert "PASS" in proc.stdout


def test_split_equals_the_same_rows_chunk_by_chunk(plans, tmp_path):
    x = h.inputs(96, seed=5)
    split, _ = run_split(plans["dynamic"], x, tmp_path)
    xp, yp = tmp_path / "x2.npy", tmp_path / "y2.npy"
    np.save(xp, x)
    h.ok("run", f"--loadEngine={plans['dynamic']}", f"--loadInputs=input:{xp}",
         f"--exportOutput={yp}", "--batch=32")
    np.testing.assert_array_equal(split, np.load(yp))


def test_without_the_flag_the_error_says_how(plans, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, h.inputs(320))
    out = tmp_path / "y.npy"
    err = h.fails(1, "run", f"--loadEngine={plans['dynamic']}", f"--loadInputs=input:{x}",
                  f"--exportOutput={out}")
    assert "320x6" in err and "1x6" in err and "32x6" in err
    assert "--splitbatch" in err
    assert not out.exists()


def make_row_mixing(path, weights):
    """The MLP, then Softmax over axis 0 (the batch), named softmax_over_batch."""
    w = weights
    inits = [numpy_helper.from_array(v, k) for k, v in w.items()]
    nodes = [helper.make_node("Gemm", ["input", "w1", "b1"], ["h"], transB=1, name="fc1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu1"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["logits"], transB=1, name="fc2"),
             helper.make_node("Softmax", ["logits"], ["output"], axis=0, name="softmax_over_batch")]
    graph = helper.make_graph(
        nodes, "row_mixing",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", h.IN_FEATURES])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", h.OUT_FEATURES])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", h.OPSET)])
    model.ir_version = 8
    onnx.save(model, path)


def test_a_row_mixing_model_is_refused_naming_the_layer(models, tmp_path):
    onnx_path, plan = tmp_path / "mix.onnx", tmp_path / "mix.plan"
    make_row_mixing(onnx_path, models["weights"])
    h.ok("build", "--backend=cpu", f"--onnx={onnx_path}", f"--saveEngine={plan}",
         "--minShapes=input:1x6", "--optShapes=input:8x6", "--maxShapes=input:32x6")
    x, out = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(x, h.inputs(320))
    err = h.fails(1, "run", f"--loadEngine={plan}", f"--loadInputs=input:{x}",
                  f"--exportOutput={out}", "--splitBatch")
    assert "--splitbatch" in err
    assert "softmax_over_batch" in err
    assert "axis 0, the batch" in err
    assert not out.exists()
    # Within the profile the plan runs as before, with or without the flag's help.
    np.save(x, h.inputs(8))
    h.ok("run", f"--loadEngine={plan}", f"--loadInputs=input:{x}", f"--exportOutput={out}")


def test_a_plan_from_before_asks_for_a_rebuild(plans, tmp_path):
    header, meta, weights, blob = plan_file.read(plans["dynamic"].read_bytes())
    assert meta["row_independence"] == {"independent": True, "layer": "", "reason": ""}
    del meta["row_independence"]
    old = tmp_path / "old.plan"
    old.write_bytes(plan_file.write(header, meta, weights, blob))
    x, out = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(x, h.inputs(8))
    h.ok("run", f"--loadEngine={old}", f"--loadInputs=input:{x}", f"--exportOutput={out}")
    out.unlink()
    np.save(x, h.inputs(320))
    err = h.fails(1, "run", f"--loadEngine={old}", f"--loadInputs=input:{x}",
                  f"--exportOutput={out}", "--splitBatch")
    assert "rebuild to enable split batch" in err
    assert not out.exists()


def test_a_malformed_record_is_refused_at_load(plans, tmp_path):
    header, meta, weights, blob = plan_file.read(plans["dynamic"].read_bytes())
    meta["row_independence"] = {"independent": "yes", "layer": "", "reason": ""}
    bad = tmp_path / "bad.plan"
    bad.write_bytes(plan_file.write(header, meta, weights, blob))
    err = h.fails(1, "inspect", f"--loadEngine={bad}")
    assert "row_independence.independent" in err and "boolean" in err


def test_bench_split_batch(plans, tmp_path):
    times = tmp_path / "t.json"
    proc = h.ok("bench", f"--loadEngine={plans['dynamic']}", "--shapes=input:320x6", "--splitBatch",
                "--warmUp=0", "--duration=0", "--iterations=3", f"--exportTimes={times}")
    assert "320x6" in proc.stdout
    err = h.fails(1, "bench", f"--loadEngine={plans['dynamic']}", "--shapes=input:320x6",
                  "--warmUp=0", "--duration=0", "--iterations=3")
    assert "--splitbatch" in err
