// STUB: replaced by the passes implementation.
#include "ir/passes/passes.h"
namespace mlprt::ir {
Status optimize(Graph&) { return Status(StatusCode::kUnsupported, "not implemented"); }
}
