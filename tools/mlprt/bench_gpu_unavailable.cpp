// Built without the CUDA toolkit: the library has no cuda backend, so no cuda plan loads and
// this is reached only if one somehow does.
#include "bench_gpu.h"

namespace mlprt::cli {

Result<GpuBenchResult> run_gpu_bench(const Engine&, int, const std::map<std::string, Dims>&,
                                     const GpuBenchOptions&) {
  return Status(StatusCode::kUnsupported,
                "this mlprt was built without the CUDA toolkit: it cannot time cuda plans");
}

}  // namespace mlprt::cli
