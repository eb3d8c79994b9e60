#include "backends/cpu/cpu_isa.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include <oneapi/dnnl/dnnl.hpp>

#include "common/check.h"

namespace mlprt::backend::cpu {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
constexpr std::string_view kArch = "x86_64";
#elif defined(__aarch64__)
constexpr std::string_view kArch = "aarch64";
#else
constexpr std::string_view kArch = "unknown_arch";
#endif

struct IsaName {
  dnnl::cpu_isa isa;
  std::string_view name;
};

// oneDNN's ISA values are bit sets in which a wider ISA holds every bit of the ones it
// extends (avx2 = 0x7 includes avx = 0x3), so "machine covers plan" is a subset test.
constexpr std::array<IsaName, 11> kIsaNames = {{
    {dnnl::cpu_isa::all, "generic"},
    {dnnl::cpu_isa::sse41, "sse41"},
    {dnnl::cpu_isa::avx, "avx"},
    {dnnl::cpu_isa::avx2, "avx2"},
    {dnnl::cpu_isa::avx2_vnni, "avx2_vnni"},
    {dnnl::cpu_isa::avx512_mic, "avx512_mic"},
    {dnnl::cpu_isa::avx512_mic_4ops, "avx512_mic_4ops"},
    {dnnl::cpu_isa::avx512_core, "avx512_core"},
    {dnnl::cpu_isa::avx512_core_vnni, "avx512_core_vnni"},
    {dnnl::cpu_isa::avx512_core_bf16, "avx512_core_bf16"},
    {dnnl::cpu_isa::avx512_core_amx, "avx512_core_amx"},
}};

std::string_view isa_name(dnnl::cpu_isa isa) {
  for (const IsaName& entry : kIsaNames) {
    if (entry.isa == isa) return entry.name;
  }
  return "generic";
}

std::optional<dnnl::cpu_isa> parse_isa(std::string_view name) {
  for (const IsaName& entry : kIsaNames) {
    if (entry.name == name) return entry.isa;
  }
  return std::nullopt;
}

std::string known_isa_list() {
  std::string out;
  for (const IsaName& entry : kIsaNames) {
    if (!out.empty()) out += ", ";
    out += entry.name;
  }
  return out;
}

struct ParsedId {
  std::string_view arch;
  dnnl::cpu_isa isa;
};

std::optional<ParsedId> parse_id(std::string_view id) {
  const size_t space = id.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const std::optional<dnnl::cpu_isa> isa = parse_isa(id.substr(space + 1));
  if (!isa) return std::nullopt;
  return ParsedId{id.substr(0, space), *isa};
}

}  // namespace

std::string cpu_hardware_id() {
  std::string id(kArch);
  id += ' ';
  id += isa_name(dnnl::get_effective_cpu_isa());
  return id;
}

bool cpu_has_bf16() { return onednn_isa_includes(dnnl::cpu_isa::avx512_core_bf16); }

bool onednn_isa_includes(dnnl::cpu_isa isa) {
  const auto bits = static_cast<uint32_t>(isa);
  return (static_cast<uint32_t>(dnnl::get_effective_cpu_isa()) & bits) == bits;
}

bool cpu_has_fp16() {
#if defined(__x86_64__) || defined(_M_X64)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (edx >> 23) & 1u;  // CPUID.(EAX=7,ECX=0):EDX[23] = AVX512_FP16
#else
  return false;
#endif
}

bool cpu_avx512_usable(bool need_dq, bool need_fp16) {
#if defined(__x86_64__) || defined(_M_X64)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  const bool avx512f = (ebx >> 16) & 1u;
  const bool avx512dq = (ebx >> 17) & 1u;
  const bool avx512bw = (ebx >> 30) & 1u;
  const bool avx512vl = (ebx >> 31) & 1u;
  const bool fp16 = (edx >> 23) & 1u;
  if (!(avx512f && avx512bw && avx512vl) || (need_dq && !avx512dq) || (need_fp16 && !fp16)) {
    return false;
  }
  // The OS must save the opmask and zmm state (XCR0 bits 1, 2, 5, 6, 7).
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0 || !((ecx >> 27) & 1u)) return false;
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 0xe6u) == 0xe6u;
#else
  (void)need_dq, (void)need_fp16;
  return false;
#endif
}

Status check_cpu_hardware(const std::string& plan_hardware,
                          const std::string& machine_hardware) {
  const std::optional<ParsedId> plan = parse_id(plan_hardware);
  if (!plan) {
    return make_error(StatusCode::kHardwareMismatch, "plan hardware id '", plan_hardware,
                      "' is not a cpu hardware id; expected '<arch> <isa>' such as '", kArch,
                      " avx2' with isa one of: ", known_isa_list());
  }
  const std::optional<ParsedId> machine = parse_id(machine_hardware);
  MLPRT_CHECK(machine.has_value(), "machine hardware id '" << machine_hardware << "'");
  const auto plan_bits = static_cast<uint32_t>(plan->isa);
  const auto machine_bits = static_cast<uint32_t>(machine->isa);
  if (plan->arch != machine->arch || (plan_bits & machine_bits) != plan_bits) {
    return make_error(StatusCode::kHardwareMismatch, "plan built for ", plan_hardware,
                      ", this machine is ", machine_hardware);
  }
  return Status::ok();
}

}  // namespace mlprt::backend::cpu
