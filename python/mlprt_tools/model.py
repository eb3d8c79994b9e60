"""The tutorial's MLP, built from an architecture dict, and the .pth checkpoint format.

    python3 -m mlprt_tools.model --hidden 32 --activation relu     # print the model
    python3 -m mlprt_tools.model --pth work/model.pth              # print a saved model and its info

A checkpoint is a dict saved with torch.save:
    {"format": "mlprt-checkpoint", "format_version": 1,
     "state_dict": ..., "arch": {...}, "preprocess": {...}, "metrics": {...}}
"""

import argparse
import json
import sys

import torch
from torch import nn

from .atomic import atomic_path

CHECKPOINT_FORMAT = "mlprt-checkpoint"
CHECKPOINT_VERSION = 1

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}

ARCH_KEYS = ("input_size", "hidden_sizes", "num_classes", "activation", "bias")


class CheckpointError(RuntimeError):
    """A .pth file is missing, unreadable, or not an mlprt checkpoint."""


def default_arch(hidden_sizes=(32,), activation="relu", input_size=784, num_classes=10, bias=True):
    return {"input_size": input_size, "hidden_sizes": list(hidden_sizes),
            "num_classes": num_classes, "activation": activation, "bias": bias}


def _is_positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def validate_arch(arch):
    """Raise ValueError naming the bad key, what was found and what is allowed."""
    if not isinstance(arch, dict):
        raise ValueError(f"arch must be a dict with keys {list(ARCH_KEYS)}, "
                         f"found {type(arch).__name__}")
    missing = [k for k in ARCH_KEYS if k not in arch]
    if missing:
        raise ValueError(f"arch is missing {missing}; an arch needs {list(ARCH_KEYS)}")
    for key in ("input_size", "num_classes"):
        if not _is_positive_int(arch[key]):
            raise ValueError(f"arch['{key}'] = {arch[key]!r}: must be a positive integer")
    hidden = arch["hidden_sizes"]
    if not isinstance(hidden, (list, tuple)) or not all(_is_positive_int(h) for h in hidden):
        raise ValueError(f"arch['hidden_sizes'] = {hidden!r}: must be a list of positive integers "
                         f"(may be empty)")
    if arch["activation"] not in ACTIVATIONS:
        raise ValueError(f"arch['activation'] = {arch['activation']!r}: allowed are "
                         f"{sorted(ACTIVATIONS)}")
    if not isinstance(arch["bias"], bool):
        raise ValueError(f"arch['bias'] = {arch['bias']!r}: must be true or false")


def build_mlp(arch):
    """nn.Sequential(Flatten, Linear, act, ..., Linear) as described by ``arch``."""
    validate_arch(arch)
    layers = [nn.Flatten()]
    width = arch["input_size"]
    for hidden in arch["hidden_sizes"]:
        layers.append(nn.Linear(width, hidden, bias=arch["bias"]))
        layers.append(ACTIVATIONS[arch["activation"]]())
        width = hidden
    layers.append(nn.Linear(width, arch["num_classes"], bias=arch["bias"]))
    return nn.Sequential(*layers)


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


def save_checkpoint(path, model, arch, preprocess, metrics):
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "state_dict": model.state_dict(),
        "arch": dict(arch),
        "preprocess": dict(preprocess),
        "metrics": dict(metrics),
    }
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def load_checkpoint(path):
    """Load and validate a checkpoint dict (tensors on the CPU)."""
    try:
        # torch 1.13's weights-only unpickler rejects plain floats (our metrics), so this reads
        # a full pickle: load only checkpoints you made or trust.
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found; train one with "
                              f"python3 -m mlprt_tools.train --out {path}") from None
    except Exception as e:  # torch raises many types for damaged files
        raise CheckpointError(f"{path}: not a readable torch checkpoint "
                              f"({type(e).__name__}: {e})") from e
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an mlprt checkpoint (expected a dict with "
                              f"format='{CHECKPOINT_FORMAT}'); train one with mlprt_tools.train")
    version = checkpoint.get("format_version")
    if version != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version}, this code reads "
                              f"version {CHECKPOINT_VERSION}")
    for key in ("state_dict", "arch", "preprocess", "metrics"):
        if key not in checkpoint:
            raise CheckpointError(f"{path}: checkpoint has no '{key}'")
    try:
        validate_arch(checkpoint["arch"])
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}")
    return checkpoint


def load_model(path):
    """Rebuild the model from the checkpoint's own arch (no script defaults) in eval mode."""
    checkpoint = load_checkpoint(path)
    model = build_mlp(checkpoint["arch"])
    try:
        model.load_state_dict(checkpoint["state_dict"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not match arch {checkpoint['arch']}: {e}")
    model.eval()
    return model, checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m mlprt_tools.model", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pth", default=None, help="print this checkpoint, e.g. work/model.pth")
    parser.add_argument("--hidden", type=int, nargs="*", default=[32],
                        help="hidden sizes, e.g. 128 64")
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    parser.add_argument("--no-bias", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.pth:
            model, checkpoint = load_model(args.pth)
            print(model)
            print(json.dumps({k: checkpoint[k] for k in ("arch", "preprocess", "metrics")},
                             indent=2, default=str))
        else:
            model = build_mlp(default_arch(args.hidden, args.activation, bias=not args.no_bias))
            print(model)
    except (CheckpointError, ValueError) as e:
        print(f"mlprt_tools.model: error: {e}", file=sys.stderr)
        return 1
    print(f"parameters: {count_parameters(model)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
