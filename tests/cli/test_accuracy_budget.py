"""mlprt build --accuracyBudget / --calibrationInputs: the chosen mix is within the budget on
held-out inputs, the plan records it (inspect text and --json), and every bad request is refused
(budget, calibration files, shapes, profiles, an unreachable budget)."""
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import cli_helpers as h

DIMS = [64, 128, 128, 16]


def make_model(path):
    """Gemm(transB)+Relu chain with a dynamic batch; returns the weights for the reference."""
    rng = np.random.default_rng(0)
    nodes, inits, x, weights = [], [], "input", []
    for i, (k, n) in enumerate(zip(DIMS[:-1], DIMS[1:])):
        w = (rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
        b = (0.1 * rng.standard_normal(n)).astype(np.float32)
        weights.append((w, b))
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        y = "output" if i == len(DIMS) - 2 else f"fc{i}_out"
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [y], name=f"fc{i}", transB=1))
        if i < len(DIMS) - 2:
            nodes.append(helper.make_node("Relu", [y], [f"act{i}"], name=f"relu{i}"))
            y = f"act{i}"
        x = y
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", DIMS[0]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", DIMS[-1]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return weights


def reference(weights, x):
    y = x.astype(np.float64)
    for i, (w, b) in enumerate(weights):
        y = y @ w.astype(np.float64).T + b
        if i < len(weights) - 1:
            y = np.maximum(y, 0)
    return y


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("budget")
    weights = make_model(d / "mlp.onnx")
    calib = np.random.default_rng(1).uniform(-1, 1, (128, DIMS[0])).astype(np.float32)
    np.save(d / "calib.npy", calib)
    return {"dir": d, "onnx": d / "mlp.onnx", "weights": weights, "calib": d / "calib.npy"}


def build_args(model, out, *extra):
    return ["build", "--backend=cpu", f"--onnx={model['onnx']}", f"--saveEngine={out}",
            "--minShapes=input:1x64", "--optShapes=input:128x64", "--maxShapes=input:256x64",
            "--bf16", "--builderOptimizationLevel=0", *extra]


def held_out_error(model, plan, tmp_path):
    x = np.random.default_rng(7).uniform(-1, 1, (200, DIMS[0])).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    h.ok("run", f"--loadEngine={plan}", f"--loadInputs=input:{tmp_path / 'x.npy'}",
         f"--exportOutput=output:{tmp_path / 'y.npy'}")
    return h.rel_l2(np.load(tmp_path / "y.npy"), reference(model["weights"], x))


@pytest.mark.parametrize("budget", [1e-2, 3e-3])
def test_budget_mix_is_within_budget_on_held_out_inputs(model, tmp_path, budget):
    plan = tmp_path / "m.plan"
    proc = h.ok(*build_args(model, plan, f"--accuracyBudget={budget}",
                            f"--calibrationInputs={model['calib']}"))
    log = proc.stdout + proc.stderr
    assert "accuracy budget" in log and "chose" in log, log
    info = json.loads(h.ok("inspect", f"--loadEngine={plan}", "--json").stdout)
    acc = info["accuracy"]
    assert acc["budget"] == pytest.approx(budget)
    assert acc["calibration"].endswith("calib.npy")
    assert 0 <= acc["fp32_error"] <= acc["error"] <= budget
    dense = [layer for layer in info["layers"] if layer["type"] == "Dense"]
    assert len(dense) == 3
    for layer in dense:
        chosen = acc["layers"][layer["name"]]["precision"]
        assert chosen in ("fp32", "bf16")
        assert layer["precision"].startswith(chosen), (layer, chosen)  # the engine runs it so
        candidates = acc["layers"][layer["name"]]["candidates"]
        if h.cpu_has_bf16():
            assert "bf16" in candidates  # each layer was measured
        else:  # nothing to mix on this CPU, and the build says why
            assert list(candidates) == ["fp32"], candidates
            assert f"layer '{layer['name']}' in bf16: not available" in log, log
        assert 0 <= layer["measured_error"] <= budget
    assert held_out_error(model, plan, tmp_path) <= budget
    text = h.ok("inspect", f"--loadEngine={plan}").stdout
    assert "[measured error" in text and "Accuracy budget:" in text


def test_tight_budget_keeps_every_layer_fp32(model, tmp_path):
    """Above the fp32 floor (~1e-7) but below any bf16 layer's error (~1e-3): all fp32."""
    plan = tmp_path / "t.plan"
    h.ok(*build_args(model, plan, "--accuracyBudget=1e-5"))  # random calibration data
    info = json.loads(h.ok("inspect", f"--loadEngine={plan}", "--json").stdout)
    acc = info["accuracy"]
    assert "random data" in acc["calibration"]
    assert all(v["precision"] == "fp32" for v in acc["layers"].values()), acc
    if h.cpu_has_bf16():
        assert all(v["candidates"]["bf16"]["error"] > 1e-5 for v in acc["layers"].values()), acc
    else:  # no bf16 candidates on this CPU
        assert all(list(v["candidates"]) == ["fp32"] for v in acc["layers"].values()), acc
    assert held_out_error(model, plan, tmp_path) <= 1e-5


def test_unreachable_budget_says_the_fp32_error(model, tmp_path):
    out = tmp_path / "u.plan"
    err = h.fails(1, *build_args(model, out, "--accuracyBudget=1e-12"))
    assert "unreachable" in err and "every layer in fp32" in err, err
    assert not out.exists()


@pytest.mark.parametrize("value", ["0", "-1e-3", "abc", "nan", "inf", ""])
def test_bad_budget_is_a_usage_error(model, tmp_path, value):
    out = tmp_path / "b.plan"
    err = h.fails(2, *build_args(model, out, f"--accuracyBudget={value}")) if value else \
        h.fails(2, *build_args(model, out, "--accuracyBudget"))
    if value:
        assert "--accuracybudget" in err and "must be a number > 0" in err, err
    assert not out.exists()


def test_calibration_refusals(model, tmp_path):
    out = tmp_path / "c.plan"
    d = tmp_path
    np.save(d / "ints.npy", np.ones((8, DIMS[0]), np.int64))
    np.save(d / "narrow.npy", np.ones((8, DIMS[0] - 1), np.float32))
    np.save(d / "rank.npy", np.ones((DIMS[0],), np.float32))
    np.save(d / "big.npy", np.ones((300, DIMS[0]), np.float32))
    cases = [
        (f"--calibrationInputs={d / 'missing.npy'}", ["missing.npy"]),
        (f"--calibrationInputs={d / 'ints.npy'}", ["<i8", "float32"]),
        (f"--calibrationInputs={d / 'narrow.npy'}", ["has shape", "8x63"]),
        (f"--calibrationInputs={d / 'rank.npy'}", ["has shape"]),
        (f"--calibrationInputs={d / 'big.npy'}", ["match no optimization profile", "300x64"]),
        (f"--calibrationInputs=nope:{d / 'narrow.npy'}", ["no input named 'nope'"]),
        (f"--calibrationInputs={model['calib']},{model['calib']}", ["given twice"]),
    ]
    for flag, words in cases:
        err = h.fails(1, *build_args(model, out, "--accuracyBudget=1e-2", flag))
        for word in words:
            assert word.lower() in err, (flag, word, err)
        assert not out.exists()


def test_calibration_without_budget_and_with_layer_precisions_refused(model, tmp_path):
    out = tmp_path / "l.plan"
    err = h.fails(1, *build_args(model, out, f"--calibrationInputs={model['calib']}"))
    assert "only with --accuracybudget" in err
    err = h.fails(1, *build_args(model, out, "--accuracyBudget=1e-2",
                                 "--precisionConstraints=obey", "--layerPrecisions=fc0:bf16"))
    assert "give one of them" in err
    assert not out.exists()
