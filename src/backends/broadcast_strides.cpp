#include "backends/broadcast_strides.h"

#include <algorithm>

namespace mlprt::backend {

std::vector<int64_t> broadcast_strides(const Dims& operand, const Dims& out) {
  std::vector<int64_t> strides(out.size(), 0);
  int64_t step = 1;
  // Right-aligned: operand dim operand.size()-1-i faces output dim out.size()-1-i.
  for (size_t i = 0; i < std::min(operand.size(), out.size()); ++i) {
    const size_t axis = operand.size() - 1 - i;
    strides[out.size() - 1 - i] = operand[axis] == 1 ? 0 : step;
    step *= operand[axis];
  }
  return strides;
}

}  // namespace mlprt::backend
