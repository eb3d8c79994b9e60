import io
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from mlprt_tools import reference
from mlprt_tools.export import rel_l2
from mlprt_tools.model import build_mlp, default_arch
from mlprt_tools.reference import OnnxReferenceError, run_model_float64, run_onnx_float64

# The reference and torch-in-float64 use the same float32 weights; only summation order differs.
MAX_REL_L2 = 1e-9


def export_to_model(model, example, opset, dynamic):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, example, buffer, input_names=["input"], output_names=["output"],
                          opset_version=opset,
                          dynamic_axes={"input": {0: "b"}, "output": {0: "b"}} if dynamic else None)
    return onnx.load_from_string(buffer.getvalue())


@pytest.mark.parametrize("hidden, activation, bias, opset, dynamic", [
    ([32], "relu", True, 13, False),
    ([32], "relu", False, 11, True),
    ([100, 50, 7], "relu", True, 17, True),
    ([], "relu", True, 12, False),
    ([16, 16], "tanh", True, 14, True),
    ([16], "sigmoid", False, 15, False),
    ([16], "leaky_relu", True, 16, True),
    ([16], "gelu", True, 13, False),
])
def test_reference_matches_torch_float64(hidden, activation, bias, opset, dynamic):
    torch.manual_seed(len(hidden) * 100 + opset)
    model = build_mlp(default_arch(hidden, activation, input_size=40, num_classes=9, bias=bias))
    model.eval()
    onnx_model = export_to_model(model, torch.zeros(3, 40), opset, dynamic)
    batch = 11 if dynamic else 3
    x = np.random.default_rng(opset).standard_normal((batch, 40)).astype(np.float32)
    got = run_model_float64(onnx_model, {"input": x})["output"]
    with torch.no_grad():
        expected = model.double()(torch.from_numpy(x.astype(np.float64))).numpy()
    assert got.dtype == np.float64 and got.shape == (batch, 9)
    # GELU's export holds 1/sqrt(2) and 0.5 as float32 constants, torch float64 uses exact ones.
    assert rel_l2(got, expected) <= (1e-6 if activation == "gelu" else MAX_REL_L2)


def make_model(nodes, inputs, outputs, initializers=(), opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def tensor_info(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


@pytest.mark.parametrize("trans_a, trans_b, alpha, beta, c_shape", [
    (0, 0, 1.0, 1.0, (5,)),
    (1, 0, 0.5, 2.0, (3, 5)),
    (0, 1, 1.0, -1.0, (3, 1)),
    (1, 1, 2.0, 0.25, (1,)),
    (0, 0, 1.5, 1.0, None),
])
def test_gemm_attributes(trans_a, trans_b, alpha, beta, c_shape):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 3) if trans_a else (3, 4)).astype(np.float32)
    b = rng.standard_normal((5, 4) if trans_b else (4, 5)).astype(np.float32)
    inits = [numpy_helper.from_array(b, "B")]
    names = ["A", "B"]
    if c_shape is not None:
        c = rng.standard_normal(c_shape).astype(np.float32)
        inits.append(numpy_helper.from_array(c, "C"))
        names.append("C")
    node = helper.make_node("Gemm", names, ["Y"], transA=trans_a, transB=trans_b, alpha=alpha, beta=beta)
    model = make_model([node], [tensor_info("A", list(a.shape))], [tensor_info("Y", [3, 5])], inits)
    got = run_model_float64(model, {"A": a})["Y"]
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    expected = alpha * np.einsum("ij,jk->ik", a64.T if trans_a else a64, b64.T if trans_b else b64)
    if c_shape is not None:
        expected = expected + beta * np.broadcast_to(c.astype(np.float64), (3, 5))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_matmul_add_relu_identity_dropout_chain():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((6, 4)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    nodes = [helper.make_node("Identity", ["x"], ["x1"]),
             helper.make_node("MatMul", ["x1", "W"], ["m"]),
             helper.make_node("Add", ["m", "bias"], ["s"]),
             helper.make_node("Dropout", ["s"], ["d"]),
             helper.make_node("Relu", ["d"], ["y"])]
    model = make_model(nodes, [tensor_info("x", ["n", 6])], [tensor_info("y", ["n", 4])],
                       [numpy_helper.from_array(w, "W"), numpy_helper.from_array(bias, "bias")])
    x = rng.standard_normal((7, 6)).astype(np.float32)
    got = run_model_float64(model, {"x": x})["y"]
    expected = np.maximum(x.astype(np.float64) @ w.astype(np.float64) + bias, 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert (got == 0).any() and (got > 0).any()


@pytest.mark.parametrize("axis, expected_shape", [(0, (1, 60)), (1, (2, 30)), (2, (6, 10)), (-1, (6, 10)), (3, (60, 1))])
def test_flatten_axis(axis, expected_shape):
    x = np.arange(60, dtype=np.float32).reshape(2, 3, 10)
    model = make_model([helper.make_node("Flatten", ["x"], ["y"], axis=axis)],
                       [tensor_info("x", [2, 3, 10])], [tensor_info("y", None)])
    got = run_model_float64(model, {"x": x})["y"]
    assert got.shape == expected_shape
    np.testing.assert_array_equal(got.reshape(-1), np.arange(60))


@pytest.mark.parametrize("shape, allowzero, x_shape, expected", [
    ([0, -1], 0, (2, 3, 4), (2, 12)),
    ([-1, 4], 0, (2, 3, 4), (6, 4)),
    ([3, 0, 2], 0, (2, 2, 3), (3, 2, 2)),
    ([0, 5], 1, (0, 5), (0, 5)),
])
def test_reshape(shape, allowzero, x_shape, expected):
    x = np.arange(int(np.prod(x_shape)), dtype=np.float32).reshape(x_shape)
    nodes = [helper.make_node("Constant", [], ["shape"],
                              value=numpy_helper.from_array(np.array(shape, dtype=np.int64))),
             helper.make_node("Reshape", ["x", "shape"], ["y"], allowzero=allowzero)]
    model = make_model(nodes, [tensor_info("x", list(x_shape))], [tensor_info("y", None)], opset=14)
    got = run_model_float64(model, {"x": x})["y"]
    assert got.shape == expected
    np.testing.assert_array_equal(got.reshape(-1), x.reshape(-1))


def test_reshape_bad_shape_is_an_error():
    nodes = [helper.make_node("Constant", [], ["shape"], value_ints=[7, -1]),
             helper.make_node("Reshape", ["x", "shape"], ["y"])]
    model = make_model(nodes, [tensor_info("x", [2, 3])], [tensor_info("y", None)])
    with pytest.raises(OnnxReferenceError, match=r"cannot reshape \[2, 3\] to \[7, -1\]"):
        run_model_float64(model, {"x": np.zeros((2, 3), np.float32)})


def test_constant_value_floats_and_sigmoid_tanh():
    nodes = [helper.make_node("Constant", [], ["c"], value_floats=[1.0, -2.0, 0.5]),
             helper.make_node("Mul", ["x", "c"], ["m"]),
             helper.make_node("Sigmoid", ["m"], ["s"]),
             helper.make_node("Tanh", ["s"], ["y"])]
    model = make_model(nodes, [tensor_info("x", [2, 3])], [tensor_info("y", [2, 3])])
    x = np.array([[0.1, 0.2, 0.3], [-1.0, 0.0, 4.0]], dtype=np.float32)
    got = run_model_float64(model, {"x": x})["y"]
    m = x.astype(np.float64) * np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(got, np.tanh(1.0 / (1.0 + np.exp(-m))), rtol=1e-14)


def test_unknown_op_names_op_and_node():
    node = helper.make_node("Cos", ["x"], ["y"], name="head")
    model = make_model([node], [tensor_info("x", [1, 3])], [tensor_info("y", [1, 3])])
    with pytest.raises(OnnxReferenceError, match=r"node 'head' \(Cos\).*'Cos' is not supported.*Gemm"):
        run_model_float64(model, {"x": np.zeros((1, 3), np.float32)})


def test_input_shape_and_name_checks():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])],
                       [tensor_info("x", ["n", 3])], [tensor_info("y", ["n", 3])])
    with pytest.raises(OnnxReferenceError, match=r"input 'x' has shape \[2, 4\], the model declares \['\?', 3\]"):
        run_model_float64(model, {"x": np.zeros((2, 4), np.float32)})
    with pytest.raises(OnnxReferenceError, match="input 'x' not given"):
        run_model_float64(model, {"input": np.zeros((2, 3), np.float32)})


def test_training_mode_dropout_is_refused():
    nodes = [helper.make_node("Constant", [], ["t"], value=helper.make_tensor("t", TensorProto.BOOL, [], [1])),
             helper.make_node("Dropout", ["x", "", "t"], ["y"])]
    model = make_model(nodes, [tensor_info("x", [1, 3])], [tensor_info("y", [1, 3])])
    with pytest.raises(OnnxReferenceError, match="training_mode"):
        run_model_float64(model, {"x": np.zeros((1, 3), np.float32)})


def test_cli_writes_float64_npy(tmp_path):
    torch.manual_seed(0)
    model = build_mlp(default_arch([8], input_size=5, num_classes=3)).eval()
    onnx_path = tmp_path / "m.onnx"
    onnx.save(export_to_model(model, torch.zeros(2, 5), 13, True), onnx_path)
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    rc = reference.main(["--onnx", str(onnx_path), "--input", str(tmp_path / "x.npy"),
                         "--output", str(tmp_path / "ref.npy")])
    assert rc == 0
    ref = np.load(tmp_path / "ref.npy")
    assert ref.dtype == np.float64
    np.testing.assert_array_equal(ref, run_onnx_float64(str(onnx_path), {"input": x})["output"])
    with torch.no_grad():
        assert rel_l2(ref, model.double()(torch.from_numpy(x.astype(np.float64))).numpy()) <= MAX_REL_L2


def test_cli_missing_model(tmp_path, capsys):
    rc = reference.main(["--onnx", str(tmp_path / "none.onnx"), "--input", "x.npy", "--output", "y.npy"])
    assert rc == 1
    assert "mlprt_tools.reference: error:" in capsys.readouterr().err
