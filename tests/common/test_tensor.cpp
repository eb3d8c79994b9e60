#include <gtest/gtest.h>

#include <limits>

#include "mlprt/optimization_profile.h"
#include "mlprt/tensor.h"

namespace mlprt {
namespace {

TEST(Dims, ParseAndPrint) {
  auto dims = parse_dims("8x784");
  ASSERT_TRUE(dims.is_ok());
  EXPECT_EQ(*dims, (Dims{8, 784}));
  EXPECT_EQ(to_string(*dims), "8x784");
  EXPECT_EQ(*parse_dims("1,2,3"), (Dims{1, 2, 3}));
  EXPECT_EQ(to_string(Dims{}), "scalar");
}

TEST(Dims, ParseRejectsGarbage) {
  for (const char* bad : {"", "8x", "x8", "8xa", "-1x3", "8 x 3", "99999999999999999999"}) {
    auto dims = parse_dims(bad);
    EXPECT_FALSE(dims.is_ok()) << bad;
    EXPECT_EQ(dims.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(Dims, VolumeDetectsOverflowAndNegatives) {
  EXPECT_EQ(*volume({2, 3, 4}), 24);
  EXPECT_EQ(*volume({}), 1);
  EXPECT_FALSE(volume({-1, 3}).is_ok());
  const int64_t big = std::numeric_limits<int64_t>::max() / 2;
  EXPECT_FALSE(volume({big, 4}).is_ok());
}

TEST(Tensor, ZerosAndFromFloats) {
  auto t = Tensor::zeros(DataType::kFloat32, {2, 3});
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->size_bytes(), 24u);
  EXPECT_EQ(t->as<float>()[5], 0.0f);
  const float values[] = {1, 2, 3, 4};
  auto u = Tensor::from_floats({2, 2}, values);
  ASSERT_TRUE(u.is_ok());
  EXPECT_EQ(u->as<float>()[3], 4.0f);
  EXPECT_FALSE(Tensor::from_floats({3, 2}, values).is_ok());
  EXPECT_FALSE(Tensor::zeros(DataType::kFloat32, {int64_t{1} << 40, 8}).is_ok());
}

TEST(OptimizationProfile, ValidatesOrderAndRank) {
  OptimizationProfile p;
  EXPECT_TRUE(p.set_dimensions("input", {{1, 784}, {32, 784}, {64, 784}}).is_ok());
  EXPECT_FALSE(p.set_dimensions("input", {{8, 784}, {4, 784}, {64, 784}}).is_ok());
  EXPECT_FALSE(p.set_dimensions("input", {{1, 784}, {32}, {64, 784}}).is_ok());
  auto range = p.get_dimensions("input");
  ASSERT_TRUE(range.has_value());
  EXPECT_TRUE(range->contains({64, 784}));
  EXPECT_FALSE(range->contains({65, 784}));
  EXPECT_FALSE(range->contains({8}));
  EXPECT_FALSE(p.get_dimensions("other").has_value());
}

}  // namespace
}  // namespace mlprt
