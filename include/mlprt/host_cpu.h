#pragma once
/// @file host_cpu.h
/// What the host CPU offers the cpu backend, and how fast its matmul can go here: the ISA oneDNN
/// runs, whether AMX is in use (Linux grants the AMX tile state per process, on request), the
/// precisions the cpu backend has kernels for, and a measured peak for `mlprt bench`.
///
///   mlprt::HostCpuInfo cpu = mlprt::host_cpu_info();
///   if (!cpu.amx_in_use && cpu.amx_in_cpu) std::cerr << cpu.amx_note << '\n';
///   mlprt::Result<double> peak = mlprt::measure_cpu_matmul_peak("bf16", 2);  // GFLOP/s

#include <string>
#include <vector>

#include "mlprt/status.h"

namespace mlprt {

struct HostCpuInfo {
  std::string isa;           ///< oneDNN's ISA here, as in plans: "x86_64 avx512_core_amx"
  bool amx_in_cpu = false;   ///< CPUID says AMX-TILE and AMX-BF16
  bool amx_permitted = false;  ///< Linux granted this process the AMX tile data state
  bool amx_in_use = false;   ///< oneDNN dispatches to AMX (bf16 matmul runs on tiles)
  /// One line on AMX: in use, or why not (no AMX, state not granted, oneDNN's ISA capped).
  std::string amx_note;
  bool avx512_bf16 = false;  ///< bf16 instructions (AVX-512 BF16) as oneDNN sees them
  bool avx512_fp16 = false;  ///< AVX-512 FP16: the cpu backend's fp16 kernel runs here
  /// AVX-512 (F, BW, VL, DQ, not capped by ONEDNN_MAX_CPU_ISA): the cpu backend's own fp32
  /// Dense kernel is a tactic here (small layers, small batches)
  bool fp32_kernel = false;
  /// Precisions the cpu backend can run Dense layers in here, e.g. {"fp32", "bf16", "fp16"}.
  std::vector<std::string> precisions;
};

/// The host CPU as the cpu backend sees it. Thread-safe; cheap after the first call.
HostCpuInfo host_cpu_info();

/// Best GFLOP/s of the cpu backend's matmul kernel for `precision` ("fp32", "bf16", "fp16") on
/// `threads` threads (0: OpenMP's default), measured now on a compute-bound square product
/// (1024^3, about 0.3 s of calls): the ceiling that `mlprt bench` compares an engine against.
/// Error if the precision is unknown or has no kernel on this CPU.
Result<double> measure_cpu_matmul_peak(const std::string& precision, int threads);

}  // namespace mlprt
