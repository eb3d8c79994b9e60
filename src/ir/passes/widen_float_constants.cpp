#include "ir/passes/passes.h"
#include "mlprt/float16.h"

namespace mlprt::ir {

Status widen_float_constants(Graph& graph) {
  for (auto& [name, c] : graph.constants) {
    if (c.dtype != DataType::kFloat16 && c.dtype != DataType::kBFloat16) continue;
    const auto count = static_cast<size_t>(c.num_elements());
    std::vector<std::byte> wide(count * sizeof(float));
    convert_floats(c.data.data(), c.dtype, wide.data(), DataType::kFloat32, count);
    c.data = std::move(wide);
    c.dtype = DataType::kFloat32;
  }
  return Status::ok();
}

}  // namespace mlprt::ir
