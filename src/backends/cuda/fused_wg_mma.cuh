#pragma once
// Hopper's warpgroup matrix multiply (wgmma, sm_90a) as the fused warpgroup kernel uses it
// (fused_mlp_wg.h): D[64 x N] (+)= A[64 x 16] x B[16 x N], A from registers (each warp of the
// warpgroup holds 16 of the 64 rows, in mma.sync m16n8k16's A layout), B from shared memory
// through a matrix descriptor, D in fp32 registers (each warp its 16 rows, in mma.sync's C
// layout per 8 columns). Only compiled for sm_90a (__CUDA_ARCH_FEAT_SM90_ALL); elsewhere the
// kernel that uses these is never launched.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace mlprt::backend::cuda::wg {

// B as 8 x 8 core matrices of 16-byte rows, no swizzle, K-major (the layout of fused_mlp_wg.cu's
// weight image): `lbo` bytes between core matrices along K, `sbo` along N.
__device__ __forceinline__ uint64_t smem_desc(const void* smem, uint32_t lbo, uint32_t sbo) {
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) |
         (static_cast<uint64_t>((lbo & 0x3FFFF) >> 4) << 16) |
         (static_cast<uint64_t>((sbo & 0x3FFFF) >> 4) << 32);
}

// Before the first wgmma that reads registers written by ordinary instructions.
__device__ __forceinline__ void fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wait_all() {
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
}

// One m64nNk16 step: Wgmma<T, N>::run<ACCUMULATE>(d, a, b_desc); ACCUMULATE false: D = A x B.
template <typename T, int N>
struct Wgmma;

// The specializations for N = 16, 32, 48, 64 differ only in D's registers; each is written once
// for both types, whose instructions differ only in the PTX type ("f16", "bf16").
#define MLPRT_WGMMA_OPERANDS_8(d)                                                        \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),   \
      "+f"(d[7])
#define MLPRT_WGMMA_OPERANDS_16(d)                                                          \
  MLPRT_WGMMA_OPERANDS_8(d), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), \
      "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
#define MLPRT_WGMMA_OPERANDS_24(d)                                                              \
  MLPRT_WGMMA_OPERANDS_16(d), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), \
      "+f"(d[21]), "+f"(d[22]), "+f"(d[23])
#define MLPRT_WGMMA_OPERANDS_32(d)                                                              \
  MLPRT_WGMMA_OPERANDS_24(d), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), \
      "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define MLPRT_WGMMA_D_8 "%0,%1,%2,%3,%4,%5,%6,%7"
#define MLPRT_WGMMA_D_16 MLPRT_WGMMA_D_8 ",%8,%9,%10,%11,%12,%13,%14,%15"
#define MLPRT_WGMMA_D_24 MLPRT_WGMMA_D_16 ",%16,%17,%18,%19,%20,%21,%22,%23"
#define MLPRT_WGMMA_D_32 MLPRT_WGMMA_D_24 ",%24,%25,%26,%27,%28,%29,%30,%31"
// N columns: N / 2 accumulators, then A's four registers, B's descriptor and the flag.
#define MLPRT_WGMMA(T, TYPE, N, REGS, A0, A1, A2, A3, B, SCALE)                                \
  template <>                                                                                  \
  struct Wgmma<T, N> {                                                                         \
    template <bool ACCUMULATE>                                                                 \
    static __device__ __forceinline__ void run(float (&d)[REGS], const uint32_t (&a)[4],       \
                                               uint64_t b) {                                   \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " SCALE ", 0;\n"                          \
                   "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TYPE "." TYPE " {"        \
                   MLPRT_WGMMA_D_##REGS "}, {" A0 "," A1 "," A2 "," A3 "}, " B ", p, 1, 1, 0;\n}\n" \
                   : MLPRT_WGMMA_OPERANDS_##REGS(d)                                            \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b),                       \
                     "n"(ACCUMULATE ? 1 : 0));                                                 \
    }                                                                                          \
  };
#define MLPRT_WGMMA_TYPE(T, TYPE)                                          \
  MLPRT_WGMMA(T, TYPE, 16, 8, "%8", "%9", "%10", "%11", "%12", "%13")     \
  MLPRT_WGMMA(T, TYPE, 32, 16, "%16", "%17", "%18", "%19", "%20", "%21")  \
  MLPRT_WGMMA(T, TYPE, 48, 24, "%24", "%25", "%26", "%27", "%28", "%29")  \
  MLPRT_WGMMA(T, TYPE, 64, 32, "%32", "%33", "%34", "%35", "%36", "%37")

MLPRT_WGMMA_TYPE(__half, "f16")
MLPRT_WGMMA_TYPE(__nv_bfloat16, "bf16")

#undef MLPRT_WGMMA_TYPE
#undef MLPRT_WGMMA
#undef MLPRT_WGMMA_D_32
#undef MLPRT_WGMMA_D_24
#undef MLPRT_WGMMA_D_16
#undef MLPRT_WGMMA_D_8
#undef MLPRT_WGMMA_OPERANDS_32
#undef MLPRT_WGMMA_OPERANDS_24
#undef MLPRT_WGMMA_OPERANDS_16
#undef MLPRT_WGMMA_OPERANDS_8

}  // namespace mlprt::backend::cuda::wg
