#pragma once
// Split batch: how a batch past every profile's max runs in chunks of rows
// (ExecutionContext::set_split_batch). ContextState decides and runs it; this computes the plan.

#include <cstdint>
#include <string>
#include <vector>

#include "ir/shape_inference.h"
#include "mlprt/status.h"
#include "mlprt/tensor.h"
#include "plan/plan.h"

namespace mlprt::detail {

struct SplitPlan {
  int profile = 0;   ///< the best profile: its max batch is the chunk
  int64_t rows = 0;  ///< the whole batch
  int64_t chunk_rows = 0;
  int64_t full_chunks = 0;  ///< chunks of chunk_rows rows from row 0
  int64_t tail_first = 0;   ///< the last chunk's first row (tail_rows == 0: none)
  int64_t tail_rows = 0;
  bool tail_on_main = false;      ///< the tail is a full chunk that overlaps the one before it
  int tail_profile = -1;          ///< the profile holding a shorter tail
  ir::ShapeMap full_shapes;       ///< every tensor at the whole batch
  ir::ShapeMap chunk_shapes;      ///< every tensor at chunk_rows
  ir::ShapeMap tail_shapes;       ///< every tensor at tail_rows (a shorter tail only)
  std::vector<size_t> row_bytes;  ///< per I/O tensor (engine order): bytes of one row
};

/// OK if the plan records rows proven independent; else why not (the layer that mixes rows,
/// or a plan from before it was recorded: rebuild).
Status check_split_allowed(const plan::Plan& plan);

/// Whether `dims` has an axis 0 past every profile's max for input `name`.
bool past_every_profile(const plan::Plan& plan, const std::string& name, const Dims& dims);

/// For set_input_shape: OK if the dims after axis 0 fit some profile (its max batch as axis 0).
Status check_split_shape(const plan::Plan& plan, const std::string& name, const Dims& dims);

/// The chunks for `input_shapes` (every input set); errors say what does not fit.
Result<SplitPlan> plan_split(const plan::Plan& plan, const std::vector<TensorDesc>& io,
                             const ir::ShapeMap& input_shapes);

/// Appended to the error for a batch past every profile without split batch.
std::string split_batch_hint();

}  // namespace mlprt::detail
