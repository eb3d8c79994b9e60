#pragma once
// Shared by the backends' softmax / layer norm / scale-shift layers: how a shape splits around
// the layer's axis.

#include <cstdint>
#include <string>

#include "mlprt/status.h"
#include "mlprt/tensor.h"

namespace mlprt::backend {

/// x viewed as [outer, n, inner] around one axis.
struct RowExtent {
  int64_t outer = 0;
  int64_t n = 0;
  int64_t inner = 1;
};

/// Splits `x` around `axis` (negative counts from the end): outer = the dims before it, n = its
/// size, inner = the dims after it; with `whole_tail`, n is the axis and every dim after it and
/// inner is 1. An axis outside x's rank is an error that starts with `layer` (e.g. "cpu
/// backend: layer 'ln' (LayerNorm)").
Result<RowExtent> row_extent(const Dims& x, int64_t axis, bool whole_tail,
                             const std::string& layer);

}  // namespace mlprt::backend
