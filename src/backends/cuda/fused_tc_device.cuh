#pragma once
// Device helpers of the fused tensor-core MLP kernels (fused_mlp_tc.cu, fused_rr_kernel.cuh):
// async copies, ldmatrix, mma.sync m16n8k16, the epilogue's activation and paired stores.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "backends/cuda/cuda_activate.cuh"
#include "backends/cuda/cuda_elem_io.cuh"

namespace mlprt::backend::cuda::fused {

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int size = valid ? 16 : 0;  // 0: the 16 bytes are zero-filled, nothing read
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(size));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

// Walks a row-major grid of `per_row` columns from flat index `start` in steps of `step`: one
// division at construction, none per step (step % per_row < per_row, so one wrap at most).
struct GridWalk {
  int r, c, dr, dc, per_row;
  __device__ __forceinline__ GridWalk(int start, int step, int per_row_)
      : r(start / per_row_), c(start % per_row_), dr(step / per_row_), dc(step % per_row_),
        per_row(per_row_) {}
  __device__ __forceinline__ void next() {
    r += dr;
    c += dc;
    if (c >= per_row) {
      c -= per_row;
      ++r;
    }
  }
};

// Copies a [rows][k_pad] matrix of E into shared memory as [rows_sm][ld] by the block's 16-byte
// cp.async (k_pad and ld hold whole 16-byte pieces): columns past k_pad and rows past `rows` are
// zero-filled.
template <typename E>
__device__ __forceinline__ void stage_rows(E* dst, int ld, int rows_sm, const E* src, int rows,
                                           int k_pad) {
  constexpr int kPiece = 16 / static_cast<int>(sizeof(E));
  const int tid = static_cast<int>(threadIdx.x);
  const int threads = static_cast<int>(blockDim.x);
  const int per_row = ld / kPiece;
  const int pieces = k_pad / kPiece;
  GridWalk at(tid, threads, per_row);
  for (int i = tid; i < rows_sm * per_row; i += threads, at.next()) {
    const bool valid = at.c < pieces && at.r < rows;
    cp_async16(dst + at.r * ld + at.c * kPiece, valid ? src + at.r * k_pad + at.c * kPiece : src,
               valid);
  }
}

// Copies n floats (a multiple of 4) into shared memory by the block's 16-byte cp.async.
__device__ __forceinline__ void stage_floats(float* dst, const float* src, int n) {
  for (int i = static_cast<int>(threadIdx.x); i < n / 4; i += static_cast<int>(blockDim.x)) {
    cp_async16(dst + i * 4, src + i * 4, true);
  }
}

// This lane's ldmatrix_x4 row of weights [n][wld] for a 16-column group's B fragments (n8 tile
// pairs: rows 8 (lane / 16) + lane % 8, columns 8 (lane / 8 % 2) on).
template <typename T>
__device__ __forceinline__ const T* lane_w_row(const T* w, int wld, int lane) {
  return w + (((lane >> 4) << 3) + (lane & 7)) * wld + ((lane >> 3) & 1) * 8;
}

template <typename T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  if constexpr (sizeof(T) == 2 && std::is_same_v<T, __half>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// d = A x B + (c0, c1, c0, c1): an accumulator tile started from a bias pair (columns t2, t2+1
// of rows g and g+8). ptxas still moves the pair into a register quad for the C operand (ncu at
// 1M rows: ~200 moves per 32-row tile), so this saves the bias add, not the moves.
template <typename T>
__device__ __forceinline__ void mma16816_from(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                              uint32_t b1, float c0, float c1) {
  if constexpr (std::is_same_v<T, __half>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%10,%11,%10,%11};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "f"(c0), "f"(c1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%10,%11,%10,%11};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "f"(c0), "f"(c1));
  }
}

template <typename T>
__device__ __forceinline__ T to_t(float v);
template <>
__device__ __forceinline__ __half to_t<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 to_t<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Every activation but none and relu, out of line: inlined at each of a thread's 64 outputs,
// the code of all kinds would not fit the instruction cache.
static __device__ __noinline__ float activate_call(ActParams act, float x) {
  return activate_dynamic(act, x);
}

template <int MODE>
__device__ __forceinline__ float epilogue_act(const ActParams& act, float x) {
  if constexpr (MODE == 0) return x;
  if constexpr (MODE == 1) return x > 0.0f ? x : 0.0f;
  return activate_call(act, x);
}

template <typename T>
__device__ __forceinline__ uint32_t pack2(float a, float b) {
  if constexpr (std::is_same_v<T, __half>) {
    const __half2 h = __floats2half2_rn(a, b);
    return *reinterpret_cast<const uint32_t*>(&h);
  } else {
    const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
}

// A packed pair back in fp32.
template <typename T>
__device__ __forceinline__ float2 unpack2(uint32_t packed) {
  if constexpr (std::is_same_v<T, __half>) {
    return __half22float2(*reinterpret_cast<const __half2*>(&packed));
  } else {
    return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&packed));
  }
}

// max(v, 0) of both halves of a packed pair.
template <typename T>
__device__ __forceinline__ uint32_t relu2(uint32_t packed) {
  if constexpr (std::is_same_v<T, __half>) {
    const __half2 r = __hmax2(*reinterpret_cast<const __half2*>(&packed), __float2half2_rn(0.0f));
    return *reinterpret_cast<const uint32_t*>(&r);
  } else {
    const __nv_bfloat162 r =
        __hmax2(*reinterpret_cast<const __nv_bfloat162*>(&packed), __float2bfloat162_rn(0.0f));
    return *reinterpret_cast<const uint32_t*>(&r);
  }
}

// relu(p + bias) (relu: max with 0) of a packed fp16 pair, in one instruction; `bias`: packed.
__device__ __forceinline__ uint32_t add_relu2_f16(uint32_t p, uint32_t bias, bool relu) {
  uint32_t r;
  const uint32_t one = 0x3C003C00u;  // (1.0, 1.0) in fp16
  if (relu) {
    asm("fma.rn.relu.f16x2 %0, %1, %2, %3;\n" : "=r"(r) : "r"(p), "r"(one), "r"(bias));
  } else {
    asm("fma.rn.f16x2 %0, %1, %2, %3;\n" : "=r"(r) : "r"(p), "r"(one), "r"(bias));
  }
  return r;
}

// Two adjacent outputs (i even and the row length even: 4- or 8-byte aligned pairs), else one
// by one.
__device__ __forceinline__ void store_pair(void* y, ElemType t, int64_t i, float v0, float v1,
                                           bool both, bool paired) {
  if (both && paired) {
    switch (t) {
      case ElemType::kF16:
        *reinterpret_cast<uint32_t*>(static_cast<__half*>(y) + i) = pack2<__half>(v0, v1);
        return;
      case ElemType::kBF16:
        *reinterpret_cast<uint32_t*>(static_cast<__nv_bfloat16*>(y) + i) =
            pack2<__nv_bfloat16>(v0, v1);
        return;
      default:
        *reinterpret_cast<float2*>(static_cast<float*>(y) + i) = make_float2(v0, v1);
        return;
    }
  }
  store_elem(y, t, i, v0);
  if (both) store_elem(y, t, i + 1, v1);
}

}  // namespace mlprt::backend::cuda::fused
