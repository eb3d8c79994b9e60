"""Random small sequential MLPs exported by torch.onnx.export, with inputs and float64 references.

    python3 -m mlprt_tools.fixtures --out build/fixtures [--count 28] [--seed 0]

Fixture i uses opset 11 + i % 7 and a dynamic batch when i is odd, so 14 fixtures cover every
(opset, static/dynamic) pair. Each model is 1-4 Linear layers (widths 1..300, bias chosen per
layer) with ReLU between them, sometimes a leading Flatten and a trailing ReLU. Files written:
    <name>.onnx, <name>_input.npy (float32), <name>_ref.npy (float64), index.json
index.json lists under "models", per fixture, {name, onnx, input, reference, opset, dynamic,
shape, output_shape, layers, ...} with paths relative to the folder holding index.json.
Each reference is also checked against PyTorch run in float64, so a bug in the reference cannot
pass silently.
"""

import argparse
import json
import os
import sys
import warnings

import numpy as np
import onnx
import torch
from torch import nn

from .atomic import atomic_path, save_npy
from .export import BATCH_DIM_NAME, INPUT_NAME, MAX_OPSET, MIN_OPSET, OUTPUT_NAME, rel_l2
from .reference import run_onnx_float64

INDEX_FORMAT = "mlprt-fixtures"
INDEX_VERSION = 1
MAX_WIDTH = 300
MAX_LINEAR_LAYERS = 4
# float64 torch vs float64 numpy differ only in summation order.
SELF_CHECK_REL_L2 = 1e-10
MAX_ATTEMPTS = 20


class FixtureError(RuntimeError):
    """A generated fixture's reference disagrees with PyTorch."""


def _width(rng):
    """Mostly uniform, but the edges 1 and MAX_WIDTH come up often on purpose."""
    pick = rng.random()
    if pick < 0.12:
        return 1
    if pick < 0.24:
        return MAX_WIDTH
    return int(rng.integers(1, MAX_WIDTH + 1))


def describe_fixture(index, seed):
    """Draw fixture ``index``'s structure from (seed, index) alone."""
    rng = np.random.default_rng([seed, index])
    num_linear = int(rng.integers(1, MAX_LINEAR_LAYERS + 1))
    widths = [_width(rng) for _ in range(num_linear + 1)]
    dynamic = index % 2 == 1
    return {
        "opset": MIN_OPSET + index % (MAX_OPSET - MIN_OPSET + 1),
        "dynamic": dynamic,
        "layers": [{"in": widths[k], "out": widths[k + 1], "bias": bool(rng.random() < 0.6)}
                   for k in range(num_linear)],
        "flatten": bool(rng.random() < 0.5),
        "final_relu": bool(rng.random() < 0.3),
        "export_batch": 2 if dynamic else int(rng.integers(1, 17)),
        # a dynamic model is run at a batch other than the one it was traced with
        "run_batch": int(rng.integers(1, 65)) if dynamic else None,
        "torch_seed": int(rng.integers(0, 2**31 - 1)),
        "input_seed": int(rng.integers(0, 2**31 - 1)),
    }


def build_fixture_model(spec, attempt=0):
    torch.manual_seed(spec["torch_seed"] + attempt)
    layers = [nn.Flatten()] if spec["flatten"] else []
    for k, layer in enumerate(spec["layers"]):
        if k > 0:
            layers.append(nn.ReLU())
        linear = nn.Linear(layer["in"], layer["out"], bias=layer["bias"])
        # He-scaled weights keep activations O(1) through the ReLUs; torch's default init shrinks
        # them layer by layer until the outputs hardly depend on the input.
        with torch.no_grad():
            linear.weight.normal_(0.0, (2.0 / layer["in"]) ** 0.5)
            if linear.bias is not None:
                linear.bias.uniform_(-0.5, 0.5)
        layers.append(linear)
    if spec["final_relu"]:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


def _informative(output):
    """Not all zero, and (batch > 1) not the same row for every input: a test can fail on it."""
    if not np.any(output):
        return False
    return len(output) == 1 or bool(np.any(output.std(axis=0) > 1e-3 * np.abs(output).mean()))


def write_fixture(out_dir, index, seed):
    """Export, run the reference and self-check one fixture; returns its index entry."""
    spec = describe_fixture(index, seed)
    batch = spec["run_batch"] or spec["export_batch"]
    x = np.random.default_rng(spec["input_seed"]).standard_normal((batch, spec["layers"][0]["in"]))
    x = x.astype(np.float32)
    for attempt in range(MAX_ATTEMPTS):  # a width-1 layer after a ReLU can zero everything
        model = build_fixture_model(spec, attempt)
        with torch.no_grad():
            if _informative(model(torch.from_numpy(x)).numpy()):
                break
    in_width, out_width = spec["layers"][0]["in"], spec["layers"][-1]["out"]
    name = f"mlp_{index:03d}_op{spec['opset']}_{'dynamic' if spec['dynamic'] else 'static'}"
    onnx_file, input_file, ref_file = f"{name}.onnx", f"{name}_input.npy", f"{name}_ref.npy"

    dummy = torch.zeros(spec["export_batch"], in_width)
    dynamic_axes = ({INPUT_NAME: {0: BATCH_DIM_NAME}, OUTPUT_NAME: {0: BATCH_DIM_NAME}}
                    if spec["dynamic"] else None)
    onnx_path = os.path.join(out_dir, onnx_file)
    with atomic_path(onnx_path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, dummy, tmp, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], opset_version=spec["opset"],
                              dynamic_axes=dynamic_axes, do_constant_folding=True)
        onnx.checker.check_model(onnx.load(tmp), full_check=True)

    reference = run_onnx_float64(onnx_path, {INPUT_NAME: x})[OUTPUT_NAME]
    with torch.no_grad():
        expected = model.double()(torch.from_numpy(x.astype(np.float64))).numpy()
    error = rel_l2(reference, expected)
    if not error <= SELF_CHECK_REL_L2 or reference.shape != expected.shape:
        raise FixtureError(f"{onnx_path}: float64 reference differs from PyTorch float64: "
                           f"shapes {list(reference.shape)} vs {list(expected.shape)}, "
                           f"rel L2 {error:.3e} > {SELF_CHECK_REL_L2:.0e}")
    save_npy(os.path.join(out_dir, input_file), x)
    save_npy(os.path.join(out_dir, ref_file), reference)
    return {
        "name": name, "onnx": onnx_file, "input": input_file, "reference": ref_file,
        "opset": spec["opset"], "dynamic": spec["dynamic"],
        "shape": [batch, in_width], "output_shape": [batch, out_width],
        "input_name": INPUT_NAME, "output_name": OUTPUT_NAME,
        "export_batch": spec["export_batch"], "layers": spec["layers"],
        "flatten": spec["flatten"], "final_relu": spec["final_relu"],
    }


def generate(out_dir, count, seed, log=print):
    """Write ``count`` fixtures and index.json into ``out_dir``; returns the index dict."""
    os.makedirs(out_dir, exist_ok=True)
    entries = []
    for i in range(count):
        entry = write_fixture(out_dir, i, seed)
        entries.append(entry)
        widths = [entry["layers"][0]["in"]] + [layer["out"] for layer in entry["layers"]]
        log(f"{entry['name']}: widths {widths}, bias {[l['bias'] for l in entry['layers']]}, "
            f"input {entry['shape']}")
    index = {"format": INDEX_FORMAT, "format_version": INDEX_VERSION, "seed": seed,
             "count": count, "torch_version": torch.__version__,
             "onnx_version": onnx.__version__, "models": entries}
    with atomic_path(os.path.join(out_dir, "index.json")) as tmp:
        with open(tmp, "w") as f:
            json.dump(index, f, indent=1)
    return index


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m mlprt_tools.fixtures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder to write, e.g. build/fixtures")
    parser.add_argument("--count", type=int, default=28, help="number of models (default 28)")
    parser.add_argument("--seed", type=int, default=0, help="a new seed gives unseen models")
    parser.add_argument("--quiet", action="store_true", help="print only the summary line")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count must be >= 1, got {args.count}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    try:
        generate(args.out, args.count, args.seed, log=(lambda _: None) if args.quiet else print)
    except (FixtureError, OSError, RuntimeError, onnx.checker.ValidationError) as e:
        print(f"mlprt_tools.fixtures: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.count} fixtures and {os.path.join(args.out, 'index.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
