"""examples/tutorial.py runs end to end: train on a few images, export, build, run, compare.

The script is run as a user runs it, in a fresh interpreter, with one epoch on the first few
hundred Fashion-MNIST images; it checks its engines against a float64 reference itself and exits
1 when they disagree, so the exit status is the main check here.

    PYTHONPATH=build/ci/python:python python3 -m pytest -q tests/python/test_tutorial_example.py
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "examples" / "tutorial.py"
sys.path.append(str(REPO / "python"))  # for mlprt_tools
from mlprt_tools import data  # noqa: E402

LIMIT = 300  # training and test images: one epoch takes well under a second
FILES = ["model.pth", "model_static.onnx", "model_dynamic.onnx", "static.plan", "dynamic.plan",
         "timing.cache"]

ACCURACY_TORCH = re.compile(r"^accuracy  PyTorch\s+(\d+\.\d+)%$", re.M)
ACCURACY_ENGINE = re.compile(r"^accuracy  mlprt (static|dynamic)\s+(\d+\.\d+)%  top-1 agrees "
                             r"with PyTorch (\d+)/(\d+)  max abs diff \S+  "
                             r"rel L2 vs float64 (\S+)$", re.M)


def dataset_installed():
    return all(os.path.exists(p) for split in ("train", "test") for p in data.split_paths(split))


pytestmark = pytest.mark.skipif(
    not dataset_installed(),
    reason=f"Fashion-MNIST not found in {data.data_dir()}: {data.INSTALL_HINT}")


def run_tutorial(tmp_path, *args):
    # The script runs in tmp_path: relative entries (PYTHONPATH=build/ci/python:python) are made
    # absolute, and the repo's python/ (mlprt_tools) comes last so that the built mlprt, not its
    # sources, is imported.
    paths = [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths + [str(REPO / "python")]))
    cmd = [sys.executable, str(SCRIPT), "--epochs", "1", "--limit", str(LIMIT),
           "--workdir", str(tmp_path / "work"), *args]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n"
                    f"--- stderr\n{proc.stderr}")
    return proc.stdout


def check_report(stdout, tmp_path, device):
    assert ACCURACY_TORCH.search(stdout), stdout
    engines = {m.group(1): m for m in ACCURACY_ENGINE.finditer(stdout)}
    assert set(engines) == {"static", "dynamic"}, stdout
    for m in engines.values():
        agree, total = int(m.group(3)), int(m.group(4))
        assert total == LIMIT
        assert agree >= total - 2, f"top-1 agrees on {agree}/{total} only"  # ties may flip
    assert f"torch tensors on {device}" in stdout
    outputs = rf"^outputs: Tensor \({LIMIT}, 10\) torch.float32 on {device}"
    assert re.search(outputs, stdout, re.M), stdout
    assert "execute_async_v3: output (100, 10)" in stdout
    assert "identical to infer's" in stdout
    assert "FAIL" not in stdout
    assert "PASS" in stdout
    for name in FILES:
        assert (tmp_path / "work" / name).stat().st_size > 0, name


def test_tutorial_on_the_cpu(tmp_path):
    stdout = run_tutorial(tmp_path, "--device", "cpu")
    check_report(stdout, tmp_path, "cpu")
    # The second build of the dynamic engine takes every tactic from the saved timing cache.
    again = re.search(r"dynamic\.plan \(dynamic again\) in \S+ s; timing cache (\d+) -> (\d+)",
                      stdout)
    assert again and again.group(1) == again.group(2) != "0", stdout
    for batch in (1, 32, 64, 128, 256):
        assert re.search(rf"^\s*{batch}\s+\d+\.\d+\s+\d+\.\d+\s+\d+$", stdout, re.M), stdout


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA GPU visible to torch: the cuda variant runs on a GPU machine")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tutorial_on_the_gpu(tmp_path, precision):
    args = ["--device", "cuda", "--no-bench"] + (["--fp16"] if precision == "fp16" else [])
    stdout = run_tutorial(tmp_path, *args)
    check_report(stdout, tmp_path, "cuda")
    assert "backend cuda" in stdout
