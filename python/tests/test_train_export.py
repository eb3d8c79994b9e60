"""Train tiny models on the real dataset, export them, and check the files against PyTorch."""

import re

import numpy as np
import onnx
import pytest
import torch

from mlprt_tools import data, export, predict, train
from mlprt_tools.model import load_checkpoint, load_model
from mlprt_tools.reference import OnnxReferenceError, run_onnx_float64

EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+)  loss \d+\.\d{4}  train acc \d+\.\d{2}%  "
                        r"test acc \d+\.\d{2}%  \d+\.\d s$")


def run_train(path, *extra):
    return train.main(["--out", str(path), "--epochs", "2", "--limit-train", "600", *extra])


@pytest.fixture(scope="module")
def tiny_pth(tmp_path_factory):
    path = tmp_path_factory.mktemp("train") / "tiny.pth"
    assert run_train(path) == 0
    return path


@pytest.fixture(scope="module")
def exported(tiny_pth, tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    static, dynamic = folder / "static.onnx", folder / "dynamic.onnx"
    assert export.main(["--pth", str(tiny_pth), "--static", str(static), "--dynamic", str(dynamic),
                        "--batch", "4"]) == 0
    return {"static": static, "dynamic": dynamic, "folder": folder}


def test_progress_lines_and_checkpoint(tmp_path, capsys):
    path = tmp_path / "m.pth"
    assert run_train(path, "--hidden", "16", "8", "--activation", "tanh", "--no-bias") == 0
    lines = capsys.readouterr().out.splitlines()
    epochs = [EPOCH_LINE.match(line) for line in lines if line.startswith("epoch ")]
    assert [m.groups() if m else None for m in epochs] == [("1", "2"), ("2", "2")]
    checkpoint = load_checkpoint(str(path))
    assert checkpoint["arch"] == {"input_size": 784, "hidden_sizes": [16, 8], "num_classes": 10,
                                  "activation": "tanh", "bias": False}
    assert checkpoint["preprocess"]["scale"] == pytest.approx(1 / 255)
    metrics = checkpoint["metrics"]
    assert metrics["train_images"] == 600 and len(metrics["history"]) == 2
    assert 0.3 < metrics["test_accuracy"] <= 1.0  # far above chance (0.1) even after 600 images
    assert [p.name for p in tmp_path.iterdir()] == ["m.pth"]


def test_training_is_deterministic(tiny_pth, tmp_path):
    again = tmp_path / "again.pth"
    other_seed = tmp_path / "seed1.pth"
    assert run_train(again) == 0 and run_train(other_seed, "--seed", "1") == 0
    first = load_checkpoint(str(tiny_pth))["state_dict"]
    second = load_checkpoint(str(again))["state_dict"]
    third = load_checkpoint(str(other_seed))["state_dict"]
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], third[k]) for k in first)


def test_bad_training_flags_are_usage_errors(tmp_path):
    with pytest.raises(SystemExit) as info:
        train.main(["--out", str(tmp_path / "x.pth"), "--epochs", "0"])
    assert info.value.code == 2


def test_exported_files_have_the_agreed_interface(exported):
    for kind, batch_dim in (("static", 4), ("dynamic", "batch")):
        model = onnx.load(str(exported[kind]))
        onnx.checker.check_model(model)
        (graph_input,) = model.graph.input
        (graph_output,) = model.graph.output
        assert graph_input.name == "input" and graph_output.name == "output"
        dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
        out_dims = [d.dim_param or d.dim_value for d in graph_output.type.tensor_type.shape.dim]
        assert dims == [batch_dim, 784] and out_dims == [batch_dim, 10]
    assert sorted(p.name for p in exported["folder"].iterdir()) == ["dynamic.onnx", "static.onnx"]


def test_exported_models_match_pytorch_on_test_images(tiny_pth, exported):
    model, checkpoint = load_model(str(tiny_pth))
    images, _ = data.load_split("test", preprocess=checkpoint["preprocess"], limit=37)
    with torch.no_grad():
        expected = model.double()(torch.from_numpy(images.astype(np.float64))).numpy()
    got = run_onnx_float64(str(exported["dynamic"]), {"input": images})["output"]
    assert export.rel_l2(got, expected) <= 1e-9
    got_static = run_onnx_float64(str(exported["static"]), {"input": images[:4]})["output"]
    assert export.rel_l2(got_static, expected[:4]) <= 1e-9
    with pytest.raises(OnnxReferenceError, match=r"has shape \[37, 784\].*\[4, 784\]"):
        run_onnx_float64(str(exported["static"]), {"input": images})


def test_export_prints_the_comparison(tiny_pth, tmp_path, capsys):
    out = tmp_path / "d.onnx"
    assert export.main(["--pth", str(tiny_pth), "--dynamic", str(out), "--opset", "17"]) == 0
    line = capsys.readouterr().out
    assert re.search(r"opset 17\): checker ok; vs PyTorch on 1000 test images: max abs diff "
                     r"\d\.\d{3}e[-+]\d\d, rel L2 \d\.\d{3}e-\d\d, top-1 agrees 1000/1000", line)
    assert onnx.load(str(out)).opset_import[0].version == 17


def test_failed_check_leaves_no_file(tiny_pth, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(export, "MAX_REL_L2", -1.0)  # any difference now fails the check
    out = tmp_path / "never.onnx"
    assert export.main(["--pth", str(tiny_pth), "--dynamic", str(out)]) == 1
    assert "differs from PyTorch" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_export_errors(tmp_path, capsys):
    assert export.main(["--pth", str(tmp_path / "none.pth"), "--static", str(tmp_path / "s.onnx")]) == 1
    assert "file not found" in capsys.readouterr().err
    for bad in (["--pth", "m.pth"], ["--pth", "m.pth", "--static", "s.onnx", "--opset", "9"]):
        with pytest.raises(SystemExit) as info:
            export.main(bad)
        assert info.value.code == 2
    assert list(tmp_path.iterdir()) == []


def test_predict_reports_accuracy_and_compares(tiny_pth, tmp_path, capsys):
    data.export_npy(str(tmp_path), "test", limit=500)
    images, labels = tmp_path / "test_images.npy", tmp_path / "test_labels.npy"
    logits_path = tmp_path / "torch.npy"
    args = ["--pth", str(tiny_pth), "--images", str(images), "--labels", str(labels)]
    assert predict.main(args + ["--logits", str(logits_path)]) == 0
    logits = np.load(logits_path)
    assert logits.shape == (500, 10) and logits.dtype == np.float32
    expected_acc = float(np.mean(logits.argmax(1) == np.load(labels)))
    capsys.readouterr()

    swapped = logits.copy()
    swapped[[3, 7]] = swapped[[3, 7]][:, ::-1]  # reversed logits change those rows' top-1
    np.save(tmp_path / "engine.npy", swapped)
    rc = predict.main(args + ["--compare", str(tmp_path / "engine.npy"), "--require-top1-match"])
    captured = capsys.readouterr()
    assert rc == 1
    assert f"pytorch: accuracy {100 * expected_acc:.2f}% on 500 images" in captured.out
    assert "top-1 agrees with PyTorch on 498/500 images" in captured.out
    assert "first mismatches at [3, 7]" in captured.out
    assert predict.main(args + ["--compare", str(logits_path), "--require-top1-match"]) == 0
