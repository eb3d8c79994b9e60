#pragma once
// Whole-chain row split: when every layer works row by row (Dense over the last axis,
// element-wise ops, softmax / layer norm / scale-shift inside a row, adds of same-shape or
// row-broadcast operands, views that keep dim 0), the batch rows are cut into one block per
// thread and each thread runs its block through every layer, in ONE OpenMP region: one
// fork/join per inference instead of one per layer, which is most of the time of a small
// model. Dense layers run their row-split tactic's 1-thread primitives (cpu_dense.h). The
// builder turns it on per opt row count where timing says it wins (CpuExecutable::chain_rows).

#include <cstdint>
#include <vector>

#include "backends/cpu/cpu_dense_run.h"
#include "backends/cpu/cpu_executable.h"
#include "ir/shape_inference.h"

namespace mlprt::backend::cpu {

class ChainRun {
 public:
  /// Plans the chain at `shapes` over `threads` threads; returns whether it runs as one region
  /// (the plan asks for it at this row count, the graph is row-wise, two blocks or more).
  /// `loops`: the context's per-layer softmax / layer norm / scale-shift sizes at `shapes`.
  Result<bool> prepare(const CpuExecutable& exe, const ir::ShapeMap& shapes, int threads,
                       const std::vector<RowLoop>& loops, ThreadPoolResources& pool);
  /// Runs every layer; `ptrs` holds every tensor's address (views and outputs resolved).
  Status run(const std::vector<float*>& ptrs);
  [[nodiscard]] bool active() const noexcept { return m_active; }

  /// Why the graph at `shapes` cannot run row-split (empty: it can).
  static std::string why_not_row_wise(const CpuExecutable& exe, const ir::ShapeMap& shapes);

 private:
  enum class Operand { kFull, kRow, kScalar };
  struct Step {
    size_t layer = 0;
    int64_t features = 0;  ///< output elements per row
    RowLoop loop;          ///< per row: outer is the count per row
    Operand a = Operand::kFull;
    Operand b = Operand::kFull;
  };
  Status run_block(size_t t, const std::vector<float*>& ptrs);

  const CpuExecutable* m_exe = nullptr;
  std::vector<Step> m_steps;
  std::vector<DenseRun> m_dense;  ///< per layer (Dense only)
  std::vector<RowRange> m_blocks;
  bool m_active = false;
};

}  // namespace mlprt::backend::cpu
