import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import cli_helpers as h  # noqa: E402


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """ONNX models shared by the tests: static batch 3, dynamic batch, two inputs, Cos tail."""
    d = tmp_path_factory.mktemp("models")
    out = {"dir": d, "weights": h.mlp_weights(seed=0)}
    h.make_mlp(d / "static.onnx", 3, out["weights"])
    h.make_mlp(d / "dynamic.onnx", "batch", out["weights"])
    h.make_mlp(d / "two_inputs.onnx", "batch", out["weights"], second_input=True)
    h.make_mlp(d / "unsupported.onnx", "batch", out["weights"], tail_op="Cos")
    return out


@pytest.fixture(scope="session")
def plans(models, tmp_path_factory):
    """Plans built once: static, dynamic with one profile (1..32), dynamic with two profiles
    (1..4 and 5..8). Building them is itself tested in test_build.py. They are cpu plans, which
    the tests describe; "auto" would pick cuda on a machine with a GPU."""
    d = tmp_path_factory.mktemp("plans")
    m = models["dir"]
    out = {"dir": d}
    out["static"] = d / "static.plan"
    h.ok("build", "--backend=cpu", f"--onnx={m / 'static.onnx'}", f"--saveEngine={out['static']}")
    out["dynamic"] = d / "dynamic.plan"
    h.ok("build", "--backend=cpu", f"--onnx={m / 'dynamic.onnx'}", f"--saveEngine={out['dynamic']}",
         "--minShapes=input:1x6", "--optShapes=input:8x6", "--maxShapes=input:32x6")
    out["two_profiles"] = d / "two_profiles.plan"
    h.ok("build", "--backend=cpu", f"--onnx={m / 'dynamic.onnx'}", f"--saveEngine={out['two_profiles']}",
         "--minShapes=input:1x6", "--optShapes=input:2x6", "--maxShapes=input:4x6",
         "--minShapes", "input:5x6", "--optShapes", "input:6x6", "--maxShapes", "input:8x6")
    return out
