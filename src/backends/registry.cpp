// STUB: replaced by the cpu backend work.
#include "backends/registry.h"
namespace mlprt::backend {
std::vector<std::string> backend_names() { return {}; }
Result<const Backend*> find_backend(const std::string&) { return Status(StatusCode::kUnsupported, "not implemented"); }
Result<const Backend*> select_backend(const std::string&) { return Status(StatusCode::kUnsupported, "not implemented"); }
}
