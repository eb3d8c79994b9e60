"""Strongly typed float16 / bfloat16 copies of float32 ONNX models.

What a user gets from `model.half()` + torch.onnx.export on a GPU, or from an fp16 conversion
tool: every float initializer, graph input, graph output and value_info in the narrow type.

    python3 -m mlprt_tools.typed model.onnx model_fp16.onnx --type float16
"""
import argparse

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from mlprt_tools.atomic import atomic_path

NARROW = {"float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16}


def bf16_bits(values):
    """float32 array -> uint16 bfloat16 bit patterns, rounded to nearest even."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bf16_to_float32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def round_to(values, type_name):
    """float32 values as the narrow type would hold them, back in float32."""
    if type_name == "float16":
        return np.asarray(values, dtype=np.float32).astype(np.float16).astype(np.float32)
    return bf16_to_float32(bf16_bits(values))


def _narrow_tensor(tensor, elem):
    values = numpy_helper.to_array(tensor).astype(np.float32)
    out = TensorProto()
    out.name = tensor.name
    out.dims.extend(tensor.dims)
    out.data_type = elem
    if elem == TensorProto.FLOAT16:
        out.raw_data = values.astype(np.float16).tobytes()
    else:
        out.raw_data = bf16_bits(values).tobytes()
    return out


def to_typed(model, type_name):
    """A copy of `model` with its float32 tensors in `type_name` (float16 or bfloat16)."""
    elem = NARROW[type_name]
    typed = onnx.ModelProto()
    typed.CopyFrom(model)
    graph = typed.graph
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT:
            graph.initializer[i].CopyFrom(_narrow_tensor(init, elem))
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = elem
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(_narrow_tensor(attr.t, elem))
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = elem
    return typed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--type", choices=sorted(NARROW), default="float16")
    args = parser.parse_args(argv)
    typed = to_typed(onnx.load(args.source), args.type)
    with atomic_path(args.target) as tmp:
        onnx.save(typed, tmp)
    print(f"wrote {args.target} ({args.type})")


if __name__ == "__main__":
    main()
