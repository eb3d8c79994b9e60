#pragma once
// Our own small CUDA kernels (elementwise ops, casts, the fused small-batch MLP). Launchers
// return the launch's cudaError_t; the caller turns it into a Status.
//
// The element-wise kernels (cast, activation, binary) move 16 bytes per load and store (4
// floats or 8 halves) where the pointers are 16-byte aligned, with a scalar tail, over a
// grid-stride loop with int64 indices (any element count); unaligned pointers take the same
// kernels one element at a time.

#include <cstdint>

#include <cuda_runtime.h>

namespace mlprt::backend::cuda {

enum class ElemType : uint8_t { kF32, kF16, kBF16 };

inline constexpr int kMaxRank = 8;

/// y = a + b with numpy broadcasting, as element strides (0 on broadcast dims) per output dim.
struct BroadcastShape {
  int rank = 0;
  int64_t dims[kMaxRank] = {};
  int64_t stride_a[kMaxRank] = {};
  int64_t stride_b[kMaxRank] = {};
};

cudaError_t launch_cast(const void* in, ElemType in_type, void* out, ElemType out_type, int64_t n,
                        cudaStream_t stream);
/// Element-wise activation kinds, numbered as ir::ActivationKind (the caller converts), with
/// the same formulas (ir::apply_activation), computed in fp32 whatever the storage type.
enum class ActKind : uint8_t {
  kNone, kRelu, kLeakyRelu, kSigmoid, kTanh, kElu, kSelu, kHardSigmoid, kHardSwish, kSoftplus,
  kGeluErf, kGeluTanh, kClip, kSoftplusThreshold, kExp, kLog, kNeg, kAbs, kSqrt, kReciprocal,
  kErf
};
inline constexpr int kActKindCount = static_cast<int>(ActKind::kErf) + 1;
struct ActParams {
  ActKind kind = ActKind::kNone;
  float alpha = 0.0f;
  float beta = 0.0f;
};
enum class BinaryOp : uint8_t { kAdd, kSub, kMul, kDiv, kPow };

/// The sizes a row-wise layer loops over: `outer` rows of `n` elements `inner` apart.
struct RowShape {
  int64_t outer = 0;
  int64_t n = 0;
  int64_t inner = 1;
};

/// y = act(x), in place allowed (the Dense epilogue that cuBLASLt has no fused form of).
cudaError_t launch_activation(const void* in, void* out, ElemType type, const ActParams& act,
                              int64_t n, cudaStream_t stream);
/// y = a op b with numpy broadcasting. Same-shape operands and a trailing-block broadcast of
/// one operand (a bias row [C] over [M, C], a scalar) take vectorized paths; other
/// broadcasts index through the strides.
cudaError_t launch_binary(const void* a, const void* b, void* y, ElemType type, BinaryOp op,
                          const BroadcastShape& shape, int64_t n, cudaStream_t stream);
/// (Log)softmax over `rows.n` elements `rows.inner` apart; float accumulation, max-subtracted.
cudaError_t launch_softmax(const void* x, void* y, ElemType type, const RowShape& rows, bool log,
                           cudaStream_t stream);
/// Normalizes rows of `rows.n` contiguous elements (inner = 1); fp32 scale/shift indexed
/// j % count (count 0: none).
cudaError_t launch_layer_norm(const void* x, void* y, ElemType type, const RowShape& rows,
                              float epsilon, const float* scale, int64_t scale_count,
                              const float* shift, int64_t shift_count, cudaStream_t stream);
/// y = x * scale[c] + shift[c], c the index along `rows.n` (fp32 scale/shift).
cudaError_t launch_scale_shift(const void* x, void* y, ElemType type, const RowShape& rows,
                               const float* scale, const float* shift, cudaStream_t stream);
/// Deterministic values in [-1, 1) (tactic timing must not run on zeros).
cudaError_t launch_fill_pattern(void* out, ElemType type, int64_t n, uint32_t seed,
                                cudaStream_t stream);

/// A chain of Dense layers (fp32 weights, row-major [K, N], optional bias, relu or none) that
/// the fused kernel runs in one launch: one block per row, every intermediate in shared memory.
inline constexpr int kFusedMaxLayers = 8;
inline constexpr int kFusedMaxWidth = 1024;
struct FusedMlpLayer {
  const float* weights = nullptr;
  const float* bias = nullptr;
  int k = 0;
  int n = 0;
  int relu = 0;
};
struct FusedMlpParams {
  int num_layers = 0;
  FusedMlpLayer layers[kFusedMaxLayers];
};
/// `x` and `y` in the engine's I/O types; the math is fp32.
cudaError_t launch_fused_mlp(const FusedMlpParams& params, const void* x, ElemType x_type, void* y,
                             ElemType y_type, int64_t rows, cudaStream_t stream);

}  // namespace mlprt::backend::cuda
