"""Peak RSS of `mlprt build` and `mlprt run` against the weight bytes (issue 17's targets: build
<= 2.5x the weights, run <= 1.3x the weights + 50 MB, on bench's wide MLP; here a 32 MiB MLP
so that the test stays quick, with the process's own ~15 MiB of code and libraries allowed)."""
import numpy as np
import pytest

import cli_helpers as h
from test_inspect import peak_mib


@pytest.fixture(scope="module")
def big_mlp(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("memory")
    weights = h.mlp_weights(seed=5, in_features=1024, hidden=4096, out_features=1024)
    h.make_mlp(tmp / "big.onnx", "batch", weights)
    x = tmp / "x8.npy"
    np.save(x, np.random.default_rng(0).standard_normal((8, 1024)).astype(np.float32))
    return tmp, sum(w.nbytes for w in weights.values()) / 2**20, x


def skip_under_asan():
    if "asan" in str(h.mlprt_bin()):  # AddressSanitizer's shadow memory is no measure of ours
        pytest.skip("peak memory is not measured under AddressSanitizer")


def test_build_and_run_peaks(big_mlp):
    tmp, weight_mib, x = big_mlp
    plan = tmp / "big.plan"
    # Two profiles, tactics timed: the tuner's candidates and each profile's packed tactic
    # are what used to hold extra copies of the weights.
    build = peak_mib(h.mlprt_bin(), "build", "--backend=cpu", f"--onnx={tmp / 'big.onnx'}",
                     f"--saveEngine={plan}", "--threads=1",
                     "--minShapes=input:1x1024", "--optShapes=input:1x1024",
                     "--maxShapes=input:8x1024", "--minShapes=input:9x1024",
                     "--optShapes=input:64x1024", "--maxShapes=input:64x1024")
    run = peak_mib(h.mlprt_bin(), "run", f"--loadEngine={plan}", f"--loadInputs=input:{x}")
    skip_under_asan()
    # Before: build peaked at about 5x the weights (a copy of the network's graph, the passes'
    # double-precision copies, one packed copy per tuner candidate, glibc keeping freed
    # weight-sized blocks), run at 2.2x (every profile's packed weights at load).
    assert build <= 2.5 * weight_mib + 20, f"build peaked at {build:.1f} MiB, weights {weight_mib:.1f} MiB"
    assert run <= 1.3 * weight_mib + 50, f"run peaked at {run:.1f} MiB, weights {weight_mib:.1f} MiB"
