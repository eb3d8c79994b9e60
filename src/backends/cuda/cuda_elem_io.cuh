#pragma once
// Element loads and stores for a dtype known at run time, through fp32 (device code only).

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backends/cuda/cuda_kernels.h"

namespace mlprt::backend::cuda {

__device__ __forceinline__ float load_elem(const void* p, ElemType t, int64_t i) {
  switch (t) {
    case ElemType::kF16: return __half2float(static_cast<const __half*>(p)[i]);
    case ElemType::kBF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

__device__ __forceinline__ void store_elem(void* p, ElemType t, int64_t i, float v) {
  switch (t) {
    case ElemType::kF16: static_cast<__half*>(p)[i] = __float2half_rn(v); break;
    case ElemType::kBF16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v); break;
    default: static_cast<float*>(p)[i] = v; break;
  }
}

}  // namespace mlprt::backend::cuda
