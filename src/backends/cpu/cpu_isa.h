#pragma once
// The CPU instruction set oneDNN dispatches to, as the hardware id a plan is tied to:
// "x86_64 avx512_core". A plan runs on any machine whose ISA includes the plan's.

#include <string>

#include <oneapi/dnnl/dnnl.hpp>

#include "mlprt/status.h"

namespace mlprt::backend::cpu {

/// "x86_64 avx2", "x86_64 avx512_core_amx", ... for this machine.
std::string cpu_hardware_id();

/// Whether oneDNN runs bf16 matmul natively here (AVX-512 BF16 or AMX), not emulated.
bool cpu_has_bf16();
/// Whether AVX-512 F, BW and VL (and DQ / FP16 where asked) are on the CPU and the OS saves the
/// opmask and zmm state: what the backend's own kernels (cpu_f32_gemm, cpu_fp16_gemm) need.
bool cpu_avx512_usable(bool need_dq, bool need_fp16);
/// Whether oneDNN's effective ISA (the plan's hardware id; ONEDNN_MAX_CPU_ISA can cap it, so that
/// a process acts as an older machine) includes `isa`.
bool onednn_isa_includes(dnnl::cpu_isa isa);
/// Whether the CPU has AVX-512 FP16 (the cpu backend has no fp16 kernels yet either way).
bool cpu_has_fp16();

/// OK if a plan built for `plan_hardware` runs on a machine whose id is `machine_hardware`;
/// kHardwareMismatch otherwise (also for an id that is not one of ours).
Status check_cpu_hardware(const std::string& plan_hardware,
                          const std::string& machine_hardware);

}  // namespace mlprt::backend::cpu
