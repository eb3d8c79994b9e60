#include "mlprt/float16.h"

#include <bit>
#include <cstring>

namespace mlprt {

float half_to_float(uint16_t half) noexcept {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1fu;
  uint32_t mantissa = half & 0x3ffu;
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0) return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  if (mantissa == 0) return std::bit_cast<float>(sign);
  // Subnormal: normalize the mantissa into float's implicit-one form.
  uint32_t e = 113;
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    --e;
  }
  return std::bit_cast<float>(sign | (e << 23) | ((mantissa & 0x3ffu) << 13));
}

uint16_t float_to_half(float value) noexcept {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or nan (nan keeps a set quiet bit)
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero) in half: scale by 2^24 and round to an integer count of
    // 2^-24 units, ties to even.
    if (abs < 0x33000000u) return sign;  // below half the smallest subnormal
    const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - (abs >> 23);  // 14..24 more bits to drop than a normal
    const uint32_t kept = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1u);
    const uint32_t half_unit = 1u << (shift - 1u);
    const uint32_t rounded = kept + (rest > half_unit || (rest == half_unit && (kept & 1u)));
    return static_cast<uint16_t>(sign | rounded);
  }
  // Normal: rebias and round the 13 dropped bits to nearest even; a carry may bump the exponent.
  const uint32_t rebased = abs - (112u << 23);
  const uint32_t rounded = rebased + 0xfffu + ((rebased >> 13) & 1u);
  return static_cast<uint16_t>(sign | (rounded >> 13));
}

float bf16_to_float(uint16_t bf16) noexcept {
  return std::bit_cast<float>(static_cast<uint32_t>(bf16) << 16);
}

uint16_t float_to_bf16(float value) noexcept {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

bool is_io_float_type(DataType type) noexcept {
  return type == DataType::kFloat32 || type == DataType::kFloat16 || type == DataType::kBFloat16;
}

namespace {

float load(const void* src, DataType type, size_t i) noexcept {
  if (type == DataType::kFloat32) return static_cast<const float*>(src)[i];
  const uint16_t v = static_cast<const uint16_t*>(src)[i];
  return type == DataType::kFloat16 ? half_to_float(v) : bf16_to_float(v);
}

}  // namespace

void convert_floats(const void* src, DataType src_type, void* dst, DataType dst_type,
                    size_t count) noexcept {
  if (count == 0) return;
  if (src_type == dst_type) {
    std::memcpy(dst, src, count * element_size(src_type));
    return;
  }
  if (dst_type == DataType::kFloat32) {
    auto* out = static_cast<float*>(dst);
    for (size_t i = 0; i < count; ++i) out[i] = load(src, src_type, i);
    return;
  }
  auto* out = static_cast<uint16_t*>(dst);
  const bool half = dst_type == DataType::kFloat16;
  for (size_t i = 0; i < count; ++i) {
    const float v = load(src, src_type, i);
    out[i] = half ? float_to_half(v) : float_to_bf16(v);
  }
}

}  // namespace mlprt
