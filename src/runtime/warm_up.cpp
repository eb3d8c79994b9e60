#include "runtime/warm_up.h"

#include <algorithm>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/log.h"
#include "common/warm_up_scope.h"

namespace mlprt::detail {
namespace {

// Warm-up buffers past this are not allocated: a profile whose opt shape is that large pays its
// cold start in the first call instead of holding the memory twice at load.
constexpr int64_t kMaxWarmUpBytes = int64_t{256} << 20;

// Bytes of a `dtype` tensor of `dims`, or nullopt if past kMaxWarmUpBytes (or int64's range).
std::optional<size_t> warm_up_bytes(const Dims& dims, DataType dtype) {
  int64_t bytes = static_cast<int64_t>(element_size(dtype));
  for (int64_t d : dims) {
    if (d < 0 || __builtin_mul_overflow(bytes, d, &bytes) || bytes > kMaxWarmUpBytes) {
      return std::nullopt;
    }
  }
  return static_cast<size_t>(std::max<int64_t>(bytes, 1));
}

Status too_large(const std::string& tensor) {
  return make_error(StatusCode::kOutOfRange, "tensor '", tensor, "' would take over ",
                    kMaxWarmUpBytes >> 20, " MiB");
}

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
    const std::optional<size_t> bytes = warm_up_bytes(dims, t.dtype);
    if (!bytes) return too_large(t.name);
    MLPRT_RETURN_IF_ERROR(context->set_input_shape(t.name, dims));
    buffers[t.name].assign(*bytes, std::byte{0});
    MLPRT_RETURN_IF_ERROR(context->set_tensor_address(t.name, buffers[t.name].data()));
  }
  for (const TensorDesc& t : engine.io_tensors()) {
    if (t.mode != TensorIOMode::kOutput) continue;
    MLPRT_ASSIGN_OR_RETURN(Dims dims, context->tensor_shape(t.name));
    const std::optional<size_t> bytes = warm_up_bytes(dims, t.dtype);
    if (!bytes) return too_large(t.name);
    buffers[t.name].resize(*bytes);
    MLPRT_RETURN_IF_ERROR(context->set_tensor_address(t.name, buffers[t.name].data()));
  }
  return context->enqueue();
}

}  // namespace

void warm_up_engine(const Engine& engine) {
  // Weights not packed yet stay so: the cpu backend packs a tactic's weights when a context
  // first runs its M, not for every profile in every process that loads the plan.
  const WarmUpScope scope;
  const int profiles = std::max(engine.num_profiles(), 1);
  for (int p = 0; p < profiles; ++p) {
    // The opt shape (the tuned fixed-M kernels) and the min shape (the runtime-M kernels,
    // whose small-M paths oneDNN generates on first use); with a static shape both are one.
    for (bool at_min : {false, true}) {
      if (at_min && engine.num_profiles() == 0) break;
      const Status status = run_profile_once(engine, p, at_min);
      if (!status.is_ok()) {
        log(status.code() == StatusCode::kOutOfRange ? Severity::kInfo : Severity::kWarning, "warm-up at load: profile ", p, at_min ? " min" : " opt",
            " shape did not run (", status.message(),
            "); the first inference pays the cold start instead");
      }
    }
  }
}

}  // namespace mlprt::detail
