// float16 / bfloat16 conversions against exact double arithmetic.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "mlprt/float16.h"

namespace mlprt {
namespace {

// Every finite half value as a double, from the bit pattern's definition.
double half_value(uint16_t bits) {
  const int exponent = (bits >> 10) & 0x1f;
  const int mantissa = bits & 0x3ff;
  const double magnitude = exponent == 0 ? std::ldexp(mantissa, -24)
                                         : std::ldexp(1024 + mantissa, exponent - 25);
  return (bits & 0x8000) ? -magnitude : magnitude;
}

// The nearest half to `x` (ties to the even pattern) by search over all finite halves.
uint16_t nearest_half(double x, const std::vector<double>& positive) {
  const double a = std::fabs(x);
  uint16_t best = 0;
  for (uint16_t i = 1; i < 0x7c00; ++i) {
    const double d = std::fabs(positive[i] - a);
    const double b = std::fabs(positive[best] - a);
    if (d < b || (d == b && (i & 1) == 0)) best = i;
  }
  if (a >= 65520.0) best = 0x7c00;  // rounds past the largest half: infinity
  return static_cast<uint16_t>(best | (std::signbit(x) ? 0x8000 : 0));
}

TEST(Float16, EveryHalfWidensExactly) {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const auto h = static_cast<uint16_t>(bits);
    const float f = half_to_float(h);
    if (((h >> 10) & 0x1f) == 0x1f) {
      EXPECT_EQ(std::isnan(f), (h & 0x3ff) != 0) << std::hex << bits;
      continue;
    }
    EXPECT_EQ(static_cast<double>(f), half_value(h)) << std::hex << bits;
    EXPECT_EQ(float_to_half(f), h) << std::hex << bits;  // and narrows back to itself
  }
}

TEST(Float16, NarrowingRoundsToNearestEven) {
  std::vector<double> positive(0x7c00);
  for (uint16_t i = 0; i < 0x7c00; ++i) positive[i] = half_value(i);
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> exponent(-27.0, 17.0);
  std::vector<float> samples = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, 1e-8f, 2.9802322e-8f,
                                5.9604645e-8f, 6.1035156e-5f, 1.0f + 1.0f / 2048.0f};
  for (int i = 0; i < 3000; ++i) {
    const float v = static_cast<float>(std::exp2(exponent(rng)));
    samples.push_back(i % 2 ? v : -v);
  }
  // Exact midpoints between neighbours: ties must go to the even pattern.
  for (uint16_t i = 1; i < 0x7bff; i += 97) {
    samples.push_back(static_cast<float>((positive[i] + positive[i + 1]) / 2));
  }
  for (float v : samples) {
    EXPECT_EQ(float_to_half(v), nearest_half(v, positive)) << v;
  }
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(std::nanf("")))));
}

TEST(BFloat16, RoundsToNearestEvenAndWidensExactly) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<uint32_t> any;
  for (int i = 0; i < 100000; ++i) {
    const float v = std::bit_cast<float>(any(rng));
    if (!std::isfinite(v)) continue;
    const uint16_t b = float_to_bf16(v);
    const double wide = bf16_to_float(b);
    // The neighbours one bf16 step either side are no closer.
    const double up = bf16_to_float(static_cast<uint16_t>(b + 1));
    const double down = bf16_to_float(static_cast<uint16_t>(b - 1));
    const double err = std::fabs(wide - v);
    if (std::isfinite(up)) {
      EXPECT_LE(err, std::fabs(up - v)) << v;
    }
    if (std::isfinite(down)) {
      EXPECT_LE(err, std::fabs(down - v)) << v;
    }
    if (std::isfinite(wide) && (err == std::fabs(up - v) || err == std::fabs(down - v))) {
      EXPECT_EQ(b & 1, 0) << "tie not to even: " << v;
    }
  }
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::nanf("")))));
}

TEST(ConvertFloats, RoundTripsBetweenEveryIoType) {
  const std::vector<float> values = {0.5f, -1.25f, 3.0f, 1024.0f, -0.0f};
  for (DataType narrow : {DataType::kFloat16, DataType::kBFloat16}) {
    std::vector<uint16_t> packed(values.size());
    convert_floats(values.data(), DataType::kFloat32, packed.data(), narrow, values.size());
    std::vector<uint16_t> copied(values.size());
    convert_floats(packed.data(), narrow, copied.data(), narrow, values.size());
    std::vector<float> back(values.size());
    convert_floats(copied.data(), narrow, back.data(), DataType::kFloat32, values.size());
    EXPECT_EQ(back, values) << to_string(narrow);  // all exactly representable
  }
  std::vector<uint16_t> half(1), bf(1);
  const float third = 1.0f / 3.0f;
  convert_floats(&third, DataType::kFloat32, half.data(), DataType::kFloat16, 1);
  convert_floats(half.data(), DataType::kFloat16, bf.data(), DataType::kBFloat16, 1);
  EXPECT_EQ(bf[0], float_to_bf16(half_to_float(half[0])));
  EXPECT_TRUE(is_io_float_type(DataType::kBFloat16));
  EXPECT_FALSE(is_io_float_type(DataType::kInt32));
}

}  // namespace
}  // namespace mlprt
