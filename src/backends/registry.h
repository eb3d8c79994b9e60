#pragma once
// The explicit list of backends compiled into this build.

#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "mlprt/status.h"

namespace mlprt::backend {

/// Names of the backends compiled in, best first ("cpu").
std::vector<std::string> backend_names();
/// The backend called `name`, or an error listing those compiled in.
Result<const Backend*> find_backend(const std::string& name);
/// "auto": the first compiled-in backend whose check_available() passes.
Result<const Backend*> select_backend(const std::string& name_or_auto);

}  // namespace mlprt::backend
