// STUB: replaced by the plan implementation.
#include "plan/plan.h"
namespace mlprt::plan {
Result<std::vector<uint8_t>> serialize_plan(const Plan&) { return Status(StatusCode::kUnsupported, "not implemented"); }
Result<Plan> deserialize_plan(std::span<const uint8_t>, const std::string&) { return Status(StatusCode::kUnsupported, "not implemented"); }
std::string plan_hash_hex(std::span<const uint8_t>) { return ""; }
}
