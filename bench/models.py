"""The benchmark models as ONNX files: Gemm(transB) + activation chains with random weights."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# name -> (layer widths, hidden activation)
MODELS = {
    "seed": ([784, 32, 10], "Relu"),
    "mnist": ([784, 1024, 1024, 10], "Relu"),
    "tcnn": ([64, 64, 64, 64, 64, 16], "Relu"),
    "wide": ([1024, 4096, 4096, 1024], "Gelu"),
}


def make_mlp(path, dims, activation="Relu", seed=0, opset=13):
    """Saves an MLP with a dynamic batch dimension 'N'; activation after every hidden layer."""
    rng = np.random.default_rng(seed)
    nodes, inits, x = [], [], "input"
    for i, (k, n) in enumerate(zip(dims[:-1], dims[1:])):
        w = (rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
        b = (0.1 * rng.standard_normal(n)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        last = i == len(dims) - 2
        y = "output" if last else f"fc{i}_out"
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [y], name=f"fc{i}",
                                      transB=1))
        if not last:
            nodes.append(helper.make_node(activation, [y], [f"act{i}_out"], name=f"act{i}"))
            y = f"act{i}_out"
        x = y
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", dims[0]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", dims[-1]])], inits)
    opset_version = 20 if activation == "Gelu" else opset
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset_version)])
    model.ir_version = 8
    onnx.save(model, path)
