#pragma once
// Layer ops that move or reduce activations rather than compute on features: Transpose, Slice,
// ReduceMean, and MatMul of activations (batched, numpy broadcasting). Their attributes are
// read here once, so that shape inference and every backend agree on what they mean.
//
//   Transpose  inputs {X}; attr "perm" (ints; absent or empty: reverse the axes).
//   Slice      inputs {X}; attrs "starts", "ends", "axes", "steps" (ints, ONNX rules: negative
//              indices count from the end, out-of-range ones clamp; axes default 0..n-1,
//              steps default 1).
//   ReduceMean inputs {X}; attrs "axes" (ints; empty: every axis unless
//              "noop_with_empty_axes" = 1), "keepdims" (0 | 1, default 1).
//   MatMul     inputs {A, B, [bias]}: Y' = act(op(A) @ op(B) + bias), numpy matmul semantics
//              (1-D operands promoted, batch axes broadcast). Either A or B may be a constant of
//              any rank. attrs "transpose_a", "transpose_b" (0 | 1: swap the operand's last two
//              axes before the product, a transposed read, no copy), "transpose_y" (0 | 1: Y is
//              Y' with its last two axes swapped, a transposed write), "activation", "alpha",
//              "beta" (as Dense). bias: a float32 constant [N] added along Y''s last axis.

#include <cstdint>
#include <vector>

#include "ir/graph.h"
#include "mlprt/status.h"

namespace mlprt::ir {

/// A strided gather that Transpose and Slice both reduce to: y[i] (row-major over `out`)
/// = x[offset + sum_d index_d * stride[d]].
struct StridedCopy {
  Dims out;
  std::vector<int64_t> stride;  ///< element strides into x per output dim (may be negative)
  int64_t offset = 0;
};

/// The elements one Slice axis of size `n` keeps, by ONNX's rules (negative start/end count
/// from the end, out-of-range ones saturate: INT64_MAX / INT64_MIN mean "to the end"):
/// indices begin, begin + step, ... (`count` of them). `step` must not be 0.
struct SliceAxis {
  int64_t begin = 0;
  int64_t count = 0;
};
SliceAxis slice_axis(int64_t n, int64_t start, int64_t end, int64_t step);

/// Transpose's permutation for an input of rank `rank`, validated.
Result<std::vector<int64_t>> transpose_perm(const Node& node, size_t rank);
/// The copy Transpose or Slice makes of an input of shape `x`.
Result<StridedCopy> strided_copy_of(const Node& node, const Dims& x);

/// ReduceMean as loops: `outer` x `n` x `inner` when the reduced axes (of size > 1) are
/// adjacent in the input. Otherwise `general` is set and each of the prod(kept_dims) outputs
/// averages the prod(reduced_dims) inputs at sum_d index_d * stride_d (kept axes, then reduced
/// axes; dims and element strides of the input, outermost first). The output shape comes from
/// reduce_mean_shape.
struct ReduceLoops {
  int64_t outer = 1;
  int64_t n = 1;
  int64_t inner = 1;
  bool general = false;
  std::vector<int64_t> kept_dims, kept_strides;
  std::vector<int64_t> reduced_dims, reduced_strides;
};
Result<Dims> reduce_mean_shape(const Node& node, const Dims& x);
Result<ReduceLoops> reduce_loops(const Node& node, const Dims& x);

/// A batched matrix product at concrete shapes: `batch` products of op(A) [m, k] and op(B)
/// [k, n], the b-th reading A at a_offset[b] and B at b_offset[b] (elements; broadcast batch
/// axes repeat offsets), writing Y at b * m * n. `transpose_y`: each product is stored [n, m].
struct MatMulShape {
  int64_t m = 0;
  int64_t k = 0;
  int64_t n = 0;
  bool transpose_a = false;  ///< A's matrices are stored [k, m]
  bool transpose_b = false;  ///< B's matrices are stored [n, k]
  bool transpose_y = false;
  int64_t count = 0;  ///< products (the broadcast batch's volume)
  Dims out;
  /// True when the offsets step uniformly (A's b-th matrix at b * a_stride, same for B; a
  /// stride 0 broadcasts): one strided-batched call covers every product, and a_offset /
  /// b_offset stay empty. Otherwise they hold every product's offsets (elements).
  bool uniform = true;
  int64_t a_stride = 0;
  int64_t b_stride = 0;
  std::vector<int64_t> a_offset;
  std::vector<int64_t> b_offset;
  [[nodiscard]] int64_t a_at(int64_t p) const {
    return uniform ? p * a_stride : a_offset[static_cast<size_t>(p)];
  }
  [[nodiscard]] int64_t b_at(int64_t p) const {
    return uniform ? p * b_stride : b_offset[static_cast<size_t>(p)];
  }
};
Result<MatMulShape> matmul_layer_shape(const Node& node, const Dims& a, const Dims& b);

}  // namespace mlprt::ir
