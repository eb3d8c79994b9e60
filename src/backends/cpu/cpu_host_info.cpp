// mlprt/host_cpu.h: the host CPU as the cpu backend sees it, and its matmul peak.

#include "mlprt/host_cpu.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "backends/cpu/cpu_f32_gemm.h"
#include "backends/cpu/cpu_fp16_gemm.h"
#include "backends/cpu/cpu_isa.h"
#include "common/check.h"

namespace mlprt {
namespace {

bool cpu_reports_amx() {
#if defined(__x86_64__) || defined(_M_X64)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  return ((edx >> 24) & 1u) && ((edx >> 22) & 1u);  // AMX-TILE, AMX-BF16
#else
  return false;
#endif
}

// Whether Linux has granted this process the AMX tile data state (XFEATURE 18), which oneDNN
// requests with arch_prctl(ARCH_REQ_XCOMP_PERM) when it first looks at the CPU.
bool amx_state_permitted() {
#if defined(__linux__) && (defined(__x86_64__) || defined(_M_X64))
  constexpr int kArchGetXcompPerm = 0x1022;
  constexpr int kXfeatureXtiledata = 18;
  uint64_t features = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &features) != 0) return false;
  return (features >> kXfeatureXtiledata) & 1u;
#else
  return false;
#endif
}

HostCpuInfo detect() {
  HostCpuInfo info;
  info.isa = backend::cpu::cpu_hardware_id();  // makes oneDNN detect (and request AMX) first
  const auto isa = static_cast<uint32_t>(dnnl::get_effective_cpu_isa());
  const auto amx = static_cast<uint32_t>(dnnl::cpu_isa::avx512_core_amx);
  info.amx_in_cpu = cpu_reports_amx();
  info.amx_permitted = amx_state_permitted();
  info.amx_in_use = (isa & amx) == amx;
  info.avx512_bf16 = backend::cpu::cpu_has_bf16();
  info.avx512_fp16 = backend::cpu::fp16_gemm_available();
  info.fp32_kernel = backend::cpu::f32_gemm_available();
  if (!info.amx_in_cpu) {
    info.amx_note = "AMX: not on this CPU";
  } else if (info.amx_in_use) {
    info.amx_note = "AMX: in use (oneDNN ISA avx512_core_amx, tile state granted by the kernel)";
  } else if (!info.amx_permitted) {
    info.amx_note =
        "AMX: the CPU has it, but the kernel did not grant this process the AMX tile state "
        "(arch_prctl ARCH_REQ_XCOMP_PERM; needs Linux 5.16+): bf16 runs without AMX";
  } else {
    info.amx_note = "AMX: the CPU has it and the tile state is granted, but oneDNN runs " +
                    info.isa + " (capped by ONEDNN_MAX_CPU_ISA?): bf16 runs without AMX";
  }
  info.precisions = {"fp32"};
  if (info.avx512_bf16) info.precisions.emplace_back("bf16");
  if (info.avx512_fp16) info.precisions.emplace_back("fp16");
  return info;
}

using Clock = std::chrono::steady_clock;

// Best time of `call` over about `budget_s` seconds (at least 3 calls after one warm-up).
template <typename F>
double best_us(F&& call, double budget_s) {
  call();
  double best = 1e300;
  const auto start = Clock::now();
  for (int i = 0; i < 3 || std::chrono::duration<double>(Clock::now() - start).count() < budget_s;
       ++i) {
    const auto t0 = Clock::now();
    call();
    best = std::min(best, std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (i > 10000) break;
  }
  return best;
}

}  // namespace

HostCpuInfo host_cpu_info() {
  static const HostCpuInfo kInfo = detect();
  return kInfo;
}

Result<double> measure_cpu_matmul_peak(const std::string& precision, int threads) {
  const HostCpuInfo info = host_cpu_info();
  if (std::find(info.precisions.begin(), info.precisions.end(), precision) ==
      info.precisions.end()) {
    std::string have;
    for (const std::string& p : info.precisions) have += (have.empty() ? "" : ", ") + p;
    return make_error(StatusCode::kUnsupported, "cpu matmul peak: precision '", precision,
                      "' has no cpu kernel here; available: ", have);
  }
  constexpr int64_t kSize = 1024;
  constexpr double kBudgetS = 0.3;
  const double flops = 2.0 * kSize * kSize * kSize;
  const int caller_threads = omp_get_max_threads();
  if (threads > 0) omp_set_num_threads(threads);
  double us = 0;
  try {
    std::vector<float> a(kSize * kSize, 0.5f), b(kSize * kSize, 0.25f), c(kSize * kSize);
    if (precision == "fp16") {
      const backend::cpu::Fp16Weights w(b.data(), kSize, kSize);
      std::vector<uint16_t> x(kSize * backend::cpu::fp16_row_stride(kSize));
      backend::cpu::convert_rows_to_fp16(a.data(), kSize, kSize, x.data());
      const int t = threads > 0 ? threads : omp_get_max_threads();
      us = best_us([&] { backend::cpu::fp16_gemm(x.data(), kSize, w, nullptr, c.data(), t); },
                   kBudgetS);
    } else {
      using dnnl::memory;
      const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
      dnnl::stream stream(engine);
      const memory::data_type dt =
          precision == "bf16" ? memory::data_type::bf16 : memory::data_type::f32;
      const memory::desc src({kSize, kSize}, dt, memory::format_tag::ab);
      const memory::desc weights_any({kSize, kSize}, dt, memory::format_tag::any);
      const memory::desc dst({kSize, kSize}, memory::data_type::f32, memory::format_tag::ab);
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, weights_any, dst), engine);
      const dnnl::matmul matmul(pd);
      memory src_mem(src, engine), weights_mem(pd.weights_desc(), engine), dst_mem(dst, engine);
      // Inputs as the engines feed them: converted and packed once, outside the timing.
      memory a_f32({{kSize, kSize}, memory::data_type::f32, memory::format_tag::ab}, engine,
                   a.data());
      memory b_f32({{kSize, kSize}, memory::data_type::f32, memory::format_tag::ab}, engine,
                   b.data());
      dnnl::reorder(a_f32, src_mem).execute(stream, a_f32, src_mem);
      dnnl::reorder(b_f32, weights_mem).execute(stream, b_f32, weights_mem);
      stream.wait();
      us = best_us(
          [&] {
            matmul.execute(stream, {{DNNL_ARG_SRC, src_mem},
                                    {DNNL_ARG_WEIGHTS, weights_mem},
                                    {DNNL_ARG_DST, dst_mem}});
            stream.wait();
          },
          kBudgetS);
    }
  } catch (const dnnl::error& e) {
    omp_set_num_threads(caller_threads);
    return make_error(StatusCode::kInternal, "cpu matmul peak (", precision,
                      "): oneDNN error: ", e.what());
  }
  omp_set_num_threads(caller_threads);
  return flops / us / 1e3;
}

}  // namespace mlprt
