#include "backends/profile_shapes.h"

#include <algorithm>

#include "common/check.h"

namespace mlprt::backend {

Result<ir::ShapeMap> opt_input_shapes(const ir::Graph& graph, const OptimizationProfile& profile,
                                      size_t index) {
  ir::ShapeMap shapes;
  for (const ir::TensorInfo& input : graph.inputs) {
    if (auto range = profile.get_dimensions(input.name)) {
      shapes[input.name] = range->opt;
      continue;
    }
    const Dims dims = ir::to_dims(input.shape);
    if (std::any_of(dims.begin(), dims.end(), [](int64_t d) { return d < 0; })) {
      return make_error(StatusCode::kInvalidArgument, "profile ", index,
                        " has no range for dynamic input '", input.name, "' of shape ",
                        ir::to_string(input.shape));
    }
    shapes[input.name] = dims;
  }
  return shapes;
}

}  // namespace mlprt::backend
