"""A zoo of small, varied MLPs exported by torch, with inputs and float64 references.

    python3 -m mlprt_tools.fixtures_zoo export --out tests/fixtures/torch1            # torch 1.13
    python3 -m mlprt_tools.fixtures_zoo export --out DIR --dynamo                     # torch 2.x
    python3 -m mlprt_tools.fixtures_zoo reference --dir tests/fixtures/torch2         # refs here

`export` writes per model <name>.onnx, <name>_in<k>.npy (float32) and <name>_torch<k>.npy
(torch's own float64 output) plus index.json. Without --dynamo it also computes the references
(<name>_ref<k>.npy, float64) with mlprt_tools.reference and checks them against torch float64.
`reference` does that last step for a folder exported elsewhere (the torch 2.x machine), using
the stored torch float64 outputs for the cross-check. The module needs only torch and numpy
until the reference step, so that it runs on a machine without our other dependencies.
"""

import argparse
import json
import os
import sys
import warnings

import numpy as np
import torch
from torch import nn

from .mixer_models import GmlpBlock, MixerBlock, ResmlpBlock

INDEX_FORMAT = "mlprt-fixture-zoo"
INDEX_VERSION = 1
# torch float64 vs numpy float64: summation order, and attributes (alpha, eps) that ONNX
# stores in float32 while torch keeps them in float64 (about 1e-8 relative).
SELF_CHECK_REL_L2 = 1e-7
MAX_ONNX_BYTES = 1 << 20


def _act(kind):
    return {
        "relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.1), "sigmoid": nn.Sigmoid(),
        "tanh": nn.Tanh(), "elu": nn.ELU(0.7), "selu": nn.SELU(), "hardsigmoid": nn.Hardsigmoid(),
        "hardswish": nn.Hardswish(), "softplus": nn.Softplus(), "gelu": nn.GELU(),
        "gelu_tanh": nn.GELU(approximate="tanh"), "relu6": nn.ReLU6(),
        "hardtanh": nn.Hardtanh(-0.5, 0.75), "identity": nn.Identity(), "silu": nn.SiLU(),
        "mish": nn.Mish(),
    }[kind]


class Mlp(nn.Module):
    """Linear layers with an activation between them, optional norm after the first Linear,
    optional Softmax/LogSoftmax head; works on [N, F] and [N, T, F]."""

    def __init__(self, widths, act="relu", bias=True, norm=None, head=None, dropout=False,
                 flatten=False):
        super().__init__()
        layers = [nn.Flatten()] if flatten else []
        for k in range(len(widths) - 1):
            if k > 0:
                layers.append(_act(act))
                if dropout:
                    layers.append(nn.Dropout(0.3))
            layers.append(nn.Linear(widths[k], widths[k + 1], bias=bias))
            if k == 0 and norm == "layernorm":
                layers.append(nn.LayerNorm(widths[1]))
            if k == 0 and norm == "batchnorm":
                bn = nn.BatchNorm1d(widths[1])
                with torch.no_grad():
                    bn.running_mean.uniform_(-0.5, 0.5)
                    bn.running_var.uniform_(0.5, 2.0)
                    bn.weight.uniform_(0.5, 1.5)
                    bn.bias.uniform_(-0.3, 0.3)
                layers.append(bn)
        if head == "softmax":
            layers.append(nn.Softmax(dim=-1))
        elif head == "log_softmax":
            layers.append(nn.LogSoftmax(dim=-1))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


class Residual(nn.Module):
    def __init__(self, width, act="relu", blocks=2):
        super().__init__()
        self.inp = nn.Linear(width, 16)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(16, 24), _act(act), nn.Linear(24, 16)) for _ in range(blocks))
        self.out = nn.Linear(16, 5)

    def forward(self, x):
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(torch.relu(h))


class TwoInTwoOut(nn.Module):
    """Two inputs merged by Add; two heads: logits and probabilities."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(7, 12)
        self.b = nn.Linear(3, 12, bias=False)
        self.h1 = nn.Linear(12, 4)
        self.h2 = nn.Linear(12, 6)

    def forward(self, a, b):
        h = torch.tanh(self.a(a) + self.b(b))
        return self.h1(h), torch.softmax(self.h2(h), dim=1)


class ViewFlatten(nn.Module):
    """x.view(x.size(0), -1): the Shape/Gather/Unsqueeze/Concat chain of the 1.x exporter."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 10)
        self.fc2 = nn.Linear(10, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x.view(x.size(0), -1))))


class Scaled(nn.Module):
    """(x - mean) / std, * gain, then an MLP: Sub, Div, Mul with broadcast constants."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.linspace(-1.0, 1.0, 9))
        self.register_buffer("std", torch.linspace(0.5, 2.0, 9))
        self.mlp = Mlp([9, 11, 2], act="sigmoid")

    def forward(self, x):
        return self.mlp((x - self.mean) / self.std * 1.5)


class SqueezeUnsqueeze(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 5)
        self.fc2 = nn.Linear(5, 4)

    def forward(self, x):
        h = torch.relu(self.fc(x.unsqueeze(1)))  # [N, 1, 5]
        return self.fc2(h.squeeze(1))


def _spec(name, make, shapes, opset, dynamic=(), outputs=("output",), inputs=("input",)):
    """shapes: run shape per input; dynamic: {input index: {axis: symbol}}."""
    return {"name": name, "make": make, "shapes": shapes, "opset": opset,
            "dynamic": dict(dynamic), "inputs": list(inputs), "outputs": list(outputs)}


B = {0: {0: "batch"}}  # dynamic batch on input 0
ZOO = [
    _spec("relu_bias_static", lambda: Mlp([20, 32, 10]), [[4, 20]], 11),
    _spec("relu_nobias_dynamic", lambda: Mlp([16, 24, 24, 3], bias=False), [[7, 16]], 13, B),
    _spec("leaky_relu_deep", lambda: Mlp([10, 40, 30, 20, 5], act="leaky_relu"), [[5, 10]], 12, B),
    _spec("sigmoid", lambda: Mlp([8, 16, 4], act="sigmoid"), [[3, 8]], 13),
    _spec("tanh_wide", lambda: Mlp([33, 257, 9], act="tanh"), [[6, 33]], 14, B),
    _spec("elu", lambda: Mlp([12, 20, 6], act="elu"), [[5, 12]], 15),
    _spec("selu", lambda: Mlp([12, 20, 6], act="selu"), [[5, 12]], 16, B),
    _spec("hardsigmoid", lambda: Mlp([10, 14, 3], act="hardsigmoid"), [[4, 10]], 17),
    _spec("hardswish", lambda: Mlp([10, 14, 3], act="hardswish"), [[4, 10]], 14, B),
    _spec("softplus", lambda: Mlp([9, 13, 2], act="softplus"), [[6, 9]], 13),
    _spec("gelu_exact", lambda: Mlp([16, 32, 8], act="gelu"), [[5, 16]], 13, B),
    _spec("gelu_tanh", lambda: Mlp([16, 32, 8], act="gelu_tanh"), [[5, 16]], 17, B),
    _spec("softmax_op11", lambda: Mlp([10, 16, 7], head="softmax"), [[4, 10]], 11, B),
    _spec("softmax_op13", lambda: Mlp([10, 16, 7], head="softmax"), [[4, 10]], 13),
    _spec("log_softmax", lambda: Mlp([10, 16, 7], head="log_softmax"), [[4, 10]], 13, B),
    _spec("layernorm_op17", lambda: Mlp([12, 24, 6], norm="layernorm"), [[5, 12]], 17, B),
    _spec("layernorm_decomposed", lambda: Mlp([12, 24, 6], norm="layernorm"), [[5, 12]], 13, B),
    _spec("batchnorm1d", lambda: Mlp([12, 24, 6], norm="batchnorm"), [[5, 12]], 13, B),
    _spec("residual", lambda: Residual(10), [[6, 10]], 13, B),
    _spec("two_inputs_two_outputs", lambda: TwoInTwoOut(), [[5, 7], [5, 3]], 13,
          {0: {0: "batch"}, 1: {0: "batch"}}, outputs=("logits", "probs"), inputs=("a", "b")),
    _spec("seq_3d", lambda: Mlp([8, 16, 4], act="gelu"), [[3, 5, 8]], 13,
          {0: {0: "batch", 1: "time"}}),
    _spec("seq_3d_layernorm", lambda: Mlp([8, 16, 4], norm="layernorm"), [[2, 4, 8]], 17, B),
    _spec("flatten_3d", lambda: Mlp([15, 10, 4], flatten=True), [[4, 3, 5]], 12, B),
    _spec("view_flatten", lambda: ViewFlatten(), [[5, 3, 4]], 11, B),
    _spec("clip_relu6", lambda: Mlp([10, 12, 4], act="relu6"), [[4, 10]], 11),
    _spec("clip_hardtanh", lambda: Mlp([10, 12, 4], act="hardtanh"), [[4, 10]], 13, B),
    _spec("dropout_eval", lambda: Mlp([10, 12, 12, 4], dropout=True), [[4, 10]], 12),
    _spec("scaled_sub_mul_div", lambda: Scaled(), [[6, 9]], 13, B),
    _spec("squeeze_unsqueeze_op11", lambda: SqueezeUnsqueeze(), [[4, 6]], 11, B),
    _spec("squeeze_unsqueeze_op13", lambda: SqueezeUnsqueeze(), [[4, 6]], 13, B),
    _spec("single_neuron", lambda: Mlp([1, 1]), [[3, 1]], 13, B),
    _spec("silu", lambda: Mlp([10, 18, 18, 4], act="silu"), [[5, 10]], 14, B),
    _spec("mish", lambda: Mlp([10, 18, 4], act="mish"), [[5, 10]], 17, B),
    # The MLP family past Sequential (issue 14): Transpose of activations, token mixing,
    # chunk (Shape/Gather/Slice), gating Mul, ReduceMean over tokens.
    _spec("mlp_mixer_block", lambda: MixerBlock(), [[3, 6, 8]], 17, B),
    _spec("gmlp_block", lambda: GmlpBlock(), [[3, 6, 8]], 17, B),
    _spec("resmlp_block", lambda: ResmlpBlock(), [[3, 6, 8]], 17, B),
]


def _rel_l2(actual, expected):
    diff = np.linalg.norm(np.asarray(actual, np.float64) - np.asarray(expected, np.float64))
    return diff / max(np.linalg.norm(np.asarray(expected, np.float64)), 1e-30)


def _model(spec, seed):
    torch.manual_seed(seed)
    return spec["make"]().eval()


def _inputs(spec, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for shape in spec["shapes"]]


def _export_batch_args(spec, xs):
    """Dynamic inputs are traced at another size than the run size, so that a model that baked
    the traced size into a constant gives wrong results instead of passing by luck."""
    out = []
    for i, x in enumerate(xs):
        shape = list(x.shape)
        for axis in spec["dynamic"].get(i, {}):
            shape[axis] = shape[axis] + 2
        out.append(torch.zeros(shape) + 0.1)
    return tuple(out)


def _export(spec, model, args, path, dynamo, opset):
    kwargs = {"input_names": spec["inputs"], "output_names": spec["outputs"],
              "opset_version": opset}
    if dynamo:
        dims = {}
        shapes = []
        for i in range(len(spec["inputs"])):
            axes = {}
            for axis, symbol in spec["dynamic"].get(i, {}).items():
                dims.setdefault(symbol, torch.export.Dim(symbol, min=1, max=4096))
                axes[axis] = dims[symbol]
            shapes.append(axes or None)
        if spec["dynamic"]:
            kwargs["dynamic_shapes"] = tuple(shapes)
        program = torch.onnx.export(model, args, dynamo=True, external_data=False, **kwargs)
        program.save(path)
        return
    dynamic_axes = {}
    for i, axes in spec["dynamic"].items():
        dynamic_axes[spec["inputs"][i]] = dict(axes)
        if 0 in axes:
            for out in spec["outputs"]:
                dynamic_axes.setdefault(out, {0: axes[0]})
                if spec["name"].startswith("seq_3d") and 1 in axes:
                    dynamic_axes[out][1] = axes[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, path, dynamic_axes=dynamic_axes or None,
                          do_constant_folding=True, **kwargs)


def export_zoo(out_dir, dynamo=False, opset_override=None, seed=0, log=print, only=None):
    """Export every zoo model; writes .onnx, inputs, torch float64 outputs and index.json."""
    os.makedirs(out_dir, exist_ok=True)
    entries = []
    failed = []
    for k, spec in enumerate(ZOO):
        if only and spec["name"] not in only:
            continue
        model = _model(spec, seed * 1000 + k)
        xs = _inputs(spec, seed * 1000 + k + 500)
        if opset_override:
            opset = opset_override(spec)
        elif dynamo:  # the dynamo exporter starts at opset 18; 20 brings the Gelu op
            opset = 20 if "gelu" in spec["name"] or k % 3 == 0 else 18
        else:
            opset = spec["opset"]
        path = os.path.join(out_dir, spec["name"] + ".onnx")
        try:
            _export(spec, model, _export_batch_args(spec, xs), path, dynamo, opset)
        except Exception as e:  # one exporter failure must not hide the other models
            failed.append({"name": spec["name"], "error": f"{type(e).__name__}: {e}"[:2000]})
            log(f"{spec['name']}: EXPORT FAILED: {failed[-1]['error'][:300]}")
            continue
        size = os.path.getsize(path)
        if size > MAX_ONNX_BYTES:
            raise RuntimeError(f"{path}: {size} bytes, over the {MAX_ONNX_BYTES} limit")
        with torch.no_grad():
            outs = model.double()(*[torch.from_numpy(x.astype(np.float64)) for x in xs])
        outs = outs if isinstance(outs, tuple) else (outs,)
        entry = {"name": spec["name"], "onnx": spec["name"] + ".onnx", "opset": opset,
                 "dynamic": bool(spec["dynamic"]), "inputs": [], "outputs": []}
        for i, (name, x) in enumerate(zip(spec["inputs"], xs)):
            file = f"{spec['name']}_in{i}.npy"
            np.save(os.path.join(out_dir, file), x)
            entry["inputs"].append({"name": name, "file": file, "shape": list(x.shape)})
        for i, (name, y) in enumerate(zip(spec["outputs"], outs)):
            file = f"{spec['name']}_torch{i}.npy"
            np.save(os.path.join(out_dir, file), y.numpy())
            entry["outputs"].append({"name": name, "torch": file, "shape": list(y.shape)})
        entries.append(entry)
        log(f"{spec['name']}: opset {opset}, {size} bytes, inputs "
            f"{[e['shape'] for e in entry['inputs']]}")
    index = {"format": INDEX_FORMAT, "format_version": INDEX_VERSION, "seed": seed,
             "exporter": "dynamo" if dynamo else "torchscript", "torch_version": torch.__version__,
             "models": entries, "export_failures": failed}
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    return index


def compute_references(folder, log=print):
    """Our float64 reference for every model of index.json, cross-checked with torch float64."""
    from .reference import run_onnx_float64  # needs onnx: not on the export-only machine

    with open(os.path.join(folder, "index.json")) as f:
        index = json.load(f)
    worst = 0.0
    for entry in index["models"]:
        feeds = {i["name"]: np.load(os.path.join(folder, i["file"])) for i in entry["inputs"]}
        refs = run_onnx_float64(os.path.join(folder, entry["onnx"]), feeds)
        for k, out in enumerate(entry["outputs"]):
            ref = refs[out["name"]]
            torch_out = np.load(os.path.join(folder, out["torch"]))
            error = _rel_l2(ref, torch_out)
            worst = max(worst, error)
            if ref.shape != torch_out.shape or not error <= SELF_CHECK_REL_L2:
                raise RuntimeError(f"{entry['name']}: output '{out['name']}': float64 reference "
                                   f"{list(ref.shape)} differs from torch float64 "
                                   f"{list(torch_out.shape)}: rel L2 {error:.3e}")
            out["reference"] = f"{entry['name']}_ref{k}.npy"
            np.save(os.path.join(folder, out["reference"]), ref)
        log(f"{entry['name']}: reference agrees with torch float64")
    index["reference_vs_torch_worst_rel_l2"] = worst
    with open(os.path.join(folder, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    return index


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m mlprt_tools.fixtures_zoo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export")
    exp.add_argument("--out", required=True)
    exp.add_argument("--dynamo", action="store_true", help="torch 2.x dynamo exporter")
    exp.add_argument("--opset", type=int, help="one opset for every model (dynamo: 18+)")
    exp.add_argument("--seed", type=int, default=0)
    exp.add_argument("--only", nargs="*", help="names of zoo models to export")
    ref = sub.add_parser("reference")
    ref.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    if args.command == "export":
        override = (lambda spec: args.opset) if args.opset else None
        export_zoo(args.out, dynamo=args.dynamo, opset_override=override, seed=args.seed,
                   only=args.only)
        if not args.dynamo:
            compute_references(args.out)
    else:
        compute_references(args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
