"""Helpers for the CLI tests: tiny ONNX MLPs built with onnx.helper, their float64 reference,
and a runner for the mlprt binary."""
import os
import subprocess
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
IN_FEATURES = 6
HIDDEN = 5
OUT_FEATURES = 4


def mlprt_bin():
    path = os.environ.get("MLPRT_BIN")
    assert path, "MLPRT_BIN must point at the mlprt binary (ctest sets it)"
    assert Path(path).is_file(), f"MLPRT_BIN={path} does not exist"
    return path


def run(*args, check_ok=None):
    """Runs mlprt; returns CompletedProcess with text stdout/stderr."""
    proc = subprocess.run([mlprt_bin(), *map(str, args)], capture_output=True, text=True,
                          timeout=120)
    assert "Segmentation" not in proc.stderr and proc.returncode >= 0, \
        f"mlprt crashed (rc {proc.returncode}): {proc.stderr}"
    if check_ok:
        assert proc.returncode == 0, f"mlprt {' '.join(map(str, args))} failed:\n{proc.stderr}"
    return proc


def ok(*args):
    return run(*args, check_ok=True)


def fails(exit_code, *args):
    """Runs mlprt expecting `exit_code`; returns lowercased stderr after checking its prefix."""
    proc = run(*args)
    assert proc.returncode == exit_code, \
        f"expected exit {exit_code}, got {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert proc.stderr.startswith("mlprt: error: "), proc.stderr
    return proc.stderr.lower()


def mlp_weights(seed=0, in_features=IN_FEATURES, hidden=HIDDEN, out_features=OUT_FEATURES):
    rng = np.random.default_rng(seed)
    return {
        "w1": rng.standard_normal((hidden, in_features)).astype(np.float32),
        "b1": rng.standard_normal(hidden).astype(np.float32),
        "w2": rng.standard_normal((out_features, hidden)).astype(np.float32),
        "b2": rng.standard_normal(out_features).astype(np.float32),
    }


def make_mlp(path, batch, weights=None, tail_op=None, second_input=False, opset=OPSET):
    """Gemm(transB) -> [Add mask] -> Relu -> Gemm(transB) [-> tail_op]; `batch` is an int or a
    symbolic dim name. Saves the model at `path` and returns its weights."""
    w = weights or mlp_weights()
    hidden, in_features = w["w1"].shape
    out_features = w["w2"].shape[0]
    inits = [numpy_helper.from_array(v, k) for k, v in w.items()]
    nodes = [helper.make_node("Gemm", ["input", "w1", "b1"], ["h"], transB=1, name="fc1")]
    relu_in = "h"
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, in_features])]
    if second_input:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, [batch, hidden]))
        nodes.append(helper.make_node("Add", ["h", "mask"], ["hm"], name="add_mask"))
        relu_in = "hm"
    nodes.append(helper.make_node("Relu", [relu_in], ["r"], name="relu1"))
    last = "output" if tail_op is None else "logits"
    nodes.append(helper.make_node("Gemm", ["r", "w2", "b2"], [last], transB=1, name="fc2"))
    if tail_op is not None:
        nodes.append(helper.make_node(tail_op, ["logits"], ["output"], name="tail"))
    graph = helper.make_graph(
        nodes, "tiny_mlp", inputs,
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, out_features])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="mlprt-cli-tests")
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return w


def reference(w, x, mask=None):
    """The MLP in float64 from the same float32 weights."""
    x = np.asarray(x, dtype=np.float64)
    h = x @ w["w1"].astype(np.float64).T + w["b1"].astype(np.float64)
    if mask is not None:
        h = h + np.asarray(mask, dtype=np.float64)
    r = np.maximum(h, 0.0)
    return r @ w["w2"].astype(np.float64).T + w["b2"].astype(np.float64)


def cpu_has_bf16():
    """Whether this CPU has the cpu backend's bf16 kernels (AVX-512 BF16 or AMX)."""
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    return " avx512_bf16" in flags or " amx_bf16" in flags


def rel_l2(actual, expected):
    expected = np.asarray(expected, dtype=np.float64)
    diff = np.linalg.norm(np.asarray(actual, dtype=np.float64) - expected)
    return diff / max(np.linalg.norm(expected), 1e-30)


def inputs(rows, seed=1, features=IN_FEATURES):
    return np.random.default_rng(seed).standard_normal((rows, features)).astype(np.float32)


def shape_flag(name, rows, features=IN_FEATURES):
    return f"{name}:{rows}x{features}"


def run_plan(plan, x, tmp_path, *extra, name="x.npy", out_name="y.npy"):
    """`mlprt run` on `x` (saved as .npy): the exported output and the finished process."""
    xp, yp = tmp_path / name, tmp_path / out_name
    np.save(xp, x)
    proc = ok("run", f"--loadEngine={plan}", f"--loadInputs=input:{xp}", f"--exportOutput={yp}",
              *extra)
    return np.load(yp), proc
