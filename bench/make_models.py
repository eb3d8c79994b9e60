#!/usr/bin/env python3
"""Writes the ONNX models of ../shared/bench/peers.py (same layer sizes, dynamic batch).

    python3 bench/make_models.py OUT_DIR

'wide' is left out: its GELU is not an mlprt layer op yet.
"""
import sys

import torch

MODELS = {
    "seed": [784, 32, 10],
    "mnist": [784, 1024, 1024, 10],
    "tcnn": [64, 64, 64, 64, 64, 16],
}


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    for name, dims in MODELS.items():
        layers = []
        for i in range(len(dims) - 1):
            layers.append(torch.nn.Linear(dims[i], dims[i + 1]))
            if i < len(dims) - 2:
                layers.append(torch.nn.ReLU())
        model = torch.nn.Sequential(*layers).eval()
        x = torch.randn(2, dims[0])
        torch.onnx.export(model, x, f"{out}/{name}.onnx", input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, opset_version=13)


if __name__ == "__main__":
    main()
