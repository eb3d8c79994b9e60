#include "runtime/warm_up.h"

#include <algorithm>
#include <cstddef>
#include <map>
#include <vector>

#include "common/check.h"
#include "common/log.h"

namespace mlprt::detail {
namespace {

Status run_profile_once(const Engine& engine, int profile, bool at_min) {
  MLPRT_ASSIGN_OR_RETURN(std::unique_ptr<ExecutionContext> context,
                         engine.create_execution_context());
  if (engine.num_profiles() > 0) MLPRT_RETURN_IF_ERROR(context->set_optimization_profile(profile));
  std::map<std::string, std::vector<std::byte>> buffers;
  for (const TensorDesc& t : engine.io_tensors()) {
    if (t.mode != TensorIOMode::kInput) continue;
    Dims dims = t.dims;
    if (std::any_of(dims.begin(), dims.end(), [](int64_t d) { return d < 0; })) {
      MLPRT_ASSIGN_OR_RETURN(ShapeRange range, engine.profile_range(profile, t.name));
      dims = at_min ? range.min : range.opt;
    }
    MLPRT_RETURN_IF_ERROR(context->set_input_shape(t.name, dims));
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    buffers[t.name].assign(static_cast<size_t>(std::max<int64_t>(n, 1)) * element_size(t.dtype),
                           std::byte{0});
    MLPRT_RETURN_IF_ERROR(context->set_tensor_address(t.name, buffers[t.name].data()));
  }
  for (const TensorDesc& t : engine.io_tensors()) {
    if (t.mode != TensorIOMode::kOutput) continue;
    MLPRT_ASSIGN_OR_RETURN(Dims dims, context->tensor_shape(t.name));
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    buffers[t.name].resize(static_cast<size_t>(std::max<int64_t>(n, 1)) * element_size(t.dtype));
    MLPRT_RETURN_IF_ERROR(context->set_tensor_address(t.name, buffers[t.name].data()));
  }
  return context->enqueue();
}

}  // namespace

void warm_up_engine(const Engine& engine) {
  const int profiles = std::max(engine.num_profiles(), 1);
  for (int p = 0; p < profiles; ++p) {
    // The opt shape (the tuned fixed-M kernels) and the min shape (the runtime-M kernels,
    // whose small-M paths oneDNN generates on first use); with a static shape both are one.
    for (bool at_min : {false, true}) {
      if (at_min && engine.num_profiles() == 0) break;
      const Status status = run_profile_once(engine, p, at_min);
      if (!status.is_ok()) {
        log(Severity::kWarning, "warm-up at load: profile ", p, at_min ? " min" : " opt",
            " shape did not run (", status.message(),
            "); the first inference pays the cold start instead");
      }
    }
  }
}

}  // namespace mlprt::detail
