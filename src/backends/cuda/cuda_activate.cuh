#pragma once
// The activation formulas of ir::apply_activation in fp32, for our kernels (device code only):
// activate<K> at compile time, activate_dynamic for a kind known at run time.

#include "backends/cuda/cuda_kernels.h"

namespace mlprt::backend::cuda {

__device__ __forceinline__ float softplus(float x) {
  // log(1 + e^x) without overflow for large x.
  return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

// The formulas of ir::apply_activation, in fp32.
template <ActKind K>
__device__ __forceinline__ float activate(float x, float alpha, float beta) {
  if constexpr (K == ActKind::kRelu) return x > 0.0f ? x : 0.0f;
  if constexpr (K == ActKind::kLeakyRelu) return x >= 0.0f ? x : alpha * x;
  if constexpr (K == ActKind::kSigmoid) return 1.0f / (1.0f + expf(-x));
  if constexpr (K == ActKind::kTanh) return tanhf(x);
  if constexpr (K == ActKind::kElu) return x > 0.0f ? x : alpha * expm1f(x);
  if constexpr (K == ActKind::kSelu) return beta * (x > 0.0f ? x : alpha * expm1f(x));
  if constexpr (K == ActKind::kHardSigmoid) return fminf(fmaxf(alpha * x + beta, 0.0f), 1.0f);
  if constexpr (K == ActKind::kHardSwish) return x * fminf(fmaxf(x / 6.0f + 0.5f, 0.0f), 1.0f);
  if constexpr (K == ActKind::kSoftplus) return softplus(x);
  if constexpr (K == ActKind::kGeluErf) {
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
  }
  if constexpr (K == ActKind::kGeluTanh) {
    return 0.5f * x * (1.0f + tanhf(0.79788456080286535588f * (x + 0.044715f * x * x * x)));
  }
  if constexpr (K == ActKind::kClip) return fminf(fmaxf(x, alpha), beta);
  if constexpr (K == ActKind::kSoftplusThreshold) {
    // alpha = torch's beta (scale), beta = its threshold.
    const float s = alpha * x;
    return s > beta ? x : softplus(s) / alpha;
  }
  if constexpr (K == ActKind::kExp) return expf(x);
  if constexpr (K == ActKind::kLog) return logf(x);
  if constexpr (K == ActKind::kNeg) return -x;
  if constexpr (K == ActKind::kAbs) return fabsf(x);
  if constexpr (K == ActKind::kSqrt) return sqrtf(x);
  if constexpr (K == ActKind::kReciprocal) return 1.0f / x;
  if constexpr (K == ActKind::kErf) return erff(x);
  return x;
}

// The kind chosen at run time (uniform across a warp, so the switch does not diverge).
__device__ __forceinline__ float activate_dynamic(const ActParams& act, float x) {
  switch (act.kind) {
#define MLPRT_ACT_CASE(K) \
  case ActKind::K: return activate<ActKind::K>(x, act.alpha, act.beta);
    MLPRT_ACT_CASE(kRelu) MLPRT_ACT_CASE(kLeakyRelu) MLPRT_ACT_CASE(kSigmoid)
    MLPRT_ACT_CASE(kTanh) MLPRT_ACT_CASE(kElu) MLPRT_ACT_CASE(kSelu)
    MLPRT_ACT_CASE(kHardSigmoid) MLPRT_ACT_CASE(kHardSwish) MLPRT_ACT_CASE(kSoftplus)
    MLPRT_ACT_CASE(kGeluErf) MLPRT_ACT_CASE(kGeluTanh) MLPRT_ACT_CASE(kClip)
    MLPRT_ACT_CASE(kSoftplusThreshold) MLPRT_ACT_CASE(kExp) MLPRT_ACT_CASE(kLog)
    MLPRT_ACT_CASE(kNeg) MLPRT_ACT_CASE(kAbs) MLPRT_ACT_CASE(kSqrt)
    MLPRT_ACT_CASE(kReciprocal) MLPRT_ACT_CASE(kErf)
#undef MLPRT_ACT_CASE
    default: return x;
  }
}

}  // namespace mlprt::backend::cuda
