#pragma once
// cuBLASLt is loaded on first use (dlopen), not linked: mapping libcublasLt.so at process start
// costs about 150 MiB of resident memory (its relocated data and tables), which every mlprt
// process paid even for cpu plans and `inspect`. cublaslt_loader.cpp defines the cublasLt*
// functions the backend calls; each resolves the library's own on its first call.

#include "mlprt/status.h"

namespace mlprt::backend::cuda {

/// OK once libcublasLt is loaded (loading it now if needed); else which file could not be
/// loaded and why (dlerror). The cublasLt* functions return CUBLAS_STATUS_NOT_INITIALIZED then.
Status load_cublaslt();

}  // namespace mlprt::backend::cuda
