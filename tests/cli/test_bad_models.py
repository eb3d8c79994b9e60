"""Issue 4's bad models: each is made with onnx.helper, `mlprt build` must exit 1 with a message
that names what is wrong, before any build work, and leave no plan file behind."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import cli_helpers as h

OPSET = 13


def _save(path, nodes, inputs, outputs, inits=(), opset=OPSET, check=False):
    graph = helper.make_graph(nodes, "bad", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="mlprt-bad-model-tests")
    path.write_bytes(model.SerializeToString())  # no checker: many of these are invalid on purpose
    return path


def _vi(name, dims, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, dims)


def _raw_tensor(name, dtype, dims):
    """A TensorProto with no data checks (onnx.helper would refuse the bad ones)."""
    t = TensorProto()
    t.name, t.data_type = name, dtype
    t.dims.extend(dims)
    return t


def _w(name, shape, seed=0):
    return numpy_helper.from_array(np.random.default_rng(seed).standard_normal(shape)
                                   .astype(np.float32), name)


def _build_fails(tmp_path, model, *flags):
    plan = tmp_path / "out.plan"
    err = h.fails(1, "build", f"--onnx={model}", f"--saveEngine={plan}", *flags)
    assert not plan.exists(), "a failed build left a plan file"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.plan")], \
        "a failed build left a temporary file"
    return err


def test_unsupported_op_names_op_node_opset_and_supported_list(tmp_path):
    m = _save(tmp_path / "m.onnx",
              [helper.make_node("Gemm", ["x", "w"], ["h"], transB=1, name="fc"),
               helper.make_node("Cos", ["h"], ["y"], name="the_cos")],
              [_vi("x", [2, 4])], [_vi("y", [2, 3])], [_w("w", (3, 4))])
    err = _build_fails(tmp_path, m)
    for part in ("'cos'", "the_cos", "opset 13", "supported", "gemm", "relu"):
        assert part in err, f"{part!r} not in: {err}"


def test_unsupported_dtype_names_tensor_and_type(tmp_path):
    m = _save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"], name="r")],
              [_vi("x", [2, 4], TensorProto.STRING)], [_vi("y", [2, 4], TensorProto.STRING)])
    err = _build_fails(tmp_path, m)
    assert "'x'" in err and "string" in err and "float" in err, err


def test_unsupported_initializer_dtype(tmp_path):
    w = _raw_tensor("w", TensorProto.COMPLEX64, [4, 3])
    w.float_data.extend([0.0] * 24)
    m = _save(tmp_path / "m.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
              [_vi("x", [2, 4])], [_vi("y", [2, 3])], [w])
    err = _build_fails(tmp_path, m)
    assert "'w'" in err and "complex64" in err and "supported" in err, err


def test_dynamic_dim_without_profile(tmp_path):
    m = _save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"], name="r")],
              [_vi("x", ["batch", 4])], [_vi("y", ["batch", 4])])
    err = _build_fails(tmp_path, m)
    assert "'x'" in err and "dynamic" in err and "--shapes" in err, err


def test_unresolvable_shape(tmp_path):
    """Inner dims that disagree: 2x4 @ 5x3 cannot be resolved to a shape."""
    m = _save(tmp_path / "m.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
              [_vi("x", [2, 4])], [_vi("y", [2, 3])], [_w("w", (5, 3))])
    err = _build_fails(tmp_path, m)
    assert "mm" in err and "2x4" in err and "5x3" in err, err


def test_missing_initializer(tmp_path):
    m = _save(tmp_path / "m.onnx",
              [helper.make_node("Gemm", ["x", "w_missing"], ["y"], transB=1, name="fc")],
              [_vi("x", [2, 4])], [_vi("y", [2, 3])])
    err = _build_fails(tmp_path, m)
    assert "w_missing" in err and "fc" in err, err


def test_cycle(tmp_path):
    m = _save(tmp_path / "m.onnx",
              [helper.make_node("Add", ["x", "b"], ["a"], name="n1"),
               helper.make_node("Relu", ["a"], ["b"], name="n2"),
               helper.make_node("Relu", ["a"], ["y"], name="n3")],
              [_vi("x", [2, 4])], [_vi("y", [2, 4])])
    err = _build_fails(tmp_path, m)
    assert "cycle" in err and "n1" in err and "n2" in err, err


def test_duplicate_tensor_names(tmp_path):
    m = _save(tmp_path / "m.onnx",
              [helper.make_node("Relu", ["x"], ["t"], name="first"),
               helper.make_node("Relu", ["x"], ["t"], name="second"),
               helper.make_node("Relu", ["t"], ["y"], name="third")],
              [_vi("x", [2, 4])], [_vi("y", [2, 4])])
    err = _build_fails(tmp_path, m)
    assert "'t'" in err and "first" in err and "second" in err and "unique" in err, err


def test_shapes_flag_names_unknown_input(tmp_path):
    m = _save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"], name="r")],
              [_vi("x", ["batch", 4])], [_vi("y", ["batch", 4])])
    err = _build_fails(tmp_path, m, "--shapes=not_an_input:2x4")
    assert "not_an_input" in err and "inputs are: x" in err, err


def test_shapes_flag_names_an_output(tmp_path):
    m = _save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"], name="r")],
              [_vi("x", ["batch", 4])], [_vi("y", ["batch", 4])])
    err = _build_fails(tmp_path, m, "--shapes=x:2x4,y:2x4")
    assert "'y'" in err and "not an input" in err, err


def _external_model(tmp_path, location, offset=0, length=48):
    w = _raw_tensor("w", TensorProto.FLOAT, [4, 3])
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    return _save(tmp_path / "m.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                 [_vi("x", [2, 4])], [_vi("y", [2, 3])], [w])


def test_external_data_outside_the_model_folder(tmp_path):
    secret = tmp_path.parent / "outside_weights.bin"
    secret.write_bytes(np.zeros(12, np.float32).tobytes())
    m = _external_model(tmp_path, "../outside_weights.bin")
    err = _build_fails(tmp_path, m)
    assert "outside_weights.bin" in err and "outside" in err and "folder" in err, err


def test_external_data_absolute_path(tmp_path):
    m = _external_model(tmp_path, "/etc/passwd")
    err = _build_fails(tmp_path, m)
    assert "/etc/passwd" in err, err


def test_external_data_past_the_file_end(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.zeros(12, np.float32).tobytes())  # 48 bytes
    m = _external_model(tmp_path, "w.bin", offset=16, length=48)
    err = _build_fails(tmp_path, m)
    assert "w.bin" in err and "48" in err and ("past" in err or "end" in err or "beyond" in err), err


def test_dims_whose_product_overflows(tmp_path):
    big = 1 << 40
    m = _save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"], name="r")],
              [_vi("x", [big, big, 16])], [_vi("y", [big, big, 16])])
    err = _build_fails(tmp_path, m)
    assert "1099511627776x1099511627776x16" in err and ("overflow" in err or "64 bits" in err), err


def test_dims_that_exceed_memory(tmp_path):
    """2^20 x 2^20 floats (4 TiB): refused with the size, before anything is allocated."""
    m = _save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"], name="r")],
              [_vi("x", [1 << 20, 1 << 20])], [_vi("y", [1 << 20, 1 << 20])])
    err = _build_fails(tmp_path, m)
    assert "'x'" in err and ("memory" in err or "too large" in err or "exceeds" in err), err


def test_initializer_dims_exceed_its_data(tmp_path):
    w = _raw_tensor("w", TensorProto.FLOAT, [1 << 30, 1 << 30])
    m = _save(tmp_path / "m.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
              [_vi("x", [2, 4])], [_vi("y", [2, 3])], [w])
    err = _build_fails(tmp_path, m)
    assert "'w'" in err, err


@pytest.mark.parametrize("data", [b"", b"\x00\x01garbage", b"\x08" * 7])
def test_not_an_onnx_file(tmp_path, data):
    m = tmp_path / "m.onnx"
    m.write_bytes(data)
    err = _build_fails(tmp_path, m)
    assert "m.onnx" in err, err
