#!/usr/bin/env python3
"""Every zoo fixture (tests/fixtures/torch1, torch2) through `mlprt build --backend=B` and
`mlprt run`, compared with its float64 reference (rel L2 <= 1e-5): the GPU counterpart of
tests/fixtures/test_zoo_fixtures.py, without pytest (the GPU machine may not have it).

    python3 bench/run_fixtures.py MLPRT_BIN FIXTURES_DIR [--backend=cuda]

Fixtures listed in FIXTURES_DIR/expected_failures.txt must fail; any other result is an error.
Exit 0 when every fixture behaves as expected.
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

# The repository's python/ here; the GPU package (bench/pack_gpu.sh) puts mlprt_tools beside us.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
from mlprt_tools.fixture_profiles import profile_flags  # noqa: E402

MAX_REL_L2 = 1e-5


def run_one(mlprt, folder, entry, backend, tmp):
    plan = tmp / "m.plan"
    model = folder / entry["onnx"]
    profile = profile_flags(onnx.load(str(model)), entry)
    proc = subprocess.run([mlprt, "build", f"--onnx={model}", f"--saveEngine={plan}",
                           f"--backend={backend}", *profile],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode:
        return None, "build: " + (proc.stderr or proc.stdout).strip().splitlines()[-1]
    loads = ",".join(f"{i['name']}:{folder / i['file']}" for i in entry["inputs"])
    exports = [f"--exportOutput={o['name']}:{tmp / (o['name'] + '.npy')}" for o in entry["outputs"]]
    proc = subprocess.run([mlprt, "run", f"--loadEngine={plan}", f"--loadInputs={loads}", *exports],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode:
        return None, "run: " + (proc.stderr or proc.stdout).strip().splitlines()[-1]
    worst = 0.0
    for out in entry["outputs"]:
        got = np.load(tmp / (out["name"] + ".npy")).astype(np.float64)
        ref = np.load(folder / out["reference"])
        if got.shape != ref.shape:
            return None, f"{out['name']}: shape {got.shape}, reference {ref.shape}"
        worst = max(worst, float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30)))
    return worst, ""


def main():
    mlprt, fixtures = sys.argv[1], Path(sys.argv[2])
    backend = next((a.split("=", 1)[1] for a in sys.argv[3:] if a.startswith("--backend=")), "cuda")
    expected = {}
    for line in (fixtures / "expected_failures.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            expected[line.split()[0]] = line
    bad = 0
    count = 0
    for suite in ("torch1", "torch2"):
        folder = fixtures / suite
        for entry in json.loads((folder / "index.json").read_text())["models"]:
            key = f"{suite}/{entry['name']}"
            with tempfile.TemporaryDirectory() as tmp:
                error, why = run_one(mlprt, folder, entry, backend, Path(tmp))
            ok = error is not None and error <= MAX_REL_L2
            as_expected = ok != (key in expected)
            bad += not as_expected
            count += 1
            status = "ok" if ok else ("xfail" if key in expected else "FAIL")
            if not as_expected and ok:
                status = "XPASS"
            detail = f"rel L2 {error:.2e}" if error is not None else why
            print(f"{status:5} {key:40} {detail}", flush=True)
    print(f"{count} fixtures on {backend}: {count - bad} as expected, {bad} not")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
