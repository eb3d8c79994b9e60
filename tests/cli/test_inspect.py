"""mlprt inspect: the text report and --json."""
import json
import subprocess
import sys

import pytest

import cli_helpers as h


def test_inspect_text_dynamic_two_profiles(plans):
    proc = h.ok("inspect", f"--loadEngine={plans['two_profiles']}")
    out = proc.stdout
    for label in ("Format:", "Backend:", "Hardware:", "Precision:", "Plan hash:", "Plan size:",
                  "Weights:", "I/O tensors (2)", "Profiles (2)", "Layers after fusion"):
        assert label in out, f"{label} missing:\n{out}"
    assert "version 1" in out and "mlprt 0.1.0" in out
    assert "cpu" in out and "fp32" in out
    lines = out.splitlines()
    io_lines = [l.split() for l in lines if l.strip().startswith(("input ", "output "))]
    assert ["input", "input", "float32", "-1x6"] in io_lines
    assert ["output", "output", "float32", "-1x4"] in io_lines
    assert str(plans["two_profiles"].stat().st_size) in out


def test_inspect_layers_are_fused(plans):
    out = h.ok("inspect", f"--loadEngine={plans['static']}").stdout
    layers = out.split("Layers after fusion (")[1]
    count = int(layers.split(")")[0])
    # Gemm+Relu fused and the second Gemm: at most 2 layers, each listing inputs -> outputs.
    assert 1 <= count <= 2
    body = [l for l in layers.splitlines()[1:] if "->" in l]
    assert len(body) == count
    assert "input" in body[0] and body[-1].rstrip().endswith("output")
    assert "relu" in out.lower()


def test_inspect_json_parses_and_agrees_with_the_text(plans):
    info = json.loads(h.ok("inspect", f"--loadEngine={plans['two_profiles']}", "--json").stdout)
    assert isinstance(info, dict)
    text = json.dumps(info).lower()
    assert "cpu" in text and "input" in text and "output" in text
    human = h.ok("inspect", f"--loadEngine={plans['two_profiles']}").stdout
    hashes = [l.split(":", 1)[1].strip() for l in human.splitlines() if l.startswith("Plan hash:")]
    assert hashes and hashes[0] and hashes[0].lower() in text


def test_inspect_missing_plan(tmp_path):
    err = h.fails(1, "inspect", f"--loadEngine={tmp_path / 'absent.plan'}")
    assert "absent.plan" in err


# Runs argv and returns its peak RSS in MiB (os.wait4). Started from a fresh small interpreter:
# a child's high-water mark starts at its parent's RSS at fork, and pytest's is large.
WAIT4 = r"""
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def peak_mib(*argv):
    out = subprocess.run([sys.executable, "-c", WAIT4, *argv], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[1] == "0", f"{argv} failed"
    return int(out[0]) / 1024


def test_inspect_reads_the_metadata_only(tmp_path):
    # 32 MiB of weights: inspect holds none of them (it streams the checksum) and loads no
    # backend; before, it loaded the engine and peaked at over twice the weights.
    weights = h.mlp_weights(seed=3, in_features=1024, hidden=4096, out_features=1024)
    weight_mib = sum(w.nbytes for w in weights.values()) / 2**20
    h.make_mlp(tmp_path / "big.onnx", "batch", weights)
    plan = tmp_path / "big.plan"
    h.ok("build", "--backend=cpu", f"--onnx={tmp_path / 'big.onnx'}", f"--saveEngine={plan}",
         "--builderOptimizationLevel=0", "--minShapes=input:1x1024", "--optShapes=input:4x1024",
         "--maxShapes=input:8x1024")
    peak = peak_mib(h.mlprt_bin(), "inspect", f"--loadEngine={plan}")
    if "asan" in str(h.mlprt_bin()):  # AddressSanitizer's shadow memory is no measure of ours
        pytest.skip("peak memory is not measured under AddressSanitizer")
    assert peak < 0.75 * weight_mib, f"inspect peaked at {peak:.1f} MiB, weights {weight_mib:.1f} MiB"
    out = h.ok("inspect", f"--loadEngine={plan}").stdout
    assert "32.0 MiB" in out and "fp32 (any M: fp32 runtime-M" in out
