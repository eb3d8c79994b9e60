// backend::broadcast_strides: numpy-broadcast element strides of an operand against the output.

#include <gtest/gtest.h>

#include "backends/broadcast_strides.h"

namespace mlprt::backend {
namespace {

using Strides = std::vector<int64_t>;

TEST(BroadcastStrides, ScalarIsBroadcastEverywhere) {
  EXPECT_EQ(broadcast_strides({}, {4, 5}), (Strides{0, 0}));
  EXPECT_EQ(broadcast_strides({1}, {4, 5}), (Strides{0, 0}));
  EXPECT_EQ(broadcast_strides({1, 1}, {4, 5}), (Strides{0, 0}));
  EXPECT_EQ(broadcast_strides({}, {}), Strides{});
}

TEST(BroadcastStrides, RowWalksTheLastDim) {
  EXPECT_EQ(broadcast_strides({5}, {4, 5}), (Strides{0, 1}));
  EXPECT_EQ(broadcast_strides({1, 5}, {4, 5}), (Strides{0, 1}));
}

TEST(BroadcastStrides, ColumnWalksTheFirstDim) {
  EXPECT_EQ(broadcast_strides({4, 1}, {4, 5}), (Strides{1, 0}));
  EXPECT_EQ(broadcast_strides({3, 1, 1}, {3, 4, 5}), (Strides{1, 0, 0}));
}

TEST(BroadcastStrides, SameShapeIsRowMajor) {
  EXPECT_EQ(broadcast_strides({4, 5}, {4, 5}), (Strides{5, 1}));
  EXPECT_EQ(broadcast_strides({2, 3, 4}, {2, 3, 4}), (Strides{12, 4, 1}));
  // A size-1 output dim reads nothing more: stride 0.
  EXPECT_EQ(broadcast_strides({2, 1, 4}, {2, 1, 4}), (Strides{4, 0, 1}));
}

TEST(BroadcastStrides, LowerRankIsLiftedWithLeadingZeros) {
  EXPECT_EQ(broadcast_strides({4, 5}, {2, 3, 4, 5}), (Strides{0, 0, 5, 1}));
  EXPECT_EQ(broadcast_strides({4, 1}, {2, 4, 5}), (Strides{0, 1, 0}));
  EXPECT_EQ(broadcast_strides({3, 1, 5}, {2, 3, 4, 5}), (Strides{0, 5, 0, 1}));
}

}  // namespace
}  // namespace mlprt::backend
