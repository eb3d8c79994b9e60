"""MLPs exported on the fly by the installed torch (1.13, TorchScript exporter) at several
opsets, built with `mlprt build` and run with `mlprt run --check` (cpu backend vs the float64
evaluator on the plan's graph, rel L2 <= 1e-5), plus a check against torch's own output."""
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn


def mlprt(*args):
    binary = os.environ.get("MLPRT_BIN")
    assert binary, "MLPRT_BIN must point at the mlprt binary (ctest sets it)"
    proc = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"mlprt {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


class Flat(nn.Module):
    """x.view(x.size(0), -1): Shape/Gather/Unsqueeze/Concat/Reshape with a dynamic batch."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        return self.fc(x.view(x.size(0), -1))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 8)

    def forward(self, x):
        return torch.softmax(x + self.b(torch.relu(self.a(x))), dim=-1)


def models():
    torch.manual_seed(0)
    return {
        "gelu": (nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 4)), (8,)),
        "layernorm": (nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), nn.Tanh(),
                                    nn.Linear(16, 3)), (8,)),
        "batchnorm": (nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                    nn.Linear(16, 3)).eval(), (8,)),
        "acts": (nn.Sequential(nn.Linear(8, 8), nn.LeakyReLU(0.1), nn.Linear(8, 8), nn.ELU(),
                               nn.Linear(8, 8), nn.Hardswish(), nn.Linear(8, 8), nn.SELU(),
                               nn.Linear(8, 8), nn.Sigmoid(), nn.Linear(8, 8), nn.Softplus(),
                               nn.Linear(8, 8), nn.Hardsigmoid(), nn.Linear(8, 4),
                               nn.LogSoftmax(dim=1)), (8,)),
        "clip_dropout": (nn.Sequential(nn.Linear(8, 8), nn.ReLU6(), nn.Dropout(0.5),
                                       nn.Linear(8, 2), nn.Hardtanh(-0.5, 0.5)).eval(), (8,)),
        "flat": (Flat(), (3, 4)),
        "sequence": (nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.LayerNorm(8),
                                   nn.Linear(8, 2)), (5, 6)),
        "residual": (Residual(), (8,)),
    }


CASES = [(name, opset) for name in models() for opset in (11, 13, 17)]


@pytest.mark.parametrize("name,opset", CASES, ids=[f"{n}-opset{o}" for n, o in CASES])
def test_torch_export_runs_and_checks(tmp_path: Path, name, opset):
    model, feature_shape = models()[name]
    model.eval()
    onnx_path = tmp_path / "m.onnx"
    example = torch.randn(2, *feature_shape)
    torch.onnx.export(model, example, str(onnx_path), opset_version=opset,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    dims = "x".join(str(d) for d in feature_shape)
    plan = tmp_path / "m.plan"
    mlprt("build", f"--onnx={onnx_path}", f"--saveEngine={plan}", f"--minShapes=x:1x{dims}",
          f"--optShapes=x:4x{dims}", f"--maxShapes=x:16x{dims}")
    x = torch.randn(7, *feature_shape)
    np.save(tmp_path / "x.npy", x.numpy())
    out = mlprt("run", f"--loadEngine={plan}", f"--loadInputs=x:{tmp_path / 'x.npy'}",
                f"--exportOutput=y:{tmp_path / 'y.npy'}", "--check")
    assert "Check 'y'" in out and "PASS" in out, out
    with torch.no_grad():
        expected = model(x).double().numpy()
    got = np.load(tmp_path / "y.npy").astype(np.float64)
    rel = np.linalg.norm(got - expected) / np.linalg.norm(expected)
    assert rel <= 1e-5, f"{name} opset {opset}: rel L2 {rel} vs torch"


def test_check_fails_above_tolerance(tmp_path: Path):
    model, _ = models()["gelu"]
    onnx_path = tmp_path / "m.onnx"
    torch.onnx.export(model.eval(), torch.randn(2, 8), str(onnx_path), opset_version=13,
                      input_names=["x"], output_names=["y"])
    plan = tmp_path / "m.plan"
    mlprt("build", f"--onnx={onnx_path}", f"--saveEngine={plan}")
    np.save(tmp_path / "x.npy", np.random.default_rng(1).standard_normal((2, 8)).astype(np.float32))
    proc = subprocess.run([os.environ["MLPRT_BIN"], "run", f"--loadEngine={plan}",
                           f"--loadInputs=x:{tmp_path / 'x.npy'}", "--check",
                           "--checkTolerance=1e-300"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL" in proc.stdout and "rel L2" in proc.stdout and "max abs" in proc.stdout
