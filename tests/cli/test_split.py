"""ONNX Split (issue 14: gMLP's `h.chunk(2, dim=-1)`, which the torch 2.x dynamo exporter emits
as an opset-18 Split with num_outputs) through `mlprt build` / `run` / `inspect`: lowered to
Slice layers, computed as the float64 reference, and clear errors where the part sizes cannot
be known at build time or do not fit the axis."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import cli_helpers as h


def _save(path, nodes, inputs, outputs, inits, opset):
    graph = helper.make_graph(nodes, "split", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="mlprt-split-tests")
    path.write_bytes(model.SerializeToString())  # onnx 1.12's checker stops at opset 17
    return path


def _vi(name, dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def _rng_weights(seed, **shapes):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s) * 0.5 for k, s in shapes.items()}


def _init(name, array, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(array, dtype), name)


def _layer_norm(x, g, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def _gmlp_like(path, w, split_node):
    """x[B,6,8] -> LayerNorm -> Linear 8->16 -> Relu -> Split into u, v on the last axis ->
    v: token mixing (Transpose, Linear 6->6, Transpose) -> u * v -> Linear 8->8 -> + x."""
    nodes = [
        helper.make_node("LayerNormalization", ["input", "g", "b"], ["n"], axis=-1),
        helper.make_node("MatMul", ["n", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h"]),
        split_node,
        helper.make_node("Transpose", ["v"], ["vt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["vt", "wt"], ["vm0"]),
        helper.make_node("Add", ["vm0", "bt"], ["vm"]),
        helper.make_node("Transpose", ["vm"], ["v2"], perm=[0, 2, 1]),
        helper.make_node("Mul", ["u", "v2"], ["gated"]),
        helper.make_node("MatMul", ["gated", "w2"], ["o"]),
        helper.make_node("Add", ["o", "input"], ["y"]),
    ]
    inits = [_init(k, v) for k, v in w.items()]
    if len(split_node.input) > 1:
        inits.append(_init(split_node.input[1], [8, 8], np.int64))
    return _save(path, nodes, [_vi("input", ["batch", 6, 8])], [_vi("y", ["batch", 6, 8])],
                 inits, opset=18)


def _gmlp_reference(w, x):
    x = x.astype(np.float64)
    hid = np.maximum(_layer_norm(x, w["g"], w["b"]) @ w["w1"] + w["b1"], 0)
    u, v = hid[..., :8], hid[..., 8:]
    v2 = np.swapaxes(np.swapaxes(v, 1, 2) @ w["wt"] + w["bt"], 1, 2)
    return (u * v2) @ w["w2"] + x


def _profile():
    return ["--minShapes=input:1x6x8", "--optShapes=input:4x6x8", "--maxShapes=input:16x6x8"]


@pytest.mark.parametrize("form", ["num_outputs", "split_input"])
def test_gmlp_like_split_runs_as_slices(form, tmp_path):
    w = _rng_weights(3, g=(8,), b=(8,), w1=(8, 16), b1=(16,), wt=(6, 6), bt=(6,), w2=(8, 8))
    if form == "num_outputs":  # torch 2.x dynamo: opset 18, num_outputs
        split = helper.make_node("Split", ["h"], ["u", "v"], axis=-1, num_outputs=2,
                                 name="chunk")
    else:  # opset 13+: constant sizes as the second input
        split = helper.make_node("Split", ["h", "sizes"], ["u", "v"], axis=2, name="chunk")
    model = _gmlp_like(tmp_path / "m.onnx", w, split)
    plan = tmp_path / "m.plan"
    h.ok("build", f"--onnx={model}", f"--saveEngine={plan}", *_profile())
    x = np.random.default_rng(4).standard_normal((5, 6, 8)).astype(np.float32)
    y, _ = h.run_plan(plan, x, tmp_path)
    assert y.shape == (5, 6, 8)
    assert h.rel_l2(y, _gmlp_reference(w, x)) <= 1e-5
    text = h.ok("inspect", f"--loadEngine={plan}").stdout
    slices = [line for line in text.splitlines() if " Slice " in line]
    assert len(slices) == 2 and all("chunk" in line for line in slices), text
    assert " Split " not in text, text


def _split_model(path, split_node, in_dims, out_dims, inits=(), opset=18):
    nodes = [helper.make_node("Relu", ["input"], ["r"]), split_node]
    outs = [_vi(name, dims) for name, dims in zip(split_node.output, out_dims)]
    return _save(path, nodes, [_vi("input", in_dims)], outs, inits, opset)


def test_num_outputs_uneven_last_part_is_smaller(tmp_path):
    """num_outputs=3 on an axis of 7: parts 3, 3, 1 (as torch.chunk), on a middle axis."""
    split = helper.make_node("Split", ["r"], ["a", "b", "c"], axis=1, num_outputs=3)
    model = _split_model(tmp_path / "m.onnx", split, [2, 7, 4],
                         [[2, 3, 4], [2, 3, 4], [2, 1, 4]])
    plan = tmp_path / "m.plan"
    h.ok("build", f"--onnx={model}", f"--saveEngine={plan}")
    x = np.random.default_rng(5).standard_normal((2, 7, 4)).astype(np.float32)
    xp = tmp_path / "x.npy"
    np.save(xp, x)
    outs = {n: tmp_path / f"{n}.npy" for n in "abc"}
    h.ok("run", f"--loadEngine={plan}", f"--loadInputs=input:{xp}",
         *[f"--exportOutput={n}:{p}" for n, p in outs.items()])
    r = np.maximum(x, 0)
    np.testing.assert_array_equal(np.load(outs["a"]), r[:, 0:3])
    np.testing.assert_array_equal(np.load(outs["b"]), r[:, 3:6])
    np.testing.assert_array_equal(np.load(outs["c"]), r[:, 6:7])


def _build_error(tmp_path, model, *flags):
    plan = tmp_path / "out.plan"
    err = h.fails(1, "build", f"--onnx={model}", f"--saveEngine={plan}", *flags)
    assert not plan.exists(), "a failed build left a plan file"
    return err


def test_sizes_not_summing_to_the_axis_are_refused(tmp_path):
    split = helper.make_node("Split", ["r", "sizes"], ["a", "b"], axis=1, name="bad_split")
    model = _split_model(tmp_path / "m.onnx", split, [2, 8], [[2, 3], [2, 3]],
                         [_init("sizes", [3, 3], np.int64)], opset=13)
    err = _build_error(tmp_path, model)
    for part in ("bad_split", "sum to 6", "size 8"):
        assert part in err, f"{part!r} not in: {err}"


def test_num_outputs_on_an_axis_of_unknown_size_is_refused(tmp_path):
    split = helper.make_node("Split", ["r"], ["a", "b"], axis=0, num_outputs=2, name="by_rows")
    model = _split_model(tmp_path / "m.onnx", split, ["batch", 4], [["n", 4], ["m", 4]])
    err = _build_error(tmp_path, model, "--minShapes=input:1x4", "--optShapes=input:4x4",
                       "--maxShapes=input:8x4")
    for part in ("by_rows", "axis 0", "not known at build time"):
        assert part in err, f"{part!r} not in: {err}"


def test_split_sizes_computed_at_run_time_are_refused(tmp_path):
    """Sizes read from a runtime tensor (here the input's values, cast to int64)."""
    nodes = [helper.make_node("Cast", ["input"], ["s"], to=TensorProto.INT64),
             helper.make_node("Split", ["input", "s"], ["a", "b"], axis=0, name="dyn_split")]
    model = _save(tmp_path / "m.onnx", nodes, [_vi("input", [2])],
                  [_vi("a", [1]), _vi("b", [1])], [], opset=13)
    err = _build_error(tmp_path, model)
    for part in ("dyn_split", "computed at run time", "'s'"):
        assert part in err, f"{part!r} not in: {err}"
