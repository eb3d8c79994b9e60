#!/usr/bin/env python3
"""Writes the ONNX models of ../shared/bench/peers.py (same layer sizes, dynamic batch).

    python3 bench/make_models.py OUT_DIR [NAME,NAME...]

'wide' uses nn.GELU (exact, erf): the importer fuses the decomposed pattern into the Dense
epilogue. Its weights (100 MB) make it a file to generate where it runs, not to commit or carry.
"""
import sys

import torch

MODELS = {
    "seed": [784, 32, 10],
    "mnist": [784, 1024, 1024, 10],
    "tcnn": [64, 64, 64, 64, 64, 16],
    "tcnn128": [64, 128, 128, 128, 128, 16],
    "wide": [1024, 4096, 4096, 1024],
}
ACTIVATION = {"wide": torch.nn.GELU}


def main():
    out = sys.argv[1]
    only = sys.argv[2].split(",") if len(sys.argv) > 2 else list(MODELS)
    torch.manual_seed(0)
    for name, dims in MODELS.items():
        if name not in only:
            continue
        layers = []
        for i in range(len(dims) - 1):
            layers.append(torch.nn.Linear(dims[i], dims[i + 1]))
            if i < len(dims) - 2:
                layers.append(ACTIVATION.get(name, torch.nn.ReLU)())
        model = torch.nn.Sequential(*layers).eval()
        x = torch.randn(2, dims[0])
        kwargs = dict(input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, opset_version=13)
        try:  # torch 2.x: the TorchScript exporter, as torch 1.13 writes it
            torch.onnx.export(model, x, f"{out}/{name}.onnx", dynamo=False, **kwargs)
        except TypeError:  # torch 1.x has no 'dynamo' argument
            torch.onnx.export(model, x, f"{out}/{name}.onnx", **kwargs)


if __name__ == "__main__":
    main()
