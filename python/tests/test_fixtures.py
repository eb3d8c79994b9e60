import json

import numpy as np
import onnx
import pytest

from mlprt_tools import fixtures
from mlprt_tools.reference import run_onnx_float64

ALL_PAIRS = {(opset, dynamic) for opset in range(11, 18) for dynamic in (False, True)}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fixtures")
    assert fixtures.main(["--out", str(folder), "--count", "14", "--seed", "3", "--quiet"]) == 0
    with open(folder / "index.json") as f:
        return folder, json.load(f)


def test_index_covers_every_opset_and_batch_kind(generated):
    _, index = generated
    assert index["format"] == "mlprt-fixtures" and index["count"] == 14
    entries = index["models"]
    assert {(e["opset"], e["dynamic"]) for e in entries} == ALL_PAIRS
    assert len({e["name"] for e in entries}) == 14


def test_structures_are_varied_and_in_range(generated):
    _, index = generated
    layers = [layer for e in index["models"] for layer in e["layers"]]
    assert all(1 <= len(e["layers"]) <= 4 for e in index["models"])
    assert all(1 <= layer["in"] <= 300 and 1 <= layer["out"] <= 300 for layer in layers)
    assert {layer["bias"] for layer in layers} == {True, False}
    for e in index["models"]:
        chain = [(a["out"], b["in"]) for a, b in zip(e["layers"], e["layers"][1:])]
        assert all(x == y for x, y in chain)


def test_files_agree_with_the_index(generated):
    folder, index = generated
    for e in index["models"]:
        model = onnx.load(str(folder / e["onnx"]))
        onnx.checker.check_model(model)
        assert model.opset_import[0].version == e["opset"]
        (graph_input,) = model.graph.input
        assert graph_input.name == e["input_name"] == "input"
        batch_dim = graph_input.type.tensor_type.shape.dim[0]
        if e["dynamic"]:
            assert batch_dim.dim_param == "batch"
        else:
            assert batch_dim.dim_value == e["shape"][0]
        x = np.load(folder / e["input"])
        ref = np.load(folder / e["reference"])
        assert x.dtype == np.float32 and list(x.shape) == e["shape"]
        assert ref.dtype == np.float64 and list(ref.shape) == e["output_shape"]
        assert np.any(ref != 0)
        np.testing.assert_array_equal(run_onnx_float64(str(folder / e["onnx"]), {"input": x})["output"], ref)


def test_reference_is_independent_of_the_onnx_file(generated):
    """Recompute one fixture from its ONNX weights with plain numpy, without the reference."""
    folder, index = generated
    e = max(index["models"], key=lambda f: len(f["layers"]))
    model = onnx.load(str(folder / e["onnx"]))
    weights = {t.name: onnx.numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    h = np.load(folder / e["input"]).astype(np.float64)
    for node in model.graph.node:
        if node.op_type == "Gemm":
            w = weights[node.input[1]]
            h = h @ (w.T if any(a.name == "transB" and a.i for a in node.attribute) else w)
            if len(node.input) > 2:
                h = h + weights[node.input[2]]
        elif node.op_type == "MatMul":
            h = h @ weights[node.input[1]]
        elif node.op_type == "Relu":
            h = np.maximum(h, 0)
        else:
            assert node.op_type == "Flatten"
    np.testing.assert_allclose(h, np.load(folder / e["reference"]), rtol=1e-12, atol=1e-12)


def test_same_seed_same_fixtures_new_seed_new_ones(generated, tmp_path):
    _, index = generated
    again = fixtures.generate(str(tmp_path / "a"), 3, 3, log=lambda _: None)
    other = fixtures.generate(str(tmp_path / "b"), 3, 4, log=lambda _: None)
    assert again["models"] == index["models"][:3]
    assert [e["layers"] for e in other["models"]] != [e["layers"] for e in again["models"]]


def test_bad_count_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as info:
        fixtures.main(["--out", str(tmp_path), "--count", "0"])
    assert info.value.code == 2
