"""A float64 numpy evaluator for the ONNX graphs of MLPs: the ground truth of our numerics tests.

    python3 -m mlprt_tools.reference --onnx m.onnx --input x.npy --output ref.npy
    python3 -m mlprt_tools.reference --onnx m.onnx --input input:x.npy --output output:ref.npy

Every float tensor (inputs, initializers, constants) is widened to float64 before any arithmetic,
so the only float32 rounding left is the one already in the stored weights.
"""

import argparse
import math
import sys

import numpy as np
import onnx
from onnx import numpy_helper

from .atomic import save_npy


class OnnxReferenceError(RuntimeError):
    """The model uses something this reference does not evaluate, or is given bad inputs."""


def _widen(array):
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float64)
    return array


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _node_label(node):
    return f"node '{node.name or '(unnamed)'}' ({node.op_type})"


def _gemm(node, inputs, attrs):
    a, b = inputs[0], inputs[1]
    if a.ndim != 2 or b.ndim != 2:
        raise OnnxReferenceError(f"{_node_label(node)}: Gemm needs rank-2 A and B, got shapes "
                                 f"{list(a.shape)} and {list(b.shape)}")
    if attrs.get("transA", 0):
        a = a.T
    if attrs.get("transB", 0):
        b = b.T
    if a.shape[1] != b.shape[0]:
        raise OnnxReferenceError(f"{_node_label(node)}: inner dims differ after transposes: "
                                 f"A' {list(a.shape)} x B' {list(b.shape)}")
    y = attrs.get("alpha", 1.0) * (a @ b)
    if len(inputs) > 2 and inputs[2] is not None:
        y = y + attrs.get("beta", 1.0) * inputs[2]  # C broadcasts unidirectionally to [M, N]
    return [y]


def _flatten(node, inputs, attrs):
    x = inputs[0]
    axis = attrs.get("axis", 1)
    if axis < 0:
        axis += x.ndim
    if not 0 <= axis <= x.ndim:
        raise OnnxReferenceError(f"{_node_label(node)}: axis {attrs.get('axis', 1)} out of range for "
                                 f"rank {x.ndim}")
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    return [x.reshape(outer, -1) if outer else x.reshape(0, int(np.prod(x.shape[axis:])))]


def _reshape(node, inputs, attrs):
    x, shape = inputs[0], [int(d) for d in inputs[1].reshape(-1)]
    allow_zero = attrs.get("allowzero", 0)
    out = []
    for i, d in enumerate(shape):
        if d == 0 and not allow_zero:
            if i >= x.ndim:
                raise OnnxReferenceError(f"{_node_label(node)}: shape {shape} copies dim {i} but the "
                                         f"input has rank {x.ndim}")
            out.append(x.shape[i])
        else:
            out.append(d)
    if out.count(-1) > 1:
        raise OnnxReferenceError(f"{_node_label(node)}: shape {shape} has more than one -1")
    try:
        return [x.reshape(out)]
    except ValueError:
        raise OnnxReferenceError(f"{_node_label(node)}: cannot reshape {list(x.shape)} to {shape}")


def _dropout(node, inputs, attrs):
    training = len(inputs) > 2 and inputs[2] is not None and bool(np.asarray(inputs[2]))
    if training:
        raise OnnxReferenceError(f"{_node_label(node)}: Dropout with training_mode=true is not "
                                 f"deterministic; export the model in eval mode")
    return [inputs[0], np.ones(inputs[0].shape, dtype=bool)]


def _constant(node, inputs, attrs):
    if "value" in attrs:
        return [_widen(numpy_helper.to_array(attrs["value"]))]
    for key, dtype in (("value_float", np.float64), ("value_floats", np.float64),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in attrs:
            return [np.asarray(attrs[key], dtype=dtype)]
    raise OnnxReferenceError(f"{_node_label(node)}: Constant with attributes {sorted(attrs)}; "
                             f"supported are value, value_float(s), value_int(s)")


def _elementwise(fn):
    return lambda node, inputs, attrs: [fn(*inputs)]


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _axis(node, axis, rank):
    if not -rank <= axis < max(rank, 1):
        raise OnnxReferenceError(f"{_node_label(node)}: axis {axis} out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _softmax_like(log):
    def run(node, inputs, attrs, opset):
        x = inputs[0]
        if opset >= 13:
            axis = _axis(node, attrs.get("axis", -1), x.ndim)
            shifted = x - np.max(x, axis=axis, keepdims=True)
            total = np.sum(np.exp(shifted), axis=axis, keepdims=True)
            return [shifted - np.log(total) if log else np.exp(shifted) / total]
        # Before opset 13 the input is flattened to 2-D at `axis` (default 1) and normalized
        # over the whole second part.
        axis = _axis(node, attrs.get("axis", 1), x.ndim)
        flat = x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)
        shifted = flat - np.max(flat, axis=1, keepdims=True)
        total = np.sum(np.exp(shifted), axis=1, keepdims=True)
        out = shifted - np.log(total) if log else np.exp(shifted) / total
        return [out.reshape(x.shape)]
    return run


def _axes_from(node, inputs, attrs, opset, input_index, attr_opset_limit):
    """Axes from the attribute (before `attr_opset_limit`) or the optional input (from it)."""
    if opset < attr_opset_limit:
        return attrs.get("axes")
    if len(inputs) > input_index and inputs[input_index] is not None:
        return [int(a) for a in np.asarray(inputs[input_index]).reshape(-1)]
    return None


def _reduce_mean(node, inputs, attrs, opset):
    x = inputs[0]
    axes = _axes_from(node, inputs, attrs, opset, 1, 18)
    if axes is None or len(axes) == 0:
        if attrs.get("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(x.ndim))
    axes = tuple(_axis(node, a, x.ndim) for a in axes)
    return [np.mean(x, axis=axes, keepdims=bool(attrs.get("keepdims", 1)))]


def _unsqueeze(node, inputs, attrs, opset):
    x = inputs[0]
    axes = _axes_from(node, inputs, attrs, opset, 1, 13)
    rank = x.ndim + len(axes)
    out = x
    for a in sorted(_axis(node, a, rank) for a in axes):
        out = np.expand_dims(out, a)
    return [out]


def _squeeze(node, inputs, attrs, opset):
    x = inputs[0]
    axes = _axes_from(node, inputs, attrs, opset, 1, 13)
    if axes is None:
        return [np.squeeze(x)]
    axes = tuple(_axis(node, a, x.ndim) for a in axes)
    if any(x.shape[a] != 1 for a in axes):
        raise OnnxReferenceError(f"{_node_label(node)}: cannot squeeze axes {list(axes)} of shape "
                                 f"{list(x.shape)}")
    return [np.squeeze(x, axis=axes)]


def _clip(node, inputs, attrs, opset):
    x = inputs[0]
    if opset < 11:
        lo, hi = attrs.get("min", -np.inf), attrs.get("max", np.inf)
    else:
        lo = inputs[1] if len(inputs) > 1 and inputs[1] is not None else -np.inf
        hi = inputs[2] if len(inputs) > 2 and inputs[2] is not None else np.inf
    return [np.minimum(np.maximum(x, lo), hi)]


def _batch_norm(node, inputs, attrs, opset):
    x, scale, bias, mean, var = inputs[:5]
    if attrs.get("training_mode", 0):
        raise OnnxReferenceError(f"{_node_label(node)}: training_mode=1 is not inference")
    shape = [1, -1] + [1] * (x.ndim - 2)  # channels are axis 1
    eps = attrs.get("epsilon", 1e-5)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    return [y * scale.reshape(shape) + bias.reshape(shape)]


def _layer_norm(node, inputs, attrs, opset):
    x, scale = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 and inputs[2] is not None else 0.0
    axis = _axis(node, attrs.get("axis", -1), x.ndim)
    axes = tuple(range(axis, x.ndim))
    mean = np.mean(x, axis=axes, keepdims=True)
    var = np.mean((x - mean) ** 2, axis=axes, keepdims=True)
    inv = 1.0 / np.sqrt(var + attrs.get("epsilon", 1e-5))
    return [(x - mean) * inv * scale + bias, mean, inv]


def _gelu(node, inputs, attrs, opset):
    x = inputs[0]
    if attrs.get("approximate", b"none") in (b"tanh", "tanh"):
        return [0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))]
    return [0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))]


def _gather(node, inputs, attrs, opset):
    x, idx = inputs[0], np.asarray(inputs[1]).astype(np.int64)
    axis = _axis(node, attrs.get("axis", 0), x.ndim)
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    return [np.take(x, idx, axis=axis)]


_CAST_TYPES = {1: np.float64, 10: np.float64, 11: np.float64, 16: np.float64,  # floats stay wide
               6: np.int32, 7: np.int64, 9: np.bool_, 3: np.int8, 2: np.uint8}


def _cast(node, inputs, attrs, opset):
    to = attrs.get("to")
    if to not in _CAST_TYPES:
        raise OnnxReferenceError(f"{_node_label(node)}: Cast to ONNX type {to} is not supported")
    return [np.asarray(inputs[0]).astype(_CAST_TYPES[to])]


def _constant_of_shape(node, inputs, attrs, opset):
    value = _widen(numpy_helper.to_array(attrs["value"])) if "value" in attrs else np.zeros(1)
    return [np.full([int(d) for d in inputs[0].reshape(-1)], value.reshape(-1)[0],
                    dtype=value.dtype)]


def _slice(node, inputs, attrs, opset):
    x = inputs[0]
    if opset < 10:
        starts, ends = attrs["starts"], attrs["ends"]
        axes, steps = attrs.get("axes"), None
    else:
        starts, ends = inputs[1].reshape(-1), inputs[2].reshape(-1)
        axes = inputs[3].reshape(-1) if len(inputs) > 3 and inputs[3] is not None else None
        steps = inputs[4].reshape(-1) if len(inputs) > 4 and inputs[4] is not None else None
    axes = list(range(len(starts))) if axes is None else [_axis(node, int(a), x.ndim) for a in axes]
    index = [slice(None)] * x.ndim
    for k, a in enumerate(axes):
        index[a] = slice(int(starts[k]), int(ends[k]), 1 if steps is None else int(steps[k]))
    return [x[tuple(index)]]

OPS = {
    "Gemm": _gemm,
    "MatMul": _elementwise(np.matmul),
    "Add": _elementwise(np.add),
    "Sub": _elementwise(np.subtract),
    "Mul": _elementwise(np.multiply),
    "Div": _elementwise(np.divide),
    "Pow": _elementwise(np.power),
    "Sqrt": _elementwise(np.sqrt),
    "Neg": _elementwise(np.negative),
    "Reciprocal": _elementwise(lambda x: 1.0 / x),
    "Relu": _elementwise(lambda x: np.maximum(x, 0.0)),
    "Sigmoid": _elementwise(lambda x: 1.0 / (1.0 + np.exp(-x))),
    "Tanh": _elementwise(np.tanh),
    "Erf": _elementwise(_erf),
    "LeakyRelu": lambda node, inputs, attrs: [np.where(inputs[0] >= 0, inputs[0],
                                                       attrs.get("alpha", 0.01) * inputs[0])],
    "Elu": lambda node, inputs, attrs: [np.where(inputs[0] > 0, inputs[0], attrs.get(
        "alpha", 1.0) * np.expm1(np.minimum(inputs[0], 0.0)))],
    "Selu": lambda node, inputs, attrs: [attrs.get("gamma", 1.0507009873554804934193349852946) *
                                         np.where(inputs[0] > 0, inputs[0], attrs.get(
                                             "alpha", 1.6732632423543772848170429916717) *
                                             np.expm1(np.minimum(inputs[0], 0.0)))],
    "HardSigmoid": lambda node, inputs, attrs: [np.clip(attrs.get("alpha", 0.2) * inputs[0] +
                                                        attrs.get("beta", 0.5), 0.0, 1.0)],
    "HardSwish": _elementwise(lambda x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0)),
    "Softplus": _elementwise(lambda x: np.logaddexp(0.0, x)),
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Identity": _elementwise(lambda x: x),
    "Dropout": _dropout,
    "Constant": _constant,
    "Shape": _elementwise(lambda x: np.asarray(np.shape(x), dtype=np.int64)),
    "Concat": lambda node, inputs, attrs: [np.concatenate(inputs, axis=attrs["axis"])],
    "Transpose": lambda node, inputs, attrs: [np.transpose(inputs[0], attrs.get("perm"))],
    "Greater": _elementwise(np.greater),
    "Less": _elementwise(np.less),
    "Equal": _elementwise(np.equal),
    "Not": _elementwise(np.logical_not),
    "Where": _elementwise(np.where),
    "Expand": lambda node, inputs, attrs: [inputs[0] * np.ones([int(d) for d in inputs[1]],
                                                               dtype=inputs[0].dtype)],
}
# Ops whose semantics changed between opsets: they also get the model's default-domain opset.
OPSET_OPS = {
    "Softmax": _softmax_like(log=False),
    "LogSoftmax": _softmax_like(log=True),
    "ReduceMean": _reduce_mean,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Clip": _clip,
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm,
    "Gelu": _gelu,
    "Gather": _gather,
    "Cast": _cast,
    "ConstantOfShape": _constant_of_shape,
    "Slice": _slice,
}


def _declared_dims(value_info):
    """Static dims as ints, symbolic or unknown dims as None; None if no shape is declared."""
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]


def _check_input(model_name, value_info, array):
    dims = _declared_dims(value_info)
    if dims is None:
        return
    if array.ndim != len(dims) or any(d is not None and d != s for d, s in zip(dims, array.shape)):
        shown = ["?" if d is None else d for d in dims]
        raise OnnxReferenceError(f"{model_name}: input '{value_info.name}' has shape "
                                 f"{list(array.shape)}, the model declares {shown}")


def run_model_float64(model, inputs, model_name="model"):
    """Evaluate a loaded ModelProto; returns {output name: float64 array}."""
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    values = {t.name: _widen(numpy_helper.to_array(t)) for t in graph.initializer}
    for value_info in graph.input:
        if value_info.name in values and value_info.name not in inputs:
            continue  # an initializer listed as an input (older exporters) keeps its value
        if value_info.name not in inputs:
            raise OnnxReferenceError(f"{model_name}: input '{value_info.name}' not given; "
                                     f"given: {sorted(inputs)}")
        array = _widen(inputs[value_info.name])
        _check_input(model_name, value_info, array)
        values[value_info.name] = array
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise OnnxReferenceError(f"{model_name}: {_node_label(node)} is in domain '{node.domain}'; "
                                     f"only the default ONNX domain is supported")
        if node.op_type in OPSET_OPS:
            op = (lambda f: lambda n, i, a: f(n, i, a, opset))(OPSET_OPS[node.op_type])
        else:
            op = OPS.get(node.op_type)
        if op is None:
            raise OnnxReferenceError(f"{model_name}: {_node_label(node)}: op '{node.op_type}' is not "
                                     f"supported by the float64 reference; supported: "
                                     f"{sorted(set(OPS) | set(OPSET_OPS))}")
        args = []
        for name in node.input:
            if name == "":
                args.append(None)  # an omitted optional input
            elif name not in values:
                raise OnnxReferenceError(f"{model_name}: {_node_label(node)} reads '{name}', which no "
                                         f"earlier node, input or initializer produces")
            else:
                args.append(values[name])
        try:
            results = op(node, args, _attrs(node))
        except (ValueError, IndexError, KeyError) as e:  # numpy shape errors, bad attributes, e.g. mismatched MatMul
            raise OnnxReferenceError(f"{model_name}: {_node_label(node)} on inputs of shapes "
                                     f"{[None if a is None else list(np.shape(a)) for a in args]}: {e}")
        for name, result in zip(node.output, results):
            if name:
                values[name] = result
    return {o.name: values[o.name] for o in graph.output}


def run_onnx_float64(path, inputs):
    """Load an .onnx file and evaluate it in float64; returns {output name: array}."""
    try:
        model = onnx.load(path)
    except FileNotFoundError:
        raise OnnxReferenceError(f"{path}: file not found") from None
    except Exception as e:  # protobuf DecodeError and friends
        raise OnnxReferenceError(f"{path}: not a readable ONNX model "
                                 f"({type(e).__name__}: {e})") from e
    return run_model_float64(model, inputs, model_name=str(path))


def _split_named(spec, default_name):
    name, sep, path = spec.partition(":")
    return (name, path) if sep else (default_name, spec)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m mlprt_tools.reference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", required=True, help="model, e.g. work/model_dynamic.onnx")
    parser.add_argument("--input", action="append", required=True,
                        help="[NAME:]x.npy, repeatable; NAME defaults to the first graph input")
    parser.add_argument("--output", action="append", required=True,
                        help="[NAME:]ref.npy, repeatable; NAME defaults to the first graph output")
    args = parser.parse_args(argv)
    try:
        model = onnx.load(args.onnx)
        initializers = {t.name for t in model.graph.initializer}
        graph_inputs = [i.name for i in model.graph.input if i.name not in initializers]
        inputs = {}
        for spec in args.input:
            name, path = _split_named(spec, graph_inputs[0] if graph_inputs else "input")
            inputs[name] = np.load(path)
        outputs = run_model_float64(model, inputs, model_name=args.onnx)
        for spec in args.output:
            name, path = _split_named(spec, model.graph.output[0].name)
            if name not in outputs:
                raise OnnxReferenceError(f"{args.onnx}: no output '{name}'; outputs: {sorted(outputs)}")
            save_npy(path, outputs[name])
            print(f"wrote {path}: '{name}' float64 {list(outputs[name].shape)}")
    except (OnnxReferenceError, OSError, ValueError) as e:
        print(f"mlprt_tools.reference: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # onnx.load's protobuf errors
        print(f"mlprt_tools.reference: error: {args.onnx}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
