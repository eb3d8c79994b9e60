#pragma once
// Shared by the backends' broadcast binary layers: how an operand is walked under numpy
// broadcasting.

#include <cstdint>
#include <vector>

#include "mlprt/tensor.h"

namespace mlprt::backend {

/// Element strides of row-major `operand` read against the output shape `out`, one per dim of
/// `out`: 0 where the operand is broadcast (its dim is 1, or `out` has more leading dims than
/// it), else the operand's own stride. `operand` has at most out's rank (right-aligned).
std::vector<int64_t> broadcast_strides(const Dims& operand, const Dims& out);

}  // namespace mlprt::backend
