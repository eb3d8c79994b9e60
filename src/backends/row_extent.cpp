#include "backends/row_extent.h"

#include "common/check.h"

namespace mlprt::backend {

Result<RowExtent> row_extent(const Dims& x, int64_t axis, bool whole_tail,
                             const std::string& layer) {
  const auto rank = static_cast<int64_t>(x.size());
  if (axis < -rank || axis >= rank) {
    return make_error(StatusCode::kInvalidArgument, layer, ": axis ", axis,
                      " is out of range for input of shape ", to_string(x));
  }
  const auto at = static_cast<size_t>(axis < 0 ? axis + rank : axis);
  auto product = [&](size_t b, size_t e) {
    int64_t v = 1;
    for (size_t i = b; i < e; ++i) v *= x[i];
    return v;
  };
  RowExtent extent;
  extent.outer = product(0, at);
  extent.n = whole_tail ? product(at, x.size()) : x[at];
  extent.inner = whole_tail ? 1 : product(at + 1, x.size());
  return extent;
}

}  // namespace mlprt::backend
