#pragma once
// Optimization passes: ONNX-semantics graph -> graph of layer ops.
//
// Layer ops (what backends, the runtime and the plan deal with):
//   Dense    inputs {X, W, [B]}: Y = act(X' @ W + B). W is a constant [K, N] (row-major),
//            B an optional constant [N]. X is [..., K] (any rank >= 1), Y is [..., N].
//            attrs: "activation" = "none" | "relu"; "transpose_x" = 0 | 1 (X is 2-D [K, M]
//            and X' = transpose(X); only from Gemm transA=1).
//   Add      inputs {A, B}: numpy broadcasting; either may be a constant.
//   Relu     inputs {X}.
//   Reshape  inputs {X}; attrs "shape" (ints, ONNX 0 / -1 rules), "allowzero".
//   Flatten  inputs {X}; attr "axis".
// Every pass keeps the graph topologically sorted and the graph's I/O names unchanged.

#include <array>
#include <string_view>

#include "ir/graph.h"
#include "mlprt/status.h"

namespace mlprt::ir {

inline constexpr std::array<std::string_view, 5> kLayerOps = {"Dense", "Add", "Relu", "Reshape",
                                                               "Flatten"};

/// Evaluates nodes whose inputs are all constants and stores their outputs as constants.
Status fold_constants(Graph& graph);
/// Removes Identity and (inference-mode) Dropout, rewiring their consumers.
Status remove_identities(Graph& graph);
/// Reshape with a constant shape input -> Reshape with a "shape" attribute and one input.
Status constant_shapes_to_attributes(Graph& graph);
/// Gemm / MatMul with constant weights -> Dense; folds alpha, beta, transB into the weights,
/// a following Add of a [N]-broadcastable constant into the bias, and a following Relu into
/// the activation (only when the intermediate has no other reader and is no graph output).
Status fuse_dense(Graph& graph);
/// Removes nodes whose outputs nobody reads and constants nobody uses.
Status remove_dead_nodes(Graph& graph);
/// Error if any node is not a layer op, naming it.
Status check_layer_ops(const Graph& graph);

/// All of the above in order.
Status optimize(Graph& graph);

}  // namespace mlprt::ir
