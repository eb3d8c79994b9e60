#pragma once
// Optimization passes: ONNX-semantics graph -> graph of layer ops.
//
// Layer ops (what backends, the runtime and the plan deal with):
//   Dense      inputs {X, W, [B], [R]}: Y = act(X' @ W + B) (+ R, see fuse_residual_adds). W is a constant [K, N] (row-major),
//              B an optional constant [N]. X is [..., K] (any rank >= 1), Y is [..., N].
//              attrs: "activation" = none | relu | leaky_relu | sigmoid | tanh | elu |
//              gelu_erf | gelu_tanh | clip | hard_swish (the kinds a oneDNN post-op computes),
//              "alpha", "beta" (floats, as for Activation); "transpose_x" = 0 | 1 (X is 2-D
//              [K, M] and X' = transpose(X); only from Gemm transA=1).
//   Add        inputs {A, B}: numpy broadcasting; either may be a constant.
//   Binary     inputs {A, B}: numpy broadcasting; attr "kind" = add | sub | mul | div | pow.
//   Relu       inputs {X}.
//   Activation inputs {X}; attrs "kind" (see ir/activation.h: relu, leaky_relu, sigmoid, tanh,
//              elu, selu, hard_sigmoid, hard_swish, softplus, gelu_erf, gelu_tanh, clip),
//              "alpha", "beta" (floats; meaning per kind, e.g. clip: min, max).
//   Softmax    inputs {X}; attrs "axis" (int), "log" (0 | 1: LogSoftmax), "coerce_2d" (0 | 1:
//              normalize over all dims from axis on, as ONNX before opset 13).
//   LayerNorm  inputs {X, [scale], [bias]}: normalizes over the dims from "axis" on (mean and
//              variance), then * scale + bias; scale/bias are float32 constants whose element
//              count divides the normalized count (broadcast over the trailing dims).
//              attrs "axis" (int), "epsilon" (float).
//   ScaleShift inputs {X, scale, shift}: Y = X * scale[c] + shift[c] along attr "axis"; scale
//              and shift are float32 constants [C] (inference BatchNormalization).
//   Reshape    inputs {X}; attrs "shape" (ints, ONNX 0 / -1 rules), "allowzero".
//   Flatten    inputs {X}; attr "axis".
//   Squeeze    inputs {X}; attr "axes" (ints; empty: every dim of size 1).
//   Unsqueeze  inputs {X}; attr "axes" (ints, positions in the output).
//   Transpose, Slice, ReduceMean, MatMul: activations moved, cut, averaged or multiplied
//              (batched, both operands may be activations); see ir/data_ops.h. MatMul inputs
//              {A, B, [bias], [R]}.
//   A residual input R (input 3; input 2 is "" when there is no bias) is a tensor of Y's
//   shape added after the bias, only on layers without activation: Y = X' @ W + B + R.
// Reshape, Flatten, Squeeze and Unsqueeze are views: they never move data.
// Every pass keeps the graph topologically sorted and the graph's I/O names unchanged.

#include <array>
#include <string_view>

#include "ir/graph.h"
#include "mlprt/status.h"

namespace mlprt::ir {

inline constexpr std::array<std::string_view, 16> kLayerOps = {
    "Dense",     "Add",        "Binary",  "Relu",    "Activation", "Softmax",
    "LayerNorm", "ScaleShift", "Reshape", "Flatten", "Squeeze",    "Unsqueeze",
    "Transpose", "Slice",      "ReduceMean", "MatMul"};

/// Evaluates nodes whose inputs are all constants and stores their outputs as constants.
Status fold_constants(Graph& graph);
/// Folds shape computations (Shape, Gather, Concat, Slice, ... of known or symbolic dims) and
/// turns Reshapes with a computed target into ones with a constant 0 / -1 target where that is
/// equivalent for every size of the dynamic dims (see fold_shapes.cpp).
Status fold_shape_computations(Graph& graph);
/// float16 / bfloat16 constants (a strongly typed model's weights) -> float32, exactly; the
/// precision the layers run in is the builder's choice (Graph::model_precision).
Status widen_float_constants(Graph& graph);
/// Removes Identity, (inference-mode) Dropout and Casts between float types (float32, float16,
/// bfloat16), rewiring their consumers.
Status remove_identities(Graph& graph);
/// Reshape with a constant shape input -> Reshape with a "shape" attribute and one input; the
/// same for the "axes" input of Squeeze, Unsqueeze and ReduceMean (opset 13 / 18 and later).
Status constant_shapes_to_attributes(Graph& graph);
/// Decomposed GELU (exact and tanh) -> Activation; decomposed layer norm -> LayerNorm.
Status fuse_patterns(Graph& graph);
/// Activations, Clip, Sub/Mul/Div/Pow, LayerNormalization, BatchNormalization -> layer ops.
Status lower_to_layer_ops(Graph& graph);
/// Gemm / MatMul with constant weights -> Dense; folds alpha, beta, transB into the weights,
/// a following Add of a [N]-broadcastable constant into the bias, a following ScaleShift on the
/// feature axis into weights and bias, and a following Relu / Activation of a kind oneDNN fuses
/// into the activation (only when the intermediate has no other reader and is no graph output).
Status fuse_dense(Graph& graph);
/// A LayerNorm over the last axis whose output only a Dense reads (directly, or through a
/// ReduceMean that keeps the last axis): its scale and shift folded into that Dense's weights
/// and bias; the LayerNorm keeps a scale of ones.
Status fold_norm_affine(Graph& graph);
/// A Transpose that only swaps the last two axes, read by one Dense, becomes that layer's
/// transposed read (a MatMul with transpose_a); a Dense / MatMul whose only reader is such a
/// Transpose writes its output transposed (transpose_y). Token mixing is then one strided
/// batched GEMM per Linear, no copy.
Status fuse_transposes(Graph& graph);
/// Add(Dense or MatMul output, R) -> the product with R as its residual input (y = x W + b + R),
/// where the product has no activation, its output has no other reader and is no graph output,
/// and R is no constant and has exactly the product's output shape (no broadcast). See
/// fuse_residual.cpp.
Status fuse_residual_adds(Graph& graph);
/// Whether a Dense / MatMul layer has a residual input (input 3).
[[nodiscard]] bool has_residual(const Node& node);
/// Removes nodes whose outputs nobody reads and constants nobody uses.
Status remove_dead_nodes(Graph& graph);
/// Error if any node is not a layer op, naming it.
Status check_layer_ops(const Graph& graph);

/// All of the above in order.
Status optimize(Graph& graph);

}  // namespace mlprt::ir
