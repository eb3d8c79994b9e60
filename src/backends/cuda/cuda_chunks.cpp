#include "backends/cuda/cuda_chunks.h"

#include <algorithm>
#include <cmath>

namespace mlprt::backend::cuda {

ChunkPlan plan_chunks(int64_t rows, size_t input_bytes, double layers_us) {
  ChunkPlan plan;
  if (input_bytes < kChunkMinInputBytes || rows < 2 * kChunkMinRows ||
      layers_us < kChunkMinLayerUs) {
    return plan;
  }
  const int64_t chunks = std::min(kMaxChunks, rows / kChunkMinRows);
  plan.chunk_rows = (rows + chunks - 1) / chunks;
  plan.chunks = (rows + plan.chunk_rows - 1) / plan.chunk_rows;
  plan.last_rows = rows - (plan.chunks - 1) * plan.chunk_rows;
  return plan;
}

double estimate_dense_us(const std::vector<TunedAlgo>& tuned, int64_t m, int64_t k, int64_t n) {
  const auto rows = static_cast<double>(m);
  const TunedAlgo* nearest = nullptr;
  for (const TunedAlgo& t : tuned) {
    if (t.us <= 0 || t.m <= 0) continue;
    if (nearest == nullptr || std::abs(static_cast<double>(t.m) - rows) <
                                  std::abs(static_cast<double>(nearest->m) - rows)) {
      nearest = &t;
    }
  }
  if (nearest != nullptr) return nearest->us * rows / static_cast<double>(nearest->m);
  return 2.0 * rows * static_cast<double>(k) * static_cast<double>(n) / kUntimedFlopsPerUs;
}

}  // namespace mlprt::backend::cuda
