#pragma once
// How the cuda context splits pinned host I/O of a large batch into row chunks, so that the
// copies of one chunk overlap the layers of another (see CudaContext::run_pipelined). Pure
// host arithmetic, unit-tested without a GPU.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "backends/cuda/cuda_executable.h"

namespace mlprt::backend::cuda {

/// Pinned host I/O at least this large, of layers that take at least this long, is chunked.
/// Below that the chunks' extra copy nodes cost more than the overlap gains (measured on an
/// H100: the 784-32-10 MLP at 4096 rows, 19 us of layers against 250 us of copies, lost 12 us).
inline constexpr size_t kChunkMinInputBytes = size_t{4} << 20;
inline constexpr double kChunkMinLayerUs = 30.0;
inline constexpr int64_t kChunkMinRows = 1024;
inline constexpr int64_t kMaxChunks = 8;
/// Matmul rate assumed for a layer the builder did not time (optimization level 0).
inline constexpr double kUntimedFlopsPerUs = 1e8;

struct ChunkPlan {
  int64_t chunks = 0;      ///< 0: the batch runs whole
  int64_t chunk_rows = 0;  ///< rows of every chunk but the last
  int64_t last_rows = 0;
};

/// The chunks of `rows` input rows of `input_bytes`, whose layers take about `layers_us`.
ChunkPlan plan_chunks(int64_t rows, size_t input_bytes, double layers_us);

/// A Dense layer's matmul time at `m` rows: the builder's timing at the row count nearest to
/// `m`, scaled linearly; for an untimed layer, its flops at kUntimedFlopsPerUs.
double estimate_dense_us(const std::vector<TunedAlgo>& tuned, int64_t m, int64_t k, int64_t n);

}  // namespace mlprt::backend::cuda
