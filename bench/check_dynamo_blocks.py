#!/usr/bin/env python3
"""On a torch 2.x machine (the GPU machine: onnxscript is there): export the MLP-Mixer, gMLP and
ResMLP block fixtures with the dynamo exporter (torch.onnx.export(..., dynamo=True), opset 18)
and check that mlprt builds and runs them on every backend given, against torch's own float64
output of the same module and input (rel L2 <= 1e-5 fp32), plus an empty batch (0 rows).

    python3 bench/check_dynamo_blocks.py --mlprt pkg/bin/mlprt --out $OUT/torch2_blocks \
        --backends cpu cuda

The exported folder (ONNX, inputs, torch float64 outputs, index.json) can be committed as
tests/fixtures/torch2 entries after `python3 -m mlprt_tools.fixtures_zoo reference --dir DIR`
here. Exits non-zero, naming the model and backend, on any failure.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))
sys.path.insert(0, str(HERE))
from mlprt_tools import fixtures_zoo  # noqa: E402

BLOCKS = ["mlp_mixer_block", "gmlp_block", "resmlp_block"]


def mlprt(binary, *args):
    proc = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlprt", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--backends", nargs="+", default=["cpu", "cuda"])
    args = parser.parse_args()
    out = Path(args.out)
    index = fixtures_zoo.export_zoo(str(out), dynamo=True, only=BLOCKS)
    failures = [f"{f['name']}: export: {f['error'][:500]}" for f in index["export_failures"]]
    for entry in index["models"]:
        x = out / entry["inputs"][0]["file"]
        want = np.load(out / entry["outputs"][0]["torch"])
        rows = np.load(x).shape[0]
        tokens, channels = np.load(x).shape[1:]
        profile = [f"--minShapes=input:0x{tokens}x{channels}",
                   f"--optShapes=input:{rows}x{tokens}x{channels}",
                   f"--maxShapes=input:{2 * rows}x{tokens}x{channels}"]
        for backend in args.backends:
            plan = out / f"{entry['name']}_{backend}.plan"
            y = out / f"{entry['name']}_{backend}_out.npy"
            rc, text = mlprt(args.mlprt, "build", f"--onnx={out / entry['onnx']}",
                             f"--saveEngine={plan}", f"--backend={backend}", *profile)
            if rc != 0:
                failures.append(f"{entry['name']} {backend}: build: {text.strip()[-600:]}")
                continue
            rc, text = mlprt(args.mlprt, "run", f"--loadEngine={plan}", f"--loadInputs=input:{x}",
                             f"--exportOutput=output:{y}")
            if rc != 0:
                failures.append(f"{entry['name']} {backend}: run: {text.strip()[-600:]}")
                continue
            got = np.load(y).astype(np.float64)
            error = np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30)
            status = "ok" if got.shape == want.shape and error <= 1e-5 else "FAIL"
            print(f"{entry['name']} {backend}: rel L2 vs torch float64 {error:.2e} {status}")
            if status != "ok":
                failures.append(f"{entry['name']} {backend}: rel L2 {error:.2e} > 1e-5")
            empty = out / "empty.npy"
            np.save(empty, np.zeros((0, tokens, channels), np.float32))
            rc, text = mlprt(args.mlprt, "run", f"--loadEngine={plan}",
                             f"--loadInputs=input:{empty}", f"--exportOutput=output:{y}")
            if rc != 0 or np.load(y).shape[0] != 0:
                failures.append(f"{entry['name']} {backend}: empty batch: {text.strip()[-300:]}")
            _, layers = mlprt(args.mlprt, "inspect", f"--loadEngine={plan}")
            print("  " + "\n  ".join(l for l in layers.splitlines() if "MatMul" in l)[:2000])
    (out / "check.json").write_text(json.dumps({"failures": failures}, indent=1))
    for f in failures:
        print("FAILED:", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
