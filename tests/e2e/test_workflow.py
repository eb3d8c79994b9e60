"""The tutorial's workflow end to end on the CPU backend, checked against float64."""
import os
import subprocess

import numpy as np
import pytest

from conftest import mlprt, python_module, rel_l2
from mlprt_tools.reference import run_onnx_float64


def torch_logits(pth, images):
    from mlprt_tools.model import load_model
    from mlprt_tools.predict import torch_logits as logits
    model, _ = load_model(pth)
    return logits(model, images)


def test_static_engine_matches_float64(trained):
    work = trained["work"]
    plan = work / "static.plan"
    mlprt("build", f"--onnx={trained['static']}", f"--saveEngine={plan}")
    images = np.load(trained["images"])
    static_shape = mlprt_input_shape(plan)
    x = images[: static_shape[0]]
    np.save(work / "x_static.npy", x)
    out = work / "y_static.npy"
    mlprt("run", f"--loadEngine={plan}", f"--loadInputs=input:{work / 'x_static.npy'}",
          f"--exportOutput={out}")
    y = np.load(out)
    ref = run_onnx_float64(str(trained["static"]), {"input": x.astype(np.float64)})["output"]
    assert y.shape == ref.shape
    assert rel_l2(y, ref) <= 1e-5


def mlprt_input_shape(plan):
    import json
    info = json.loads(mlprt("inspect", f"--loadEngine={plan}", "--json").stdout)
    return [t for t in info["io_tensors"] if t["mode"] == "input"][0]["dims"]


@pytest.mark.parametrize("batch", [1, 7, 64, 65, 256])
def test_dynamic_engine_two_profiles_matches_float64(trained, batch):
    work = trained["work"]
    plan = work / "dynamic.plan"
    if not plan.exists():
        mlprt("build", f"--onnx={trained['dynamic']}", f"--saveEngine={plan}",
              "--minShapes=input:1x784", "--optShapes=input:32x784", "--maxShapes=input:64x784",
              "--minShapes=input:65x784", "--optShapes=input:128x784",
              "--maxShapes=input:256x784")
    images = np.load(trained["images"])[:batch]
    x_path, y_path = work / f"x_{batch}.npy", work / f"y_{batch}.npy"
    np.save(x_path, images)
    mlprt("run", f"--loadEngine={plan}", f"--loadInputs=input:{x_path}",
          f"--exportOutput=output:{y_path}")
    y = np.load(y_path)
    ref = run_onnx_float64(str(trained["dynamic"]), {"input": images.astype(np.float64)})["output"]
    assert y.shape == (batch, 10)
    assert rel_l2(y, ref) <= 1e-5
    assert np.array_equal(y.argmax(1), torch_logits(trained["pth"], images).argmax(1))


def test_whole_test_set_in_batches_matches_pytorch_top1(trained):
    work = trained["work"]
    plan = work / "dynamic_b.plan"
    mlprt("build", f"--onnx={trained['dynamic']}", f"--saveEngine={plan}",
          "--minShapes=input:1x784", "--optShapes=input:32x784", "--maxShapes=input:64x784")
    out = work / "all.npy"
    mlprt("run", f"--loadEngine={plan}", f"--loadInputs=input:{trained['images']}",
          "--batch=64", f"--exportOutput={out}")
    images = np.load(trained["images"])
    y = np.load(out)
    assert y.shape == (images.shape[0], 10)
    expected = torch_logits(trained["pth"], images)
    assert np.array_equal(y.argmax(1), expected.argmax(1))


@pytest.mark.skipif(not os.environ.get("MLPRT_EXAMPLE"), reason="examples not built")
def test_cpp_example_program(trained):
    work = trained["work"]
    plan = work / "example.plan"
    mlprt("build", f"--onnx={trained['dynamic']}", f"--saveEngine={plan}",
          "--minShapes=input:1x784", "--optShapes=input:8x784", "--maxShapes=input:16x784")
    images = np.load(trained["images"])[:5]
    raw = work / "five.f32"
    images.astype("<f4").tofile(raw)
    proc = subprocess.run([os.environ["MLPRT_EXAMPLE"], str(plan), "5", str(raw)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "output 'output': 5x10"
    top1 = [int(v) for v in lines[1].split()]
    ref = run_onnx_float64(str(trained["dynamic"]), {"input": images.astype(np.float64)})["output"]
    assert top1 == list(ref.argmax(1))


def test_unseen_style_fixtures_match_float64(tmp_path):
    """Varied sequential MLPs exported by torch.onnx.export at opsets 11..17."""
    import json
    python_module("mlprt_tools.fixtures", "--out", tmp_path, "--count", 24, "--seed", 7)
    index = json.loads((tmp_path / "index.json").read_text())
    entries = index["models"] if isinstance(index, dict) else index
    assert len(entries) >= 20
    for entry in entries:
        onnx_path = tmp_path / entry["onnx"]
        x_path = tmp_path / entry["input"]
        x = np.load(x_path)
        plan = onnx_path.with_suffix(".plan")
        args = ["build", f"--onnx={onnx_path}", f"--saveEngine={plan}"]
        if entry["dynamic"]:
            dims = "x".join(str(d) for d in x.shape[1:])
            args += [f"--minShapes=input:1x{dims}", f"--optShapes=input:{x.shape[0]}x{dims}",
                     f"--maxShapes=input:{max(x.shape[0], 8)}x{dims}"]
        mlprt(*args)
        out = plan.with_suffix(".out.npy")
        mlprt("run", f"--loadEngine={plan}", f"--loadInputs=input:{x_path}",
              f"--exportOutput={out}")
        ref = np.load(tmp_path / entry["reference"])
        y = np.load(out)
        assert y.shape == ref.shape, entry
        assert rel_l2(y, ref) <= 1e-5, entry
