#include "backends/cuda/cublaslt_loader.h"

#include <cublasLt.h>
#include <dlfcn.h>

#include <mutex>
#include <string>

namespace mlprt::backend::cuda {
namespace {

#define MLPRT_STRINGIFY_(x) #x
#define MLPRT_STRINGIFY(x) MLPRT_STRINGIFY_(x)
// The soname of the cuBLASLt this build was compiled against.
constexpr const char* kSoname = "libcublasLt.so." MLPRT_STRINGIFY(CUBLAS_VER_MAJOR);

struct Library {
  void* handle = nullptr;
  std::string error;
};

const Library& library() {
  static Library lib;
  static std::once_flag once;
  std::call_once(once, [] {
    // The loader's search path first (LD_LIBRARY_PATH, the system's), then the toolkit's
    // directory this build was configured with.
    lib.handle = ::dlopen(kSoname, RTLD_NOW | RTLD_LOCAL);
    std::string first = lib.handle ? "" : ::dlerror();
#ifdef MLPRT_CUBLASLT_DIR
    if (lib.handle == nullptr) {
      const std::string path = std::string(MLPRT_CUBLASLT_DIR) + "/" + kSoname;
      lib.handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (lib.handle == nullptr) first += "; " + std::string(::dlerror());
    }
#endif
    if (lib.handle == nullptr) lib.error = first;
  });
  return lib;
}

// The library's `name`, as a pointer of the type of our definition of it; null if unavailable.
template <typename Fn>
Fn* symbol(const char* name) {
  const Library& lib = library();
  return lib.handle ? reinterpret_cast<Fn*>(::dlsym(lib.handle, name)) : nullptr;
}

}  // namespace

Status load_cublaslt() {
  const Library& lib = library();
  if (lib.handle != nullptr) return Status::ok();
  return Status(StatusCode::kUnsupported,
                std::string("cannot load ") + kSoname + " (cuBLASLt, which the cuda backend "
                "runs its matmuls on): " + lib.error);
}

}  // namespace mlprt::backend::cuda

using mlprt::backend::cuda::symbol;

// Each: the library's function, resolved once; CUBLAS_STATUS_NOT_INITIALIZED without it.
#define MLPRT_LT_CALL(name, ...)                                                   \
  static auto* const fn = symbol<decltype(::name)>(#name);                         \
  return fn != nullptr ? fn(__VA_ARGS__) : CUBLAS_STATUS_NOT_INITIALIZED

extern "C" {

cublasStatus_t CUBLASWINAPI cublasLtCreate(cublasLtHandle_t* handle) {
  MLPRT_LT_CALL(cublasLtCreate, handle);
}

cublasStatus_t CUBLASWINAPI cublasLtDestroy(cublasLtHandle_t handle) {
  MLPRT_LT_CALL(cublasLtDestroy, handle);
}

size_t CUBLASWINAPI cublasLtGetVersion(void) {
  static auto* const fn = symbol<decltype(::cublasLtGetVersion)>("cublasLtGetVersion");
  return fn != nullptr ? fn() : 0;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                           const void* alpha, const void* a,
                                           cublasLtMatrixLayout_t a_desc, const void* b,
                                           cublasLtMatrixLayout_t b_desc, const void* beta,
                                           const void* c, cublasLtMatrixLayout_t c_desc, void* d,
                                           cublasLtMatrixLayout_t d_desc,
                                           const cublasLtMatmulAlgo_t* algo, void* workspace,
                                           size_t workspace_bytes, cudaStream_t stream) {
  MLPRT_LT_CALL(cublasLtMatmul, handle, desc, alpha, a, a_desc, b, b_desc, beta, c, c_desc, d,
                d_desc, algo, workspace, workspace_bytes, stream);
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulAlgoCheck(
    cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a_desc,
    cublasLtMatrixLayout_t b_desc, cublasLtMatrixLayout_t c_desc, cublasLtMatrixLayout_t d_desc,
    const cublasLtMatmulAlgo_t* algo, cublasLtMatmulHeuristicResult_t* result) {
  MLPRT_LT_CALL(cublasLtMatmulAlgoCheck, handle, desc, a_desc, b_desc, c_desc, d_desc, algo,
                result);
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulAlgoConfigGetAttribute(
    const cublasLtMatmulAlgo_t* algo, cublasLtMatmulAlgoConfigAttributes_t attr, void* buf,
    size_t bytes, size_t* written) {
  MLPRT_LT_CALL(cublasLtMatmulAlgoConfigGetAttribute, algo, attr, buf, bytes, written);
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulAlgoGetHeuristic(
    cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a_desc,
    cublasLtMatrixLayout_t b_desc, cublasLtMatrixLayout_t c_desc, cublasLtMatrixLayout_t d_desc,
    cublasLtMatmulPreference_t preference, int requested,
    cublasLtMatmulHeuristicResult_t results[], int* returned) {
  MLPRT_LT_CALL(cublasLtMatmulAlgoGetHeuristic, handle, desc, a_desc, b_desc, c_desc, d_desc,
                preference, requested, results, returned);
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc,
                                                     cublasComputeType_t compute,
                                                     cudaDataType_t scale) {
  MLPRT_LT_CALL(cublasLtMatmulDescCreate, desc, compute, scale);
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
  MLPRT_LT_CALL(cublasLtMatmulDescDestroy, desc);
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                                           cublasLtMatmulDescAttributes_t attr,
                                                           const void* buf, size_t bytes) {
  MLPRT_LT_CALL(cublasLtMatmulDescSetAttribute, desc, attr, buf, bytes);
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
  MLPRT_LT_CALL(cublasLtMatmulPreferenceCreate, pref);
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  MLPRT_LT_CALL(cublasLtMatmulPreferenceDestroy, pref);
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulPreferenceSetAttribute(
    cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
    size_t bytes) {
  MLPRT_LT_CALL(cublasLtMatmulPreferenceSetAttribute, pref, attr, buf, bytes);
}

cublasStatus_t CUBLASWINAPI cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout,
                                                       cudaDataType type, uint64_t rows,
                                                       uint64_t cols, int64_t ld) {
  MLPRT_LT_CALL(cublasLtMatrixLayoutCreate, layout, type, rows, cols, ld);
}

cublasStatus_t CUBLASWINAPI cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
  MLPRT_LT_CALL(cublasLtMatrixLayoutDestroy, layout);
}

cublasStatus_t CUBLASWINAPI cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout,
                                                             cublasLtMatrixLayoutAttribute_t attr,
                                                             const void* buf, size_t bytes) {
  MLPRT_LT_CALL(cublasLtMatrixLayoutSetAttribute, layout, attr, buf, bytes);
}

}  // extern "C"
