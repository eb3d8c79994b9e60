import os
import subprocess
import sys

import numpy as np
import pytest

PYTHON = sys.executable


def mlprt(*args, check=True):
    """Runs the mlprt CLI; returns the CompletedProcess."""
    cmd = [os.environ["MLPRT_BIN"], *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def python_module(module, *args):
    cmd = [PYTHON, "-m", module, *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def rel_l2(actual, expected):
    expected = np.asarray(expected, dtype=np.float64)
    diff = np.asarray(actual, dtype=np.float64) - expected
    denom = np.linalg.norm(expected)
    return float(np.linalg.norm(diff) / (denom if denom > 0 else 1.0))


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A small training run and its two ONNX exports, shared by the tests."""
    work = tmp_path_factory.mktemp("e2e")
    pth = work / "model.pth"
    python_module("mlprt_tools.train", "--out", pth, "--epochs", 1, "--limit-train", 3000)
    static, dynamic = work / "static.onnx", work / "dynamic.onnx"
    python_module("mlprt_tools.export", "--pth", pth, "--static", static, "--dynamic", dynamic)
    images, labels = work / "test_images.npy", work / "test_labels.npy"
    python_module("mlprt_tools.data", "--export-npy", work, "--pth", pth, "--limit", 2000)
    return {"work": work, "pth": pth, "static": static, "dynamic": dynamic,
            "images": images, "labels": labels}
