// The explicit list of backends compiled into this build, best first. A new backend adds one
// include and one line here, behind its MLPRT_WITH_* option.
#include "backends/registry.h"

#include "backends/cpu/cpu_backend.h"
#include "mlprt/device.h"
#include "common/check.h"
#ifdef MLPRT_WITH_CUDA
#include "backends/cuda/cuda_backend.h"
#endif
#ifdef MLPRT_WITH_TENSORRT
#include "backends/tensorrt/tensorrt_backend.h"
#endif

namespace mlprt::backend {
namespace {

const std::vector<const Backend*>& compiled_backends() {
  static const std::vector<const Backend*> kBackends = {
#ifdef MLPRT_WITH_TENSORRT
      &tensorrt_backend(),
#endif
#ifdef MLPRT_WITH_CUDA
      &cuda_backend(),
#endif
      &cpu_backend(),
  };
  return kBackends;
}

std::string joined_names() {
  std::string out;
  for (const std::string& name : backend_names()) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

}  // namespace

std::vector<std::string> backend_names() {
  std::vector<std::string> names;
  for (const Backend* backend : compiled_backends()) names.push_back(backend->name());
  return names;
}

Result<const Backend*> find_backend(const std::string& name) {
  for (const Backend* backend : compiled_backends()) {
    if (backend->name() == name) return backend;
  }
  return make_error(StatusCode::kNotFound, "backend '", name,
                    "' is not compiled into this build; available: ", joined_names());
}

Result<const Backend*> select_backend(const std::string& name_or_auto) {
  if (name_or_auto != "auto") {
    MLPRT_ASSIGN_OR_RETURN(const Backend* backend, find_backend(name_or_auto));
    MLPRT_RETURN_IF_ERROR(backend->check_available().with_context(
        "backend '" + name_or_auto + "' is not usable on this machine"));
    return backend;
  }
  std::string reasons;
  for (const Backend* backend : compiled_backends()) {
    const Status status = backend->check_available();
    if (status.is_ok()) return backend;
    reasons += "; " + backend->name() + ": " + status.message();
  }
  return make_error(StatusCode::kUnsupported, "no backend is usable on this machine", reasons);
}

}  // namespace mlprt::backend

namespace mlprt {

Status set_device(int index) {
#ifdef MLPRT_WITH_CUDA
  return backend::select_cuda_device(index);
#else
  if (index == 0) return Status::ok();
  return make_error(StatusCode::kUnsupported, "device ", index,
                    " requested, but this build of mlprt has no cuda backend (only device 0, the cpu)");
#endif
}

DeviceMemoryUsage device_memory_usage() {
#ifdef MLPRT_WITH_CUDA
  return backend::cuda_device_memory();
#else
  return {};
#endif
}

}  // namespace mlprt
