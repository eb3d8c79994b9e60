// The numbers behind the cuda backend's GELU tactic (cuda_dense.h, gelu_tanh_tactic_allowed):
// how far the tanh approximation is from the exact erf GELU, measured on a dense grid with the
// formulas every backend and the float64 evaluator share (ir::apply_activation).

#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "ir/activation.h"

namespace mlprt::ir {
namespace {

// Half the spacing of fp16 values around |v| (subnormals below 2^-14: spacing 2^-24).
double half_fp16_ulp(double v) {
  int exponent = 0;
  std::frexp(std::fabs(v), &exponent);  // |v| = m * 2^exponent, m in [0.5, 1)
  const int e = std::max(exponent - 1, -14);
  return std::ldexp(1.0, e - 11);
}

double gelu_difference(double x) {
  return std::fabs(apply_activation(ActivationKind::kGeluTanh, x, 0.0, 0.0) -
                   apply_activation(ActivationKind::kGeluErf, x, 0.0, 0.0));
}

TEST(GeluTanhBound, BelowHalfAnFp16UlpOfTheInputEverywhere) {
  double worst_abs = 0.0;
  double worst_input_ratio = 0.0;
  double worst_input_at = 0.0;
  double worst_positive_ratio = 0.0;  // relative to the result, x >= 0
  double worst_negative_ratio = 0.0;  // relative to the result, x < 0
  for (int i = -200000; i <= 200000; ++i) {
    const double x = i * 1e-4;  // [-20, 20]: beyond it both are 0 or x in fp16
    const double d = gelu_difference(x);
    const double exact = apply_activation(ActivationKind::kGeluErf, x, 0.0, 0.0);
    worst_abs = std::max(worst_abs, d);
    if (x != 0.0 && d / half_fp16_ulp(x) > worst_input_ratio) {
      worst_input_ratio = d / half_fp16_ulp(x);
      worst_input_at = x;
    }
    if (exact != 0.0) {
      double& worst = x >= 0.0 ? worst_positive_ratio : worst_negative_ratio;
      worst = std::max(worst, d / half_fp16_ulp(exact));
    }
  }
  std::cout << "[ gelu bound ] max |gelu_tanh - gelu_erf| = " << worst_abs
            << "; max / (half fp16 ulp of x) = " << worst_input_ratio << " at x = "
            << worst_input_at << "; / (half fp16 ulp of gelu(x)): x >= 0 " << worst_positive_ratio
            << ", x < 0 " << worst_negative_ratio << "\n";
  // Everywhere: below what storing the matmul's output x in fp16 already costs (the unfused
  // path does that before its erf kernel), and below half an fp16 ulp of 1.
  EXPECT_LT(worst_input_ratio, 0.65);
  EXPECT_LT(worst_abs, 4.75e-4);
  EXPECT_LT(worst_abs, std::ldexp(1.0, -11));
  // For x >= 0 also below half an fp16 ulp of the result.
  EXPECT_LT(worst_positive_ratio, 0.85);
  // Not so in the negative tail, where gelu(x) tends to 0 faster than the difference: the
  // tactic is justified by the input bound above, not by this one.
  EXPECT_GT(worst_negative_ratio, 100.0);
}

TEST(GeluTanhBound, ShrinksTowardZeroAndVanishesInTheTails) {
  EXPECT_LT(gelu_difference(1e-3), 1e-12);
  EXPECT_LT(gelu_difference(12.0), 1e-15);
  EXPECT_LT(gelu_difference(-12.0), 1e-15);
  EXPECT_GT(gelu_difference(2.7), 4.5e-4);  // the largest difference is near x = 2.7
}

}  // namespace
}  // namespace mlprt::ir
