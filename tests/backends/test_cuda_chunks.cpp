// The chunking rule of pinned host I/O (backend::cuda::plan_chunks) and the layer-time estimate
// it is fed: host arithmetic, run without a GPU.

#include <gtest/gtest.h>

#include "backends/cuda/cuda_chunks.h"

namespace mlprt::backend::cuda {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

TEST(CudaChunks, EveryRowInExactlyOneChunk) {
  for (int64_t rows : {2048, 2049, 4096, 20003, 65536, 1048576, 1048577}) {
    SCOPED_TRACE(rows);
    const ChunkPlan plan = plan_chunks(rows, 64 * kMiB, 1000.0);
    ASSERT_GE(plan.chunks, 2);
    EXPECT_LE(plan.chunks, kMaxChunks);
    EXPECT_GE(plan.chunk_rows, kChunkMinRows);
    EXPECT_GT(plan.last_rows, 0);
    EXPECT_LE(plan.last_rows, plan.chunk_rows);
    EXPECT_EQ((plan.chunks - 1) * plan.chunk_rows + plan.last_rows, rows);
  }
  const ChunkPlan odd = plan_chunks(20003, 64 * kMiB, 1000.0);
  EXPECT_EQ(odd.chunks, 8);
  EXPECT_EQ(odd.chunk_rows, 2501);
  EXPECT_EQ(odd.last_rows, 2496);
}

TEST(CudaChunks, SmallOrCheapBatchesRunWhole) {
  EXPECT_EQ(plan_chunks(65536, kChunkMinInputBytes - 1, 1000.0).chunks, 0);    // copies too small
  EXPECT_EQ(plan_chunks(2 * kChunkMinRows - 1, 64 * kMiB, 1000.0).chunks, 0);  // too few rows
  EXPECT_EQ(plan_chunks(4096, 64 * kMiB, kChunkMinLayerUs - 0.5).chunks, 0);   // layers too quick
  EXPECT_EQ(plan_chunks(4096, 64 * kMiB, kChunkMinLayerUs).chunks, 4);
}

TEST(CudaChunks, LayerTimeFromTheNearestTimedRowCount) {
  std::vector<TunedAlgo> tuned(2);
  tuned[0].m = 64;
  tuned[0].us = 8.0;
  tuned[1].m = 4096;
  tuned[1].us = 40.0;
  EXPECT_DOUBLE_EQ(estimate_dense_us(tuned, 8192, 784, 32), 80.0);  // nearest 4096, doubled
  EXPECT_DOUBLE_EQ(estimate_dense_us(tuned, 32, 784, 32), 4.0);     // nearest 64, halved
  tuned[1].us = 0.0;                                                // not timed: ignored
  EXPECT_DOUBLE_EQ(estimate_dense_us(tuned, 8192, 784, 32), 1024.0);
  // No timing at all (optimization level 0): the layer's flops at the nominal rate.
  EXPECT_DOUBLE_EQ(estimate_dense_us({}, 1000, 100, 50),
                   2.0 * 1000 * 100 * 50 / kUntimedFlopsPerUs);
}

}  // namespace
}  // namespace mlprt::backend::cuda
